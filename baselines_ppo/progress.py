"""progress.csv: its columns, reading it, and one-line summaries of a row.

No MPI, no TensorFlow: the launcher's progress bar and ``l2run plot`` read
progress files without starting either.
"""
from __future__ import annotations

import csv
import math
from typing import Dict, List, Tuple

PROGRESS_CSV = "progress.csv"

#: Preferred column order; other keys (reward/<term>, ...) follow alphabetically.
COLUMN_ORDER = (
    "time/iteration", "time/timesteps", "time/episodes", "time/elapsed_s",
    "rollout/ep_return", "rollout/ep_length", "rollout/distance", "rollout/distance_max",
    "rollout/episodes", "rollout/terminated_fraction", "rollout/sim_errors",
    "losses/policy", "losses/value",
    "train/approx_kl", "train/entropy", "train/clipfrac", "train/explained_var", "train/lr", "train/batch_steps",
    "train/epochs", "train/action_std", "train/grad_norm",
    "perf/steps_per_s", "perf/env_s", "perf/learn_s", "perf/learn_fraction",
)


def column_key(name: str) -> Tuple[int, str]:
    return (COLUMN_ORDER.index(name), "") if name in COLUMN_ORDER else (len(COLUMN_ORDER), name)


def read_progress(path) -> Tuple[List[str], List[Dict[str, str]]]:
    """(header, rows) of a progress.csv; values stay strings."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def format_postfix(row: Dict[str, float]) -> str:
    """Short summary for the progress bar."""
    parts = [f"it {int(row.get('time/iteration', 0))}", f"{row.get('perf/steps_per_s', math.nan):.0f} steps/s",
             f"return {row.get('rollout/ep_return', math.nan):.3g}"]
    if "rollout/distance" in row:
        parts.append(f"distance {row['rollout/distance']:.3g}")
    return ", ".join(parts)


def format_line(row: Dict[str, float], eta_s: float = math.nan) -> str:
    """One plain line per iteration for logs that are not terminals."""
    iteration = int(row.get("time/iteration", 0))
    parts = [f"iter {iteration}", f"steps {int(row.get('time/timesteps', 0))}",
             f"{row.get('perf/steps_per_s', math.nan):.0f} steps/s",
             f"return {row.get('rollout/ep_return', math.nan):.4g}",
             f"len {row.get('rollout/ep_length', math.nan):.4g}"]
    if "rollout/distance" in row:
        parts.append(f"distance {row['rollout/distance']:.4g} (max {row.get('rollout/distance_max', math.nan):.4g})")
    parts += [f"kl {row.get('train/approx_kl', math.nan):.3g}",
              f"explained_var {row.get('train/explained_var', math.nan):.2f}"]
    if math.isfinite(eta_s):
        parts.append(f"eta {_hms(eta_s)}")
    return " | ".join(parts)


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def formatted_row(row: Dict) -> Dict[str, str]:
    return {k: _format_value(v) for k, v in row.items()}


def _format_value(value) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)  # shortest exact form; "nan" for missing


def as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
