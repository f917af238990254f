"""A training run: ``train()`` and the protocol around the iterations.

Run the same ``train`` on every rank (``mpirun -np N``) or in a plain process.
One iteration (collect, update, log) is :func:`baselines_ppo.trainer.run_iteration`;
this module decides where a run starts (:func:`find_start`), when it saves,
what it writes and when it stops; :func:`train`'s docstring says how.

What "exact resume" means. A run's trajectory depends on the iterations at
which it saved, because the env cannot be saved: every checkpoint, scheduled
(``checkpoint_every``, the last iteration) or not (a stop request), ends the
episodes in progress and starts new ones with :func:`episode_seed`
(:func:`~baselines_ppo.trainer.start_episodes`). Everything else that evolves --
weights, Adam moments, observation and reward statistics, every rank's RNG,
the counters and best score -- is saved bit for bit. Hence: a run resumed from
ANY checkpoint, with the same config and number of ranks, is bit-identical to
an uninterrupted run that also checkpointed at that iteration. From a scheduled
checkpoint that is simply the uninterrupted run. From an off-schedule one (a
Ctrl-C at iteration 3 with checkpoint_every=2) it is NOT the run that was never
stopped -- that one kept its episodes going through iteration 3 -- but the run
whose schedule saves at 3 as well (see :func:`checkpoint_due`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from gymnasium import spaces

from baselines_ppo import mpi, snapshots
from baselines_ppo.checkpoint import (CheckpointData, CheckpointError, check_can_start, clean_abandoned,
                                      find_resume_point, save_checkpoint, set_aside_earlier_run, set_aside_skipped)
from baselines_ppo.compatibility import check_compatible, setting_changes, task_changes
from baselines_ppo.config import PPOConfig
from baselines_ppo.export import BEST_POLICY_FILE, POLICY_FILE, atomic_write_bytes, export_policy
from baselines_ppo.init_from import InitSource, check_fits, load_init_source, policy_weights, write_lineage
from baselines_ppo.logger import Logger, default_progress_mode
from baselines_ppo.rollout import Collector
from baselines_ppo.run_lock import RunDirBusy, RunDirUnwritable, RunLock
from baselines_ppo.stop import StopRequest
from baselines_ppo.symmetry import Symmetry
from baselines_ppo.tf_util import broadcast_parameters, check_synced
from baselines_ppo.threads import limit_threads
from baselines_ppo.trainer import (Counters, Iterations, Learner, PolicySnapshot, check_symmetry, run_iteration,
                                   seeded_rng, start_episodes)
from baselines_ppo.widen import widen

RUN_CONFIG_FILE = "config.json"

EnvFn = Callable[[int], Any]  # seed -> gymnasium env (not yet reset)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank`` for numpy, TensorFlow and its env."""
    return seed + 10000 * rank


def episode_seed(seed_of_rank: int, iteration: int) -> int:
    """Seed of the env reset that starts iteration ``iteration`` after a checkpoint.

    Depends on (seed, rank, iteration) only, so a resumed run resets its env
    exactly as the uninterrupted run did at the same checkpoint.
    """
    if iteration == 0:
        return seed_of_rank
    return int(np.random.SeedSequence([seed_of_rank, iteration]).generate_state(1)[0])


@dataclasses.dataclass
class TrainResult:
    """How ``train`` ended; identical on every rank."""

    run_dir: Path
    iterations: int
    timesteps: int
    best_score: Optional[float]
    interrupted: bool
    started: bool = True
    """False: stopped before the first iteration, nothing written (nor the counters meaningful)."""


@dataclasses.dataclass
class RunSpec:
    """What ``train`` was asked to do: its arguments but the env and the stop request."""

    run_dir: Path
    config: PPOConfig
    iterations: Optional[int] = None
    resume: bool = False
    overwrite: bool = False
    init_from: Any = None
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    task: Optional[Dict[str, Any]] = None
    run_files: Dict[str, str] = dataclasses.field(default_factory=dict)
    progress: Optional[str] = None
    tensorboard: bool = True
    symmetry: Optional[Symmetry] = None
    comm: Any = None


@dataclasses.dataclass
class StartPoint:
    """Where a run starts (:func:`find_start`), the same on every rank, and for the
    start report the settings changed since the checkpoint and notes (files moved aside, another task)."""

    checkpoint: Optional[CheckpointData] = None
    source: Optional[InitSource] = None
    changes: List[str] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)


def train(env_fn: EnvFn, config: PPOConfig, run_dir, iterations: Optional[int] = None, resume: bool = False,
          progress: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None,
          task: Optional[Dict[str, Any]] = None, run_files: Optional[Dict[str, str]] = None,
          tensorboard: bool = True, comm=None, symmetry: Optional[Symmetry] = None, init_from=None,
          overwrite: bool = False, stop: Optional[StopRequest] = None) -> TrainResult:
    """Train PPO on ``env_fn(seed)`` (one env per rank); write everything to ``run_dir``.

    iterations: stop once this many iterations exist in total (resumed ones
        included); None: enough to reach config.total_timesteps.
    resume: continue from the newest complete, readable checkpoint in run_dir
        (:mod:`baselines_ppo.checkpoint`; bit-identical as the module docstring says);
        a fresh start if run_dir holds nothing of an earlier run; without it an
        existing checkpoint is an error.
    progress: progress display on rank 0: "bar", "lines" (one plain line per
        iteration) or "none"; None: a bar on a terminal, lines otherwise.
    metadata: JSON-able dict stored in checkpoints and exported policies (e.g. the
        experiment config, so evaluation can rebuild the same env).
    task: JSON-able dict of the settings that define the task, stored in checkpoints
        and checked on resume (:mod:`baselines_ppo.compatibility`). None: not checked.
    run_files: {file name: text} written into run_dir by rank 0 once the run is
        known to start (after the checkpoint checks), e.g. the config as TOML.
    symmetry: the env's left-right mirror, required by config.mirror_augmentation
        (ValueError without it); ignored otherwise.
    init_from: a checkpoint directory, run directory or exported policy to start
        a new run from (:mod:`baselines_ppo.init_from`); ignored when run_dir holds
        a checkpoint to resume.
    overwrite: start a new run after moving every file of an earlier run into
        run_dir/superseded-<time>/ (nothing is deleted).
    stop: the StopRequest the caller installed at process start (so that a stop
        during imports is caught); by default ``train`` installs one. A stop before
        the first iteration returns at once with started=False.
    Returns a TrainResult. Raises, on every rank, RunDirBusy (before building an env)
    if another job holds run_dir's lock, CheckpointError if the checkpoint cannot be used.
    """
    spec = RunSpec(Path(run_dir), config, iterations, resume, overwrite, init_from, dict(metadata or {}), task,
                   dict(run_files or {}), progress, tensorboard, symmetry, comm)
    with contextlib.ExitStack() as cleanup:  # undone in reverse: the env, the lock, our stop handlers
        # first: a stop while the env and networks are built must not kill
        stop = stop.__enter__() if stop is not None else cleanup.enter_context(StopRequest())
        check_symmetry(config, symmetry)  # before building an env
        limit_threads()
        lock = _lock_run_dir(spec.run_dir, comm)
        if lock is not None:
            cleanup.callback(lock.release)
        if not spec.overwrite:  # an earlier run it cannot resume: refused in seconds, not after the minute an
            # env and the networks take (find_start checks again, with the env's sizes, and moves files aside)
            _decided_by_root(lambda: check_can_start(spec.run_dir, find_resume_point(spec.run_dir)), comm)
        if mpi.any_rank(stop.requested, comm=comm):
            return _result(spec, Counters(), interrupted=True, started=False)
        seed = rank_seed(config.seed, mpi.rank(comm))
        rng = seeded_rng(seed)
        env = env_fn(seed)
        cleanup.callback(env.close)
        return _train_on(env, spec, rng, seed, stop)


def _result(spec: RunSpec, counters: Counters, interrupted: bool, started: bool = True) -> TrainResult:
    return TrainResult(spec.run_dir, counters.iteration, counters.timesteps, counters.best_score, interrupted, started)


def _lock_run_dir(run_dir: Path, comm) -> Optional[RunLock]:
    """Rank 0 takes run_dir's lock (its RunLock is returned; None on other ranks).
    The outcome is broadcast, so that when the lock is held by another job every
    rank raises RunDirBusy instead of the others waiting in the next collective."""
    lock, outcome = None, None
    if mpi.is_root(comm):
        try:
            lock = RunLock(run_dir).acquire()
        except RunDirBusy as err:
            outcome = ("busy", str(err))
        except OSError as err:  # e.g. run_dir not writable: still end every rank
            outcome = ("error", f"cannot write to run directory {run_dir} ({err.strerror or err}); "
                                "choose a writable --run-dir")
    outcome = mpi.broadcast(outcome, comm=comm)
    if outcome is None:
        return lock
    if outcome[0] == "busy":
        raise RunDirBusy(outcome[1])
    raise RunDirUnwritable(outcome[1])


def _decided_by_root(decide: Callable[[], Any], comm) -> Any:
    """``decide()`` run on rank 0, its answer on every rank (collective); a
    CheckpointError it raises is raised on every rank, so that no rank waits for
    the others in the next collective and every launch path fails alike."""
    answer = None
    if mpi.is_root(comm):
        try:
            answer = decide()
        except CheckpointError as err:
            answer = err
    answer = mpi.broadcast(answer, comm=comm)
    if isinstance(answer, CheckpointError):
        raise answer
    return answer


def _train_on(env, spec: RunSpec, rng: np.random.Generator, seed: int, stop: StopRequest) -> TrainResult:
    if not isinstance(env.action_space, spaces.Box):
        raise TypeError(f"baselines_ppo trains envs with a Box action space, got {env.action_space}")
    comm, size = spec.comm, mpi.size(spec.comm)
    collector = Collector(env)
    learner = Learner(spec.config, collector.observation_size, collector.action_size, rng, comm, spec.symmetry,
                      action_bounds=(collector.action_low, collector.action_high))
    broadcast_parameters(learner.flat, comm=comm)
    start = _decided_by_root(lambda: find_start(spec, collector), comm)  # the same on every rank, or the same error
    if start.checkpoint is not None:
        counters = restore(learner, start.checkpoint, rng, mpi.rank(comm))
    elif start.source is not None:
        counters = initialize(learner, start.source, rng, mpi.rank(comm), size)
    else:
        counters = Counters()
    if mpi.any_rank(stop.requested, comm=comm):  # the whole start-up so far: nothing written yet
        for note in start.notes if mpi.is_root(comm) else ():
            print(note, file=sys.stderr, flush=True)
        return _result(spec, counters, interrupted=True, started=False)

    target, total_timesteps = _target(spec, counters, size)
    resumed = start.checkpoint is not None
    logger = Logger(spec.run_dir, total_timesteps=total_timesteps, start_timesteps=counters.timesteps,
                    resume_iteration=counters.iteration if resumed else None,
                    resume_timesteps=counters.timesteps if resumed else None,
                    progress=spec.progress or default_progress_mode(), tensorboard=spec.tensorboard, comm=comm)
    try:
        if mpi.is_root(comm):
            _write_run_files(spec, start.source, size)
            _report_start(logger, spec, start, size, counters.value_warmup_left)
        if counters.iteration >= target:
            logger.message(f"{counters.iteration} iterations already done (asked for {target}): nothing to do")
            return _result(spec, counters, interrupted=False)
        return _result(spec, counters, _iterate(Iterations(collector, learner, logger, counters, rng), spec, target,
                                                seed, stop))
    finally:
        logger.close()


def _target(spec: RunSpec, counters: Counters, size: int) -> Tuple[int, int]:
    """(iterations to reach, timesteps the progress bar counts to)."""
    config = spec.config
    if spec.iterations is not None:
        return spec.iterations, counters.timesteps + sum(
            config.batch_at(counters.timesteps)[0] * size for _ in range(max(0, spec.iterations - counters.iteration)))
    # follow the batch schedule from where the counters are
    return counters.iteration + config.iterations_to_total(counters.timesteps, size), config.total_timesteps


def _iterate(state: Iterations, spec: RunSpec, target: int, seed: int, stop: StopRequest) -> bool:
    """Iterate until ``target`` iterations exist or a stop is requested; True if
    stopped. After each iteration: a snapshot when due, a sync check now and then,
    and a checkpoint when due or stopping -- each checkpoint an episode boundary."""
    collector, learner, counters = state.collector, state.learner, state.counters
    config, comm = spec.config, spec.comm
    start_episodes(collector, learner, episode_seed(seed, counters.iteration))
    best: Optional[PolicySnapshot] = None  # the best iteration since the last save
    while counters.iteration < target:
        improved = run_iteration(state)
        if improved is not None:
            best = improved
        if snapshots.due(counters.iteration, config.snapshot_every) and mpi.is_root(comm):
            write_policy(snapshots.snapshot_path(spec.run_dir, counters.iteration), current_policy(learner, counters),
                         collector, spec.metadata)
            snapshots.prune(spec.run_dir, config.keep_snapshots, config.snapshot_keep_every)
        stopping = mpi.any_rank(stop.requested, comm=comm)
        if counters.iteration % config.check_sync_every == 0:
            check_synced(learner.flat.get(), comm=comm, context=f"after iteration {counters.iteration}")
        if stopping or checkpoint_due(counters.iteration, config, target):
            save(spec, learner, collector, counters, state.rng, best)
            best = None
            start_episodes(collector, learner, episode_seed(seed, counters.iteration))
        if stopping:
            state.logger.message(f"stopped after iteration {counters.iteration}; checkpoint saved in {spec.run_dir}; "
                                 "continue with resume (--resume)")
            return True
    return False


def checkpoint_due(iteration: int, config: PPOConfig, target: int) -> bool:
    """The checkpoint schedule: every config.checkpoint_every iterations and at the
    last one; a stop request adds one more. Each save is an episode boundary, so
    this schedule is part of what defines a run's trajectory (module docstring)."""
    return iteration % config.checkpoint_every == 0 or iteration >= target


# --- where a run starts ------------------------------------------------------------------


def find_start(spec: RunSpec, collector: Collector) -> StartPoint:
    """Rank 0, holding the lock, decides where the run starts and sets aside what that
    supersedes: the checkpoint :mod:`baselines_ppo.checkpoint`'s rule finds, if it fits
    (:mod:`baselines_ppo.compatibility`); else init_from, checked to fit the networks."""
    run_dir, notes = spec.run_dir, []
    if spec.overwrite:
        aside = set_aside_earlier_run(run_dir)
        if aside is not None:
            notes.append(f"overwrite: the earlier run's files were moved into {aside}")
    point = find_resume_point(run_dir)
    data = point.data
    if data is not None and not spec.resume:
        raise CheckpointError(f"{run_dir} already holds checkpoint {data.path.name}: pass resume=True "
                              "(--resume) to continue it, overwrite=True (--overwrite) to set it aside "
                              "and start anew, or choose another run directory")
    check_can_start(run_dir, point)
    start = StartPoint(data, notes=notes)
    if data is not None:
        start.changes = check_compatible(data, spec.config, spec.task, collector.observation_size,
                                         collector.action_size)
    elif spec.init_from is not None:
        start.source = source = load_init_source(spec.init_from)
        check_fits(source, spec.config, collector.observation_size, collector.action_size,
                   collector.action_low, collector.action_high)
        other_task = task_changes(spec.task, source.task, source.metadata)
        if other_task:
            notes.append(f"init_from {source.path} was trained on another task ({', '.join(other_task)}); "
                         "training it on this run's")
        if source.checkpoint is not None:  # lineage.json records them all: none means the line goes on
            start.changes = setting_changes(source.checkpoint.config, spec.config)  # the task's: the note above
            source.changes = other_task + start.changes
    aside = set_aside_skipped(run_dir, point) if data is not None else None
    for path, why in point.skipped if aside is not None else ():
        notes.append(f"WARNING: skipped checkpoint {path.name}: {why}; moved it into {aside}, with a "
                     f"copy of progress.csv and tb/ as they were")
    clean_abandoned(run_dir, data.path if data is not None else None)
    return start


def restore(learner: Learner, data: CheckpointData, rng: np.random.Generator, rank: int) -> Counters:
    """Load a checkpoint (already read and checked) into this rank's learner and RNG."""
    source = f"checkpoint {data.path}"
    learner.model.set_weights(data.weights, source)
    learner.adam.load_state_dict(data.optimizer, source)
    learner.obs_normalizer.load_state_dict(data.obs_rms)
    learner.reward_normalizer.load_state_dict(data.reward_rms)
    if rank < len(data.rng_states):
        rng.bit_generator.state = data.rng_states[rank]
    return Counters(data.iteration, data.timesteps, data.episodes, data.best_score, data.value_warmup_left)


def initialize(learner: Learner, source: InitSource, rng: np.random.Generator, rank: int, size: int) -> Counters:
    """Load ``source`` (already checked to fit) into a new run: see
    :mod:`baselines_ppo.init_from`. The counters go on from the parent's; the
    best score starts afresh (best_policy.npz is this run's)."""
    if source.checkpoint is not None:
        data = source.checkpoint
        grows = source.grows(learner.config)
        if grows:  # the parent's weights in the wider shapes, a fresh Adam's state in place of its own
            data = dataclasses.replace(data, weights=widen(data.weights, learner.model.get_weights()),
                                       optimizer=learner.adam.state_dict())
        counters = restore(learner, data, rng if len(data.rng_states) == size else np.random.default_rng(), rank)
        if len(data.rng_states) != size:  # another world: the moments were averaged over other ranks
            learner.adam.reset()
        counters.best_score = None
        return counters
    policy = source.policy
    learner.model.set_weights(policy_weights(policy, learner.model.get_weights()), f"policy {source.path}")
    learner.obs_normalizer.load_export(policy.obs_mean, policy.obs_std, source.timesteps)
    return Counters(iteration=source.iteration, timesteps=source.timesteps,
                    value_warmup_left=learner.config.value_warmup_iterations)


def _write_run_files(spec: RunSpec, source: Optional[InitSource], size: int) -> None:
    """Rank 0, once the run is known to start: everything that defines it."""
    config = spec.config
    content = {"ppo": config.to_dict(), "metadata": spec.metadata, "ranks": size,
               "rank_seeds": [rank_seed(config.seed, r) for r in range(size)]}
    atomic_write_bytes(spec.run_dir / RUN_CONFIG_FILE, json.dumps(content, indent=1, sort_keys=True).encode())
    for name, text in spec.run_files.items():
        atomic_write_bytes(spec.run_dir / name, text.encode())
    if source is not None:
        write_lineage(spec.run_dir, source)


def _report_start(logger: Logger, spec: RunSpec, start: StartPoint, size: int, warmup: int = 0) -> None:
    for note in start.notes:
        logger.message(note)
    source, data = start.source, start.checkpoint
    if source is not None:
        logger.message(f"new run from {source.kind} {source.path} (iteration {source.iteration}, "
                       f"{source.timesteps} steps)")
        if start.changes:
            logger.message("settings changed from the parent: " + "; ".join(start.changes))
        elif source.changes == []:
            logger.message("no setting changed from the parent: the run continues its line")
        if source.grows(spec.config):
            logger.message(f"the hidden layers grow from {source.hidden_sizes} to {list(spec.config.hidden_sizes)}: "
                           "the new units start with outgoing weights 0, so the policy and value are the "
                           "parent's (to rounding); Adam starts afresh")
        if warmup:
            logger.message(f"the exported policy has no value network: the first {warmup} iteration(s) train "
                           "the value network alone (ppo.value_warmup_iterations)")
        return
    if data is None:
        if spec.resume:
            logger.message(f"no checkpoint in {spec.run_dir}: starting a new run")
        return
    logger.message(f"resuming {data.path} at iteration {data.iteration} ({data.timesteps} steps)")
    if start.changes:
        logger.message("settings changed since the checkpoint: " + "; ".join(start.changes))
    if len(data.rng_states) != size:
        logger.message(f"the checkpoint was written by {len(data.rng_states)} ranks, this run has {size}: "
                       "continuing, but not bit-for-bit as an uninterrupted run would")


# --- what a run writes ---------------------------------------------------------------------


def save(spec: RunSpec, learner: Learner, collector: Collector, counters: Counters, rng: np.random.Generator,
         best: Optional[PolicySnapshot]) -> Optional[Path]:
    """Checkpoint + latest policy + best policy if it improved (collective: the RNG
    states of all ranks are gathered; rank 0 writes). Returns the checkpoint dir on rank 0."""
    rng_states = mpi.gather(rng.bit_generator.state, comm=spec.comm)
    if not mpi.is_root(spec.comm):
        return None
    data = CheckpointData(
        iteration=counters.iteration, timesteps=counters.timesteps, episodes=counters.episodes,
        best_score=counters.best_score, weights=learner.model.get_weights(), optimizer=learner.adam.state_dict(),
        obs_rms=learner.obs_normalizer.state_dict(), rng_states=rng_states, config=spec.config.to_dict(),
        spaces={"observation_size": collector.observation_size, "action_size": collector.action_size,
                "action_low": collector.action_low.tolist(), "action_high": collector.action_high.tolist()},
        metadata=spec.metadata, reward_rms=learner.reward_normalizer.state_dict(),
        value_warmup_left=counters.value_warmup_left, task=spec.task)
    path = save_checkpoint(spec.run_dir, data, spec.config.keep_checkpoints)
    write_policy(spec.run_dir / POLICY_FILE, current_policy(learner, counters), collector, spec.metadata)
    if best is not None:
        write_policy(spec.run_dir / BEST_POLICY_FILE, best, collector, spec.metadata)
    return path


def current_policy(learner: Learner, counters: Counters) -> PolicySnapshot:
    """The policy the learner holds now, after ``counters.iteration`` iterations."""
    return PolicySnapshot(learner.model.numpy_policy(), learner.obs_normalizer.export(),
                          {"iteration": counters.iteration, "timesteps": counters.timesteps})


def write_policy(path: Path, snapshot: PolicySnapshot, collector: Collector, metadata: Dict[str, Any]) -> None:
    mean, std, clip = snapshot.normalization
    export_policy(path, snapshot.policy.actor, snapshot.policy.log_std, snapshot.policy.activation, mean, std,
                  clip, collector.action_low, collector.action_high, {**metadata, "training": snapshot.info})
