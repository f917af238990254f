"""Self-contained, crash-safe checkpoints: one directory per save.

    run_dir/checkpoints/
        ckpt-00000010/   arrays.npz   weights, Adam moments, observation and reward statistics
                         state.json   counters, best score, RNG state of every rank, spaces
                         config.json  the PPOConfig, the caller's metadata and task
        ckpt-00000020/
        latest           "ckpt-00000020"

Why this layout: a save writes a hidden temp directory, fsyncs every file and
the directory, renames it into place (atomic on POSIX), and only then replaces
``latest`` (temp file + fsync + os.replace). A kill at any moment leaves
either the previous ``latest`` or the new one pointing at a complete
directory. Temp dirs of saves that never finished are deleted when the run
resumes (never a complete save: a kill mid-write is all they record) -- by the
one job that holds the run directory's lock (:mod:`baselines_ppo.run_lock`),
so a second job cannot delete a live job's save in progress.

What a start may do with a run directory (:func:`find_resume_point`,
:func:`check_can_start`), one rule on every launch path:

* resume from the newest complete, readable checkpoint that ``latest``
  committed. Every newer checkpoint directory is skipped loudly and MOVED, never
  deleted, into ``run_dir/superseded-<time>/``, with a copy of progress.csv and
  tb/ as they were (the resumed run rewrites them).
* a directory holding files of an earlier run (:data:`RUN_FILES`) but no usable
  checkpoint is refused, with or without resume: a new run would overwrite its
  progress.csv and policies and delete its TensorBoard curves. ``overwrite=True``
  (``--overwrite``) first moves all of them aside.

The env is never saved: every checkpoint is an episode boundary
(:mod:`baselines_ppo.run`, "exact resume"). Whether a checkpoint fits the run
that resumes it: :mod:`baselines_ppo.compatibility`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from baselines_ppo.export import atomic_write_bytes, fsync_dir

CHECKPOINTS = "checkpoints"
LATEST = "latest"
FORMAT = "baselines_ppo.checkpoint/1"
_NAME = re.compile(r"^ckpt-(\d{8,})$")
CHECKPOINT_FILES = ("arrays.npz", "state.json", "config.json")
#: What a training run writes into its directory: a new run would overwrite or
#: delete each of them, so their presence without a usable checkpoint means "an
#: earlier run is here". (config.toml is not in the list: a user may put the
#: config to train with there; it is set aside by overwrite all the same.)
RUN_FILES = (CHECKPOINTS, "progress.csv", "policy.npz", "best_policy.npz", "config.json", "tb", "snapshots",
             "lineage.json", "parent_progress.csv")
SUPERSEDED_PREFIX = "superseded-"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or does not fit the current run."""


@dataclasses.dataclass
class CheckpointData:
    """Everything needed to continue training exactly where it stopped."""

    iteration: int
    timesteps: int
    episodes: int
    best_score: Optional[float]
    weights: Dict[str, np.ndarray]  # ActorCritic.get_weights()
    optimizer: Dict[str, np.ndarray]  # MpiAdam.state_dict()
    obs_rms: Dict[str, np.ndarray]  # RunningMeanStd.state_dict()
    rng_states: List[Dict[str, Any]]  # numpy bit-generator state of each rank, index = rank
    config: Dict[str, Any]  # PPOConfig.to_dict()
    spaces: Dict[str, Any]  # observation_size, action_size, action_low, action_high
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    reward_rms: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # of the discounted return
    value_warmup_left: int = 0  # iterations of value-only training still due (a run started from a policy)
    task: Optional[Dict[str, Any]] = None  # the settings that define the task (None: not recorded)
    path: Optional[Path] = None


def checkpoint_name(iteration: int) -> str:
    return f"ckpt-{iteration:08d}"


def checkpoints_dir(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINTS


def _iteration_of(path: Path) -> Optional[int]:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(run_dir) -> List[Path]:
    """Complete checkpoint directories, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and _iteration_of(p) is not None and all((p / f).is_file() for f in CHECKPOINT_FILES)]
    return sorted(found, key=_iteration_of)


def latest_checkpoint(run_dir) -> Optional[Path]:
    """The checkpoint ``latest`` points to; None if the run has none.

    If ``latest`` is missing or names a directory that is gone, fall back to the
    newest complete directory.
    """
    root = checkpoints_dir(run_dir)
    pointer = root / LATEST
    if pointer.is_file():
        target = root / pointer.read_text().strip()
        if target.is_dir() and all((target / f).is_file() for f in CHECKPOINT_FILES):
            return target
    complete = list_checkpoints(run_dir)
    return complete[-1] if complete else None


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(run_dir, data: CheckpointData, keep: int) -> Path:
    """Write ``data`` atomically as the new latest checkpoint; keep the newest ``keep``.

    Call on one rank only (rank 0). Returns the checkpoint directory.
    """
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(data.iteration)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()

    arrays = {f"weights/{k}": v for k, v in data.weights.items()}
    arrays.update({f"optimizer/{k}": v for k, v in data.optimizer.items()})
    arrays.update({f"obs_rms/{k}": v for k, v in data.obs_rms.items()})
    arrays.update({f"reward_rms/{k}": v for k, v in data.reward_rms.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_file(tmp / "arrays.npz", buffer.getvalue())
    state = {
        "format": FORMAT,
        "iteration": data.iteration,
        "timesteps": data.timesteps,
        "episodes": data.episodes,
        "best_score": data.best_score,
        "rng_states": data.rng_states,
        "spaces": data.spaces,
        "value_warmup_left": data.value_warmup_left,
    }
    _write_file(tmp / "state.json", json.dumps(state, indent=1).encode())
    saved = {"ppo": data.config, "metadata": data.metadata}
    if data.task is not None:
        saved["task"] = data.task
    _write_file(tmp / "config.json", json.dumps(saved, indent=1, sort_keys=True).encode())
    fsync_dir(tmp)

    final = root / name
    if final.exists():  # left by a run that crashed before pointing `latest` at it
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(root)
    atomic_write_bytes(root / LATEST, (name + "\n").encode())
    older = [p for p in list_checkpoints(run_dir) if p != final]
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def clean_abandoned(run_dir, resumed: Optional[Path]) -> Optional[Path]:
    """Tidy what a killed run left behind: delete the temp directories of saves
    that never finished, and MOVE checkpoint directories newer than the one
    resumed from aside (a timeline about to be rewritten; kept, since it may be
    the only copy of work a damaged file hid). Rank 0, holding the run directory's
    lock (module docstring). Returns the superseded dir, if used."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return None
    start = _iteration_of(resumed) if resumed is not None else -1
    newer = []
    for path in root.iterdir():
        if path.name.startswith(".tmp-") or path.name.startswith(f".{LATEST}.tmp-"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        elif path.is_dir() and (_iteration_of(path) or -1) > start:
            newer.append(path)
    return supersede(run_dir, move=newer) if newer else None


@dataclasses.dataclass
class ResumePoint:
    """Where a run continues (:func:`find_resume_point`)."""

    data: Optional[CheckpointData]
    """The newest complete, readable checkpoint; None if there is none."""
    skipped: List[Tuple[Path, str]] = dataclasses.field(default_factory=list)
    """Newer checkpoint directories that cannot be resumed, newest first, each with why."""

    @property
    def path(self) -> Optional[Path]:
        return self.data.path if self.data is not None else None


def find_resume_point(run_dir) -> ResumePoint:
    """The one rule for where a run resumes: the newest checkpoint directory that
    is complete (every file of :data:`CHECKPOINT_FILES`), readable
    (:func:`load_checkpoint` succeeds) and committed (not newer than the one
    ``latest`` names, when ``latest`` names an existing directory). Reads only:
    the caller moves the skipped ones aside (:func:`set_aside_skipped`)."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return ResumePoint(None)
    committed = None
    try:
        named = root / (root / LATEST).read_text().strip()
        if _iteration_of(named) is not None and named.is_dir():
            committed = _iteration_of(named)
    except (OSError, ValueError):
        pass
    found = sorted((p for p in root.iterdir() if p.is_dir() and _iteration_of(p) is not None),
                   key=_iteration_of, reverse=True)
    skipped: List[Tuple[Path, str]] = []
    for path in found:
        if committed is not None and _iteration_of(path) > committed:
            skipped.append((path, f"newer than the committed {checkpoint_name(committed)}: its save was cut "
                                  "before `latest` moved"))
            continue
        missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
        if missing:
            skipped.append((path, f"incomplete: {', '.join(missing)} missing"))
            continue
        try:
            return ResumePoint(load_checkpoint(path), skipped)
        except CheckpointError as err:
            skipped.append((path, str(err).replace(f"checkpoint {path} is ", "")))
    return ResumePoint(None, skipped)


def earlier_run_files(run_dir) -> List[str]:
    """The names of :data:`RUN_FILES` present in run_dir ("tb/" for a
    directory; an empty directory does not count)."""
    run_dir = Path(run_dir)
    present = []
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_file():
            present.append(name)
        elif path.is_dir() and any(p.is_file() for p in path.rglob("*")):
            present.append(name + "/")
    return present


def check_can_start(run_dir, point: ResumePoint) -> None:
    """CheckpointError (one line: what is there, what to do) if a run cannot
    start in run_dir: it holds files of an earlier run and no checkpoint to resume."""
    if point.data is not None:
        return
    earlier = earlier_run_files(run_dir)
    if not earlier:
        return
    unusable = "; ".join(f"{path.name}: {why}" for path, why in point.skipped)
    unusable = f" (unusable: {unusable})" if unusable else ""
    raise CheckpointError(
        f"{run_dir} holds files of an earlier run ({', '.join(earlier)}) but no complete checkpoint to resume"
        f"{unusable}: choose another run directory (--run-dir), or pass overwrite=True (--overwrite) to move "
        f"them into {Path(run_dir) / SUPERSEDED_PREFIX}<time>/ and start a new run")


def supersede(run_dir, move: Sequence[Path] = (), copy: Sequence[Path] = ()) -> Path:
    """Set files aside without deleting anything: ``move`` (run_dir's files or
    directories, or its checkpoints) and a copy of ``copy`` go to a new
    ``run_dir/superseded-<time>/``, under their path relative to run_dir.
    Returns that directory."""
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir / f"{SUPERSEDED_PREFIX}{stamp}"
    suffix = 1
    while target.exists():
        target = run_dir / f"{SUPERSEDED_PREFIX}{stamp}-{suffix}"
        suffix += 1
    target.mkdir(parents=True)
    for path in copy:
        path = Path(path)
        if path.exists():
            destination = target / path.relative_to(run_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, destination)
            else:
                shutil.copy2(path, destination)
    for path in move:
        path = Path(path)
        destination = target / path.relative_to(run_dir)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, destination)
    fsync_dir(target)
    fsync_dir(run_dir)
    return target


def set_aside_earlier_run(run_dir) -> Optional[Path]:
    """``overwrite``: move every file of an earlier run (:data:`RUN_FILES` and
    config.toml) into ``run_dir/superseded-<time>/``; None if there was none."""
    run_dir = Path(run_dir)
    present = [run_dir / name for name in (*RUN_FILES, "config.toml") if (run_dir / name).exists()]
    return supersede(run_dir, move=present) if present else None


def set_aside_skipped(run_dir, point: ResumePoint) -> Optional[Path]:
    """Move the checkpoints :func:`find_resume_point` skipped into
    ``run_dir/superseded-<time>/`` with a copy of progress.csv and tb/ as they
    are now (the resumed run cuts both back to its checkpoint); None if none."""
    if not point.skipped:
        return None
    run_dir = Path(run_dir)
    return supersede(run_dir, move=[path for path, _ in point.skipped],
                     copy=[run_dir / "progress.csv", run_dir / "tb"])


def load_checkpoint(path) -> CheckpointData:
    """Read a checkpoint directory; CheckpointError naming the path if it is damaged."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        saved = json.loads((path / "config.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} is incomplete: {err.filename} is missing") from err
    except (json.JSONDecodeError, zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CheckpointError(f"checkpoint {path} is damaged ({type(err).__name__}: {err})") from err
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a baselines_ppo checkpoint (format {state.get('format')!r})")

    def section(prefix):
        return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    try:
        return CheckpointData(
            iteration=int(state["iteration"]), timesteps=int(state["timesteps"]),
            episodes=int(state["episodes"]), best_score=state["best_score"],
            weights=section("weights"), optimizer=section("optimizer"), obs_rms=section("obs_rms"),
            reward_rms=section("reward_rms"),
            rng_states=list(state["rng_states"]), config=saved["ppo"], spaces=state["spaces"],
            metadata=saved.get("metadata", {}), value_warmup_left=int(state.get("value_warmup_left", 0)),
            task=saved.get("task"), path=path)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is damaged (missing or bad {err})") from err
