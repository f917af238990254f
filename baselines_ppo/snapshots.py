"""Exported policies kept along a run, for choosing a runner afterwards.

    run_dir/snapshots/policy-00000760.npz   the policy after iteration 760

Why: ``best_policy.npz`` is the iteration with the best mean *training*
distance, a noisy pick (tens of exploring episodes at the training
accuracy), and ``policy.npz`` is only the last one. Selecting a runner
honestly means scoring several late policies at the grader's settings on
held-out seeds (``l2run select``), so the trainer keeps a snapshot every
``ppo.snapshot_every`` iterations. Disk stays bounded: the newest
``ppo.keep_snapshots`` are kept, plus every ``ppo.snapshot_keep_every``-th
iteration for the long history (each file is a few tens of kB).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

SNAPSHOTS = "snapshots"
_NAME = re.compile(r"^policy-(\d{8,})\.npz$")


def snapshots_dir(run_dir) -> Path:
    return Path(run_dir) / SNAPSHOTS


def snapshot_path(run_dir, iteration: int) -> Path:
    return snapshots_dir(run_dir) / f"policy-{iteration:08d}.npz"


def snapshot_iteration(path) -> Optional[int]:
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_snapshots(run_dir) -> List[Path]:
    """Snapshot files of ``run_dir``, oldest first."""
    root = snapshots_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_file() and snapshot_iteration(p) is not None]
    return sorted(found, key=snapshot_iteration)


def due(iteration: int, every: int) -> bool:
    """Whether the trainer snapshots after ``iteration`` (``every`` 0: never)."""
    return every > 0 and iteration % every == 0


def prune(run_dir, keep: int, keep_every: int) -> None:
    """Delete snapshots that are neither among the newest ``keep`` nor at a
    multiple of ``keep_every`` iterations (0: none kept for history). Rank 0 only."""
    snapshots = list_snapshots(run_dir)
    newest = set(snapshots[-keep:]) if keep > 0 else set()
    for path in snapshots:
        if path not in newest and not (keep_every > 0 and snapshot_iteration(path) % keep_every == 0):
            path.unlink(missing_ok=True)
