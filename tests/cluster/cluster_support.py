"""Helpers shared by the cluster tests: reading a run's progress, waiting, processes."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO / "experiments" / "scripts" / "cluster"
SLURM_STATE = "/run/l2run-slurm"
#: iterations and batch of experiments/configs/quick.toml with 2 ranks
QUICK_STEPS_PER_ITERATION = 2 * 256


def progress_rows(run_dir: Path) -> List[Dict[str, str]]:
    """The complete rows of run_dir/progress.csv (a row being written is skipped)."""
    try:
        with open(run_dir / "progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    return [row for row in rows if row.get("time/timesteps") not in (None, "")]


def iterations(run_dir: Path) -> List[int]:
    return [int(float(row["time/iteration"])) for row in progress_rows(run_dir)]


def assert_contiguous(run_dir: Path, last: int) -> None:
    """progress.csv holds iterations 1..last once each, with the timesteps they imply."""
    rows = progress_rows(run_dir)
    got = [int(float(row["time/iteration"])) for row in rows]
    assert got == list(range(1, last + 1)), f"iterations in progress.csv: {got}"
    steps = [int(float(row["time/timesteps"])) for row in rows]
    assert steps == [QUICK_STEPS_PER_ITERATION * i for i in got], f"timesteps in progress.csv: {steps}"


def checkpoint_iterations(run_dir: Path) -> List[int]:
    return sorted(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("ckpt-*") if p.is_dir())


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 1.0):
    """Poll until condition() is truthy; its value, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def process_environ(pid: int) -> Dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def process_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def net_namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
