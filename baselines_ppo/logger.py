"""Per-iteration metrics: every rank stores, rank 0 reduces and writes.

The logger owns the rank check, so the trainer calls ``store`` and ``dump``
on every rank without ``if rank == 0``. ``dump`` gathers each rank's values to
rank 0 (a small pickled dict per iteration), reduces them (mean, max or sum over
the values of all ranks) and writes:

* ``run_dir/progress.csv`` -- one row per iteration; NaN where an iteration had
  nothing to report (no finished episode); rewritten with a wider header when a
  new key appears; on resume, rows after the resumed iteration are dropped
  (rows an uninterrupted run replays).
* ``run_dir/tb/session-<iteration>/`` -- TensorBoard scalars (tf.summary),
  x = timesteps, one directory per training session named after the iteration
  it started from (``tensorboard --logdir run_dir/tb`` shows the sessions as
  consecutive runs). A new run deletes ``tb/``. On resume from iteration k (at
  T timesteps), as with progress.csv, what was logged after the checkpoint goes:
  sessions that started at or after k are deleted, and the event files of
  earlier sessions are rewritten without their events past step T (a job killed
  after its last checkpoint leaves such a tail). Curves never overlap and match
  progress.csv. Event files directly in ``tb/`` (written before sessions
  existed) are trimmed the same way. A TensorBoard already running may keep
  showing a trimmed tail until it is restarted: it does not re-read files.
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
import os
import re
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
import tensorflow as tf

from baselines_ppo import mpi
from baselines_ppo.export import atomic_write_bytes
from baselines_ppo.progress import (PROGRESS_CSV, as_float, column_key, format_line, format_postfix,
                                    formatted_row, read_progress)

TENSORBOARD_DIR = "tb"
_SESSION = re.compile(r"^session-(\d{8,})$")
_EVENTS_PREFIX = "events.out.tfevents."
PROGRESS_MODES = ("bar", "lines", "none")

_REDUCERS = {
    "mean": lambda v: float(np.mean(v)) if len(v) else math.nan,
    "max": lambda v: float(np.max(v)) if len(v) else math.nan,
    "sum": lambda v: float(np.sum(v)) if len(v) else 0.0,
}


class Logger:
    """Collects rank-local values, reduces them over ranks once per iteration."""

    def __init__(self, run_dir, total_timesteps: int, resume_iteration: Optional[int] = None,
                 progress: str = "bar", tensorboard: bool = True, comm=None,
                 resume_timesteps: Optional[int] = None, start_timesteps: Optional[int] = None):
        """``resume_iteration``: keep progress.csv rows up to it (None: start a new
        file and a new tb/); ``resume_timesteps``: the checkpoint's timesteps, where
        TensorBoard events are cut (default: those of the last row kept).
        ``total_timesteps``: the progress bar's total; ``start_timesteps``: the
        counters this session starts from, for its rate and ETA (default: those of
        the last row kept; a run started from a parent's counters has no row yet)."""
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
        if resume_timesteps is None:
            resume_timesteps = int(self._session_start_steps)
        session = prepare_tensorboard_dir(self.run_dir / TENSORBOARD_DIR, resume_iteration, resume_timesteps)
        if start_timesteps is not None:
            self._session_start_steps = float(start_timesteps)
        if tensorboard:
            self._tb = tf.summary.create_file_writer(str(session))
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


def session_dir(tb_dir, start_iteration: int) -> Path:
    """Where the session that starts at ``start_iteration`` writes its events."""
    return Path(tb_dir) / f"session-{start_iteration:08d}"


def prepare_tensorboard_dir(tb_dir: Path, resume_iteration: Optional[int], resume_timesteps: int) -> Path:
    """Drop what a new session must not show (module docstring: all of tb_dir for a new
    run, ``resume_iteration`` None); returns the session's directory."""
    if resume_iteration is None:
        if tb_dir.is_dir():
            shutil.rmtree(tb_dir)
        return session_dir(tb_dir, 0)
    if tb_dir.is_dir():
        for path in sorted(tb_dir.iterdir()):
            match = _SESSION.match(path.name)
            if match and path.is_dir():
                if int(match.group(1)) >= resume_iteration:
                    shutil.rmtree(path)  # wholly after the checkpoint: a timeline being rewritten
                    continue
                for events in sorted(path.glob(_EVENTS_PREFIX + "*")):
                    trim_events(events, resume_timesteps)
            elif path.is_file() and path.name.startswith(_EVENTS_PREFIX):
                trim_events(path, resume_timesteps)
    return session_dir(tb_dir, resume_iteration)


def trim_events(path: Path, max_step: int) -> int:
    """Rewrite the TensorBoard event file ``path`` without its events after step
    ``max_step`` (atomically); returns how many records went (0: file untouched).

    A record cut short by a kill mid-write ends the readable part; it goes too.
    """
    kept, dropped = [], 0
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            data = record.numpy()
            if tf.compat.v1.Event.FromString(data).step <= max_step:
                kept.append(data)
            else:
                dropped += 1
    except tf.errors.DataLossError:
        dropped += 1
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for data in kept:
                writer.write(data)
        os.replace(tmp, path)
    return dropped


def default_progress_mode() -> str:
    """A live bar on a terminal, plain lines otherwise (files, pipes, mpirun's forwarding)."""
    return "bar" if sys.stderr.isatty() else "lines"
