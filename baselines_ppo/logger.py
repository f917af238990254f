"""Per-iteration metrics: every rank stores, rank 0 reduces and writes.

The logger owns the rank check, so the trainer calls ``store`` and ``dump``
on every rank without ``if rank == 0``. ``dump`` gathers each rank's values to
rank 0 (a small pickled dict per iteration), reduces them (mean, max or sum over
the values of all ranks) and writes:

* ``run_dir/progress.csv`` -- one row per iteration; NaN where an iteration had
  nothing to report (no finished episode); rewritten with a wider header when a
  new key appears; on resume, rows after the resumed iteration are dropped.
* ``run_dir/tb/`` -- TensorBoard scalars (tf.summary), x = timesteps.
* a tqdm progress bar, or one plain line per iteration (``progress="lines"``,
  for batch logs), or nothing (``progress="none"``, when a parent process draws
  the bar from progress.csv).

Metric names follow one scheme: ``time/``, ``rollout/``, ``reward/<term>``,
``losses/``, ``train/``, ``perf/``.
"""
from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from baselines_ppo import mpi
from baselines_ppo.export import atomic_write_bytes
from baselines_ppo.progress import (PROGRESS_CSV, as_float, column_key, format_line, format_postfix,
                                    formatted_row, read_progress)

TENSORBOARD_DIR = "tb"
PROGRESS_MODES = ("bar", "lines", "none")

_REDUCERS = {
    "mean": lambda v: float(np.mean(v)) if len(v) else math.nan,
    "max": lambda v: float(np.max(v)) if len(v) else math.nan,
    "min": lambda v: float(np.min(v)) if len(v) else math.nan,
    "sum": lambda v: float(np.sum(v)) if len(v) else 0.0,
}


class Logger:
    """Collects rank-local values, reduces them over ranks once per iteration."""

    def __init__(self, run_dir, total_timesteps: int, resume_iteration: Optional[int] = None,
                 progress: str = "bar", tensorboard: bool = True, comm=None):
        """``resume_iteration``: keep progress.csv rows up to it (None: start a new file).
        ``total_timesteps``: the progress bar's total."""
        if progress not in PROGRESS_MODES:
            raise ValueError(f"progress must be one of {PROGRESS_MODES}, got {progress!r}")
        self.comm = comm
        self.root = mpi.is_root(comm)
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / PROGRESS_CSV
        self.progress = progress
        self.total_timesteps = total_timesteps
        self._session_start_steps = 0.0
        self._values: Dict[str, List[float]] = defaultdict(list)
        self._reduce: Dict[str, str] = {}
        self._header: List[str] = []
        self._start = time.time()
        self._session_start = self._start
        self._bar = None
        self._tb = None
        if not self.root:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._session_start_steps = self._init_csv(resume_iteration)
        if tensorboard:
            import tensorflow as tf

            self._tb = tf.summary.create_file_writer(str(self.run_dir / TENSORBOARD_DIR))
        if progress == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total_timesteps, initial=int(self._session_start_steps), unit="step",
                             unit_scale=True, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def _init_csv(self, resume_iteration: Optional[int]) -> float:
        """Start or trim progress.csv; returns the timesteps already logged."""
        if resume_iteration is None or not self.csv_path.is_file():
            self.csv_path.unlink(missing_ok=True)
            return 0.0
        header, rows = read_progress(self.csv_path)
        kept = [row for row in rows if as_float(row.get("time/iteration")) <= resume_iteration]
        self._header = header
        self._rewrite(header, kept)
        elapsed = as_float(kept[-1].get("time/elapsed_s")) if kept else 0.0
        if math.isfinite(elapsed):  # wall time keeps counting across resumes
            self._start -= elapsed
        steps = as_float(kept[-1].get("time/timesteps")) if kept else 0.0
        return steps if math.isfinite(steps) else 0.0

    # --- every rank ------------------------------------------------------------

    def store(self, key: str, values, reduce: str = "mean") -> None:
        """Add rank-local value(s) for ``key``; ``reduce`` says how ranks combine.

        ``values``: a number or an iterable of numbers (e.g. one per finished
        episode); an empty iterable still registers the key (NaN if no rank has one).
        """
        if reduce not in _REDUCERS:
            raise ValueError(f"unknown reduction {reduce!r}")
        self._reduce[key] = reduce
        if isinstance(values, Iterable) and not isinstance(values, (str, bytes)):
            self._values[key].extend(float(v) for v in values)
        else:
            self._values[key].append(float(values))

    def dump(self) -> Optional[Dict[str, float]]:
        """Reduce over ranks and write one row (collective). Returns the row on rank 0."""
        local = ({k: v for k, v in self._values.items()}, dict(self._reduce))
        self._values.clear()
        gathered = mpi.gather(local, comm=self.comm)
        if not self.root:
            return None
        merged: Dict[str, List[float]] = defaultdict(list)
        reducers: Dict[str, str] = {}
        for values, reduce in gathered:
            reducers.update(reduce)
            for key, vals in values.items():
                merged[key].extend(vals)
        row = {key: _REDUCERS[reducers[key]](merged.get(key, [])) for key in reducers}
        row.setdefault("time/elapsed_s", time.time() - self._start)
        self._write_row(row)
        self._write_tensorboard(row)
        self._show(row)
        return row

    # --- rank 0 ----------------------------------------------------------------

    def _write_row(self, row: Dict[str, float]) -> None:
        new_keys = [k for k in row if k not in self._header]
        if new_keys or not self.csv_path.is_file():
            rows = read_progress(self.csv_path)[1] if self.csv_path.is_file() else []
            self._header = sorted(set(self._header) | set(row), key=column_key)
            self._rewrite(self._header, rows + [row])
            return
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, self._header, restval="nan").writerow(formatted_row(row))
            f.flush()

    def _rewrite(self, header: List[str], rows: List[Dict]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, header, restval="nan", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(formatted_row(row))
        atomic_write_bytes(self.csv_path, out.getvalue().encode())

    def _write_tensorboard(self, row: Dict[str, float]) -> None:
        if self._tb is None:
            return
        import tensorflow as tf

        step = int(row.get("time/timesteps", row.get("time/iteration", 0)))
        with self._tb.as_default():
            for key, value in row.items():
                if math.isfinite(value):
                    tf.summary.scalar(key, value, step=step)
        self._tb.flush()

    def _show(self, row: Dict[str, float]) -> None:
        if self.progress == "none":
            return
        if self.progress == "lines":
            print(format_line(row, self._eta(row)), flush=True)
            return
        target = row.get("time/timesteps", 0.0)
        self._bar.set_postfix_str(format_postfix(row), refresh=False)
        self._bar.update(max(0, int(target) - self._bar.n))

    def _eta(self, row: Dict[str, float]) -> float:
        """Seconds left at this session's average rate."""
        done = row.get("time/timesteps", 0.0) - self._session_start_steps
        elapsed = time.time() - self._session_start
        if done <= 0 or elapsed <= 0:
            return math.nan
        return (self.total_timesteps - row.get("time/timesteps", 0.0)) * elapsed / done

    def message(self, text: str) -> None:
        """Print ``text`` once (rank 0), without breaking the progress bar."""
        if not self.root:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def default_progress_mode() -> str:
    """A live bar on a terminal, plain lines otherwise (files, pipes, mpirun's forwarding)."""
    return "bar" if sys.stderr.isatty() else "lines"
