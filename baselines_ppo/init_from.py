"""Start a new run from another run's weights (``train(..., init_from=PATH)``).

Why: a run directory is not kept from one machine to the next, but a few-MB
checkpoint or an exported policy travels with the repository. A new run can
continue a line from either:

* a **checkpoint** (a ``ckpt-*`` directory, or a run directory: its latest
  complete checkpoint): both networks, the observation and reward statistics,
  the counters (so the learning-rate schedule and the step count go on from the
  parent's), and -- with the same number of ranks -- the Adam moments and every
  rank's RNG state. With the same config and ranks this is the parent's own
  continuation, bit for bit, written to a new directory.
* an **exported policy** (``policy.npz``, or a run directory holding only
  exported policies): the actor and its log-std only. The value network starts
  from scratch, so PPO's first advantages would be noise and the first updates
  would push the policy in random directions. Hence the first
  ``ppo.value_warmup_iterations`` iterations train the value network alone (the
  actor's gradient is masked to zero, so a fresh Adam leaves it bit-for-bit
  untouched) on batches collected by the unchanged policy; then Adam restarts
  from zero moments so that the actor's first steps are ordinary bias-corrected
  Adam steps, not steps inflated by the critic's long history.

Either may be loaded into wider hidden layers (as many, none narrower): the new
run starts from the parent's function exactly and grows from there
(:mod:`baselines_ppo.widen`); Adam starts afresh, its moments having no entries
for the new weights.

The new run records where it came from in ``lineage.json`` and copies the
parent's training curve (rows up to the branch point, its own parents' first)
to ``parent_progress.csv``, so ``l2run plot`` can draw the whole line even
after the parent directory is gone.

``lineage.json`` is the parent's link (``init_from``, ``kind``, ``iteration``,
``timesteps``) and, for a checkpoint, the settings that differ from the
parent's (``changes``: "key: old -> new", empty when none do), with every
earlier link in ``ancestors`` (oldest first). Why the chain: a line carried from
machine to machine is continued with ``--init-from`` from its committed
checkpoint each time, and each link would otherwise forget where the line
itself began (a run started from an exported policy, a branch with another
setting). A checkpoint link without changes *continues* the line: the same
training in another directory, so :func:`line_start` looks through it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from baselines_ppo.checkpoint import (CHECKPOINT_FILES, CheckpointData, CheckpointError, latest_checkpoint,
                                      load_checkpoint)
from baselines_ppo.compatibility import network_of
from baselines_ppo.config import PPOConfig
from baselines_ppo.export import ExportedPolicy, PolicyFileError, atomic_write_bytes, find_policy, load_policy
from baselines_ppo.widen import widen, widens

LINEAGE_FILE = "lineage.json"
PARENT_PROGRESS_FILE = "parent_progress.csv"
PROGRESS_FILE = "progress.csv"


@dataclasses.dataclass
class InitSource:
    """What a new run starts from: exactly one of ``checkpoint`` and ``policy``."""

    path: Path
    checkpoint: Optional[CheckpointData] = None
    policy: Optional[ExportedPolicy] = None
    parent_rows: str = ""  # CSV text: the parent's curve up to the branch point (header included)
    ancestors: List[Dict[str, Any]] = dataclasses.field(default_factory=list)  # the parent's own links, oldest first
    changes: Optional[List[str]] = None  # settings of the new run that differ from a checkpoint's (None: not compared)

    @property
    def kind(self) -> str:
        return "checkpoint" if self.checkpoint is not None else "policy"

    @property
    def iteration(self) -> int:
        if self.checkpoint is not None:
            return self.checkpoint.iteration
        return int((self.policy.metadata.get("training") or {}).get("iteration", 0))

    @property
    def timesteps(self) -> int:
        if self.checkpoint is not None:
            return self.checkpoint.timesteps
        return int((self.policy.metadata.get("training") or {}).get("timesteps", 0))

    @property
    def hidden_sizes(self) -> List[int]:
        """The parent's hidden layer sizes."""
        if self.checkpoint is not None:
            return list(self.checkpoint.config.get("hidden_sizes", []))
        return [int(kernel.shape[1]) for kernel, _ in self.policy.actor[:-1]]

    def grows(self, config: PPOConfig) -> bool:
        """Whether ``config``'s hidden layers widen the parent's (:mod:`baselines_ppo.widen`)."""
        return widens(self.hidden_sizes, config.hidden_sizes)

    @property
    def metadata(self) -> Dict[str, Any]:
        """The caller's metadata of the parent run (for L2Run: the experiment config)."""
        return dict(self.checkpoint.metadata if self.checkpoint is not None else self.policy.metadata)

    @property
    def task(self) -> Optional[Dict[str, Any]]:
        """The task the parent recorded (None: not recorded, e.g. in an exported policy)."""
        return self.checkpoint.task if self.checkpoint is not None else None

    def lineage(self) -> Dict[str, Any]:
        """What ``lineage.json`` says: the parent's link, then its ancestors (module docstring)."""
        link: Dict[str, Any] = {"init_from": str(self.path), "kind": self.kind, "iteration": self.iteration,
                                "timesteps": self.timesteps}
        if self.changes is not None:
            link["changes"] = list(self.changes)
        if self.ancestors:
            link["ancestors"] = list(self.ancestors)
        return link


def continues(link: Dict[str, Any]) -> bool:
    """Whether a lineage link is the same training going on: a checkpoint with no
    setting changed (links written before ``changes`` existed never are)."""
    return link.get("kind") == "checkpoint" and link.get("changes") == []


def read_lineage(run_dir) -> Optional[Dict[str, Any]]:
    """``run_dir/lineage.json`` (None if the run did not start from another, or it is unreadable)."""
    try:
        lineage = json.loads((Path(run_dir) / LINEAGE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return lineage if isinstance(lineage, dict) else None


def line_start(run_dir) -> int:
    """The iteration at which ``run_dir``'s line began: that of its newest link
    that does not continue (a policy, or a checkpoint with a setting changed),
    looking through continuations; 0 when every link continues (or there is none).
    The rows of parent_progress.csv after it are the line's own, before it its parents'."""
    for link in reversed(_chain(read_lineage(run_dir))):
        if not continues(link):
            return int(link.get("iteration", 0))
    return 0


def load_init_source(path) -> InitSource:
    """Read what ``path`` names: a checkpoint directory, a run directory (its latest
    complete checkpoint, else its exported policy) or an exported policy file.

    Raises CheckpointError with one line naming the path and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"init_from {path}: no such file or directory (expected a checkpoint directory, "
                              "a run directory or an exported policy .npz)")
    try:
        is_checkpoint = path.is_dir() and any((path / name).exists() for name in CHECKPOINT_FILES
                                              if name != "config.json")
        latest = latest_checkpoint(path) if path.is_dir() and not is_checkpoint else None
        if is_checkpoint:
            source, parent_dir = InitSource(path, checkpoint=load_checkpoint(path)), path.parent.parent
        elif latest is not None:
            source, parent_dir = InitSource(latest, checkpoint=load_checkpoint(latest)), path
        else:
            policy_path = find_policy(path) if path.is_dir() else path
            source, parent_dir = InitSource(policy_path, policy=load_policy(policy_path)), policy_path.parent
    except (FileNotFoundError, PolicyFileError) as err:
        raise CheckpointError(f"init_from {path}: {err}") from None
    source.parent_rows = _parent_rows(parent_dir, source.iteration)
    source.ancestors = _ancestors(parent_dir, source.iteration)
    return source


def _ancestors(run_dir: Path, iteration: int) -> List[Dict[str, Any]]:
    """The links of the run in ``run_dir`` (oldest first) made before ``iteration``,
    the parent's point: those are its history (as the rows up to it are its curve,
    :func:`_parent_rows`); a policy exported before a later link has only the earlier ones."""
    return [link for link in _chain(read_lineage(run_dir)) if int(link.get("iteration", 0)) < iteration]


def _chain(lineage: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every link of a lineage.json, oldest first: its ancestors, then its own parent's link."""
    if lineage is None:
        return []
    return [*lineage.get("ancestors", []), {k: v for k, v in lineage.items() if k != "ancestors"}]


def check_fits(source: InitSource, config: PPOConfig, observation_size: int, action_size: int,
               action_low: np.ndarray, action_high: np.ndarray) -> None:
    """CheckpointError naming both values if the source cannot be loaded into the
    networks ``config`` builds for this env (wider hidden layers fit: they grow it)."""
    if source.checkpoint is not None:
        spaces = source.checkpoint.spaces
        saved = network_of(source.checkpoint.config, spaces.get("observation_size"), spaces.get("action_size"))
    else:
        policy = source.policy
        saved = {"observation_size": policy.observation_size, "action_size": policy.action_size,
                 "hidden_sizes": source.hidden_sizes, "activation": policy.activation}
    wanted = network_of(config.to_dict(), observation_size, action_size)
    for key, value in wanted.items():
        if saved[key] != value and not (key == "hidden_sizes" and source.grows(config)):
            grow = " (hidden layers may grow: as many, none narrower)" if key == "hidden_sizes" else ""
            raise CheckpointError(f"init_from {source.path} has {key} = {saved[key]}, but this run's config and "
                                  f"env give {key} = {value}; use a config with the parent's network and env "
                                  f"settings (its config.toml){grow}")
    if source.policy is not None:
        policy = source.policy
        if not (np.allclose(policy.action_low, action_low) and np.allclose(policy.action_high, action_high)):
            raise CheckpointError(f"init_from {source.path} acts in [{policy.action_low.min()}, "
                                  f"{policy.action_high.max()}], this env in [{np.min(action_low)}, "
                                  f"{np.max(action_high)}]")
        normalised = math.isfinite(policy.obs_clip)
        if normalised != config.normalize_observations:
            raise CheckpointError(f"init_from {source.path} was trained with normalize_observations = "
                                  f"{str(normalised).lower()}, this config has "
                                  f"{str(config.normalize_observations).lower()}")


def policy_weights(policy: ExportedPolicy, current: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The learner's weights (``ActorCritic.get_weights()`` names) with the actor
    and log-std taken from ``policy`` (grown to ``current``'s shapes if the
    learner is wider); the critic stays as ``current`` holds it."""
    weights = dict(current)
    for i, (kernel, bias) in enumerate(policy.actor):
        weights[f"actor/kernel_{i}"] = kernel
        weights[f"actor/bias_{i}"] = bias
    weights["log_std"] = policy.log_std
    return widen(weights, current)


def write_lineage(run_dir: Path, source: InitSource) -> None:
    """Rank 0, once, when a new run starts from ``source``."""
    atomic_write_bytes(run_dir / LINEAGE_FILE, json.dumps(source.lineage(), indent=1).encode())
    if source.parent_rows:
        atomic_write_bytes(run_dir / PARENT_PROGRESS_FILE, source.parent_rows.encode())


def _parent_rows(run_dir: Path, iteration: int) -> str:
    """The parent's curve up to ``iteration``: its own parents' rows, then its
    progress.csv rows; CSV text with the union of their columns ("" if none)."""
    rows: List[Dict[str, str]] = []
    header: List[str] = []
    for name in (PARENT_PROGRESS_FILE, PROGRESS_FILE):
        try:
            with open(run_dir / name, newline="") as f:
                reader = csv.DictReader(f)
                for column in reader.fieldnames or []:
                    if column not in header:
                        header.append(column)
                rows += [row for row in reader if _iteration_of(row) <= iteration]
        except OSError:
            continue
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _iteration_of(row: Dict[str, str]) -> float:
    try:
        return float(row.get("time/iteration") or "nan")
    except ValueError:
        return math.nan
