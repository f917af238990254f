"""The training loop: collect, update, log, checkpoint -- one function each.

Run the same ``train`` on every rank (``mpirun -np N``) or in a plain process.
Each rank steps its own env; the ranks share one set of weights, kept
identical by averaging gradients (:mod:`baselines_ppo.mpi_adam`).

Stopping: SIGINT, SIGTERM, SIGHUP or SIGUSR1 (which mpirun forwards to every
rank) finish the current iteration, save a checkpoint and return; a second
SIGINT, SIGTERM or SIGHUP abandons at once (the previous checkpoint stays
intact). A stop that arrives during start-up (imports, env, networks, the
checkpoint lookup) returns before anything is written: "stopped before the
first iteration; nothing to save" (:mod:`baselines_ppo.stop`).

What a start may do with run_dir's files (resume from the newest complete,
readable checkpoint; never overwrite an earlier run it cannot resume; move
aside, never delete): :mod:`baselines_ppo.checkpoint`.

One job per run directory: rank 0 holds ``run_dir/.lock``
(:mod:`baselines_ppo.run_lock`) from before the checkpoint lookup until
``train`` returns; a second job on the same directory fails on every rank with
:class:`~baselines_ppo.run_lock.RunDirBusy` before touching any file.

What "exact resume" means. A run's trajectory depends on the iterations at
which it saved, because the env cannot be saved: every checkpoint, scheduled
(``checkpoint_every``, the last iteration) or not (a stop request), ends the
episodes in progress and resets the envs with :func:`episode_seed` (and the
running return of reward normalisation). Everything else that evolves --
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

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from baselines_ppo import mpi
from baselines_ppo.buffer import Batch, RolloutBuffer
from baselines_ppo.checkpoint import (CheckpointData, CheckpointError, check_can_start, check_compatible,
                                      clean_abandoned, find_resume_point, save_checkpoint, set_aside_earlier_run,
                                      set_aside_skipped)
from baselines_ppo.config import PPOConfig
from baselines_ppo.export import BEST_POLICY_FILE, POLICY_FILE, atomic_write_bytes, export_policy
from baselines_ppo.init_from import (InitSource, check_fits, load_init_source, policy_obs_rms, policy_weights,
                                     write_lineage)
from baselines_ppo.logger import Logger, default_progress_mode
from baselines_ppo.numpy_policy import NumpyActorCritic
from baselines_ppo.rollout import Collector, ObservationNormalizer, RewardNormalizer, RolloutStats
from baselines_ppo.run_lock import RunDirBusy, RunDirUnwritable, RunLock
from baselines_ppo.running_mean_std import RunningMeanStd
from baselines_ppo.stop import StopRequest
from baselines_ppo import snapshots
from baselines_ppo.symmetry import Symmetry, mirror_batch
from baselines_ppo.tf_util import FlatParameters, broadcast_parameters, check_synced, limit_threads

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
class Counters:
    """Training progress; identical on every rank (best_score included: rank 0
    computes each iteration's score from the reduced row and broadcasts it)."""

    iteration: int = 0
    timesteps: int = 0
    episodes: int = 0
    best_score: Optional[float] = None
    value_warmup_left: int = 0
    """Iterations of value-only training still due (a run started from an exported policy)."""


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


class Learner:
    """The networks, their flat view, the optimiser, the observation and reward
    statistics, and the env's symmetry (None if it has none)."""

    def __init__(self, config: PPOConfig, observation_size: int, action_size: int,
                 rng: np.random.Generator, comm=None, symmetry: Optional[Symmetry] = None):
        from baselines_ppo.mpi_adam import MpiAdam
        from baselines_ppo.policy import ActorCritic

        check_symmetry(config, symmetry)
        if symmetry is not None:
            symmetry.check_sizes(observation_size, action_size)
        self.config = config
        self.symmetry = symmetry
        self.model = ActorCritic(observation_size, action_size, config.hidden_sizes, config.activation,
                                 config.init_log_std, rng)
        self.flat = FlatParameters(self.model.parameters)
        critic = {id(v) for layer in self.model.critic for v in layer}
        #: True at the flat positions of the value network's parameters
        self.critic_mask = np.concatenate([np.full(int(np.prod(v.shape)), id(v) in critic)
                                           for v in self.model.parameters])
        broadcast_parameters(self.flat, comm=comm)
        self.adam = MpiAdam(self.flat.size, epsilon=config.adam_eps, comm=comm)
        self.obs_rms = RunningMeanStd((observation_size,))
        self.normalize = ObservationNormalizer(self.obs_rms, config.normalize_observations, config.obs_clip)
        self.reward_rms = RunningMeanStd(())
        self.normalize_reward = RewardNormalizer(self.reward_rms, config.normalize_rewards, config.gamma,
                                                 config.reward_clip)
        self.comm = comm


def check_symmetry(config: PPOConfig, symmetry: Optional[Symmetry]) -> None:
    """ValueError if mirror augmentation is asked for without a symmetry to apply."""
    if symmetry is not None and not isinstance(symmetry, Symmetry):
        raise TypeError(f"symmetry must be a baselines_ppo.symmetry.Symmetry, got {type(symmetry).__name__}")
    if config.mirror_augmentation and symmetry is None:
        raise ValueError("ppo.mirror_augmentation is on but no symmetry was given: pass "
                         "train(..., symmetry=Symmetry(obs_perm, act_perm, ...)) for an env with a left-right "
                         "mirror, or turn mirror_augmentation off")


# --- the four steps of an iteration ----------------------------------------------


def collect(collector: Collector, learner: Learner, buffer: RolloutBuffer,
            rng: np.random.Generator) -> Tuple[Batch, RolloutStats, NumpyActorCritic]:
    """Fill the buffer with the current policy, update the observation and reward
    statistics (pooled over ranks), compute advantages (collective), and with
    mirror_augmentation append the mirrored samples.

    Returns the training batch (steps_per_rank samples, 2 * steps_per_rank with
    mirroring), the rollout statistics, and the numpy policy that acted (what the
    iteration's episode scores measure).
    """
    config, comm = learner.config, learner.comm
    acting = learner.model.numpy_policy()
    stats = collector.collect(acting, learner.normalize, buffer, rng)
    raw = stats.raw_observations
    mirrored = None
    if config.mirror_augmentation:
        mirrored_raw = learner.symmetry.mirror_observations(raw)
        # normalised with the statistics the real samples were normalised with (before the update below)
        mirrored = learner.normalize(mirrored_raw)
        raw = np.concatenate([raw, mirrored_raw])  # the networks train on both halves
    if config.normalize_observations:
        mean, std, count = mpi.moments(raw, comm=comm)
        learner.obs_rms.update_from_moments(mean, np.square(std), count)
    if config.normalize_rewards:
        returns = learner.normalize_reward.discounted_returns(buffer.rewards, buffer.terminated | buffer.truncated)
        mean, std, count = mpi.moments(returns, comm=comm)
        learner.reward_rms.update_from_moments(mean, np.square(std), count)
    batch = buffer.finish(stats.last_value, config.gamma, config.lam, config.normalize_advantages,
                          config.reward_scale, comm=comm, rewards=learner.normalize_reward(buffer.rewards))
    if mirrored is not None:
        batch = mirror_batch(batch, mirrored, learner.symmetry, acting)
    return batch, stats, acting


def update(learner: Learner, batch: Batch, lr: float, rng: np.random.Generator,
           critic_only: bool = False, minibatch_size: Optional[int] = None) -> Dict[str, float]:
    """PPO epochs over this rank's batch in minibatches of config.minibatch_size;
    each step averages gradients over ranks (collective). Returns rank-local means
    of the diagnostics. minibatch_size: default config.minibatch_size (the schedule
    of PPOConfig.batch_at may say otherwise). critic_only: the actor's gradient is zeroed (value warm-up;
    with Adam moments at zero the actor then stays exactly where it is)."""
    import tensorflow as tf

    config, model, comm = learner.config, learner.model, learner.comm
    minibatch_size = minibatch_size or config.minibatch_size
    coefficients = [tf.constant(v, tf.float32) for v in (config.clip_range, config.entropy_coef, config.vf_coef)]
    params = learner.flat.get()
    history: Dict[str, List[float]] = {}
    grad_norms = []
    epochs_run = 0
    samples = len(batch.advantages)  # the same on every rank: steps_per_rank, doubled by mirroring
    for _ in range(config.epochs):
        order = rng.permutation(samples)
        epoch_kl = []
        for start in range(0, samples, minibatch_size):
            idx = order[start:start + minibatch_size]
            grad, stats = model.loss_and_gradient(
                batch.observations[idx], batch.actions[idx], batch.log_probs[idx],
                batch.advantages[idx], batch.returns[idx], *coefficients)
            grad = grad.numpy()
            if critic_only:
                grad = np.where(learner.critic_mask, grad, 0.0).astype(grad.dtype)
            params, norm = learner.adam.step(params, grad, lr, config.max_grad_norm)
            learner.flat.set(params)
            grad_norms.append(norm)
            for key, value in stats.items():
                history.setdefault(key, []).append(float(value))
            epoch_kl.append(float(stats["approx_kl"]))
        epochs_run += 1
        if config.target_kl is not None:
            # averaged over ranks so that every rank stops after the same epoch
            if float(mpi.allreduce_mean(np.mean(epoch_kl), comm=comm)) > 1.5 * config.target_kl:
                break
    result = {key: float(np.mean(values)) for key, values in history.items()}
    result["epochs"] = epochs_run
    result["grad_norm"] = float(np.mean(grad_norms))
    return result


def explained_variance(values: np.ndarray, returns: np.ndarray, comm=None) -> float:
    """1 - Var(returns - values) / Var(returns) over all ranks (collective):
    1 = the critic predicts the targets, 0 = no better than their mean."""
    _, std_returns, _ = mpi.moments(returns, comm=comm)
    _, std_error, _ = mpi.moments(returns - values, comm=comm)
    if std_returns == 0:
        return float("nan")
    return float(1.0 - np.square(std_error) / np.square(std_returns))


def log_iteration(logger: Logger, counters: Counters, rollout: RolloutStats, batch: Batch,
                  diagnostics: Dict[str, float], lr: float, action_std: float, seconds: Dict[str, float],
                  steps: int, comm=None) -> Optional[Dict[str, float]]:
    """Store this rank's numbers and dump one row (collective); the row on rank 0."""
    episodes = rollout.episodes
    logger.store("time/iteration", counters.iteration)
    logger.store("time/timesteps", counters.timesteps)
    logger.store("time/episodes", counters.episodes)
    logger.store("rollout/ep_return", [e.ret for e in episodes])
    logger.store("rollout/ep_length", [e.length for e in episodes])
    logger.store("rollout/episodes", len(episodes), reduce="sum")
    logger.store("rollout/terminated_fraction", [float(e.terminated) for e in episodes])
    distances = [e.distance for e in episodes if e.distance is not None]
    if distances:
        logger.store("rollout/distance", distances)
        logger.store("rollout/distance_max", distances, reduce="max")
    for episode in episodes:
        for term, value in episode.reward_terms.items():
            logger.store(f"reward/{term}", value)
    logger.store("rollout/sim_errors", rollout.sim_errors, reduce="sum")
    logger.store("losses/policy", diagnostics["policy_loss"])
    logger.store("losses/value", diagnostics["value_loss"])
    logger.store("train/approx_kl", diagnostics["approx_kl"])
    logger.store("train/entropy", diagnostics["entropy"])
    logger.store("train/clipfrac", diagnostics["clipfrac"])
    logger.store("train/epochs", diagnostics["epochs"])
    logger.store("train/grad_norm", diagnostics["grad_norm"])
    # over the training batch: with mirror augmentation, the mirrored states (V of the mirrored
    # state against the original's target) count too, since the critic is trained on them
    logger.store("train/explained_var", explained_variance(batch.values, batch.returns, comm))
    logger.store("train/lr", lr)
    logger.store("train/batch_steps", steps)  # env steps of this iteration over all ranks (the batch schedule)
    logger.store("train/action_std", action_std)
    total = seconds["env"] + seconds["learn"]
    logger.store("perf/steps_per_s", steps / max(seconds["wall"], 1e-9))
    logger.store("perf/env_s", seconds["env"])
    logger.store("perf/learn_s", seconds["learn"])
    logger.store("perf/learn_fraction", seconds["learn"] / total if total > 0 else float("nan"))
    return logger.dump()


def iteration_score(row: Optional[Dict[str, float]]) -> Optional[float]:
    """What "best" means: mean episode distance if the env reports one, else mean return."""
    if row is None:
        return None
    for key in ("rollout/distance", "rollout/ep_return"):
        value = row.get(key)
        if value is not None and np.isfinite(value):
            return float(value)
    return None


# --- checkpoints and exported policies -------------------------------------------


@dataclasses.dataclass
class PolicySnapshot:
    """The numpy actor that collected an iteration, with the statistics it used."""

    policy: NumpyActorCritic
    obs_rms: Dict[str, np.ndarray]
    info: Dict[str, Any]


def write_policy(path: Path, snapshot: PolicySnapshot, learner: Learner, collector: Collector,
                 metadata: Dict[str, Any]) -> None:
    config = learner.config
    if config.normalize_observations:
        mean = snapshot.obs_rms["mean"]
        std = np.sqrt(snapshot.obs_rms["var"] + 1e-8)
        clip = config.obs_clip
    else:  # identity: the network saw raw observations
        mean, std, clip = np.zeros(collector.observation_size), np.ones(collector.observation_size), np.inf
    export_policy(path, snapshot.policy.actor, snapshot.policy.log_std, snapshot.policy.activation, mean, std,
                  clip, collector.action_low, collector.action_high, {**metadata, "training": snapshot.info})


def save(run_dir: Path, learner: Learner, collector: Collector, counters: Counters, rng: np.random.Generator,
         metadata: Dict[str, Any], best: Optional[PolicySnapshot]) -> Optional[Path]:
    """Checkpoint + latest policy + best policy if it improved (collective: the RNG
    states of all ranks are gathered; rank 0 writes). Returns the checkpoint dir on rank 0."""
    rng_states = mpi.gather(rng.bit_generator.state, comm=learner.comm)
    if not mpi.is_root(learner.comm):
        return None
    data = CheckpointData(
        iteration=counters.iteration, timesteps=counters.timesteps, episodes=counters.episodes,
        best_score=counters.best_score, weights=learner.model.get_weights(),
        optimizer=learner.adam.state_dict(), obs_rms=learner.obs_rms.state_dict(), rng_states=rng_states,
        config=learner.config.to_dict(), spaces=spaces_of(collector), metadata=metadata,
        reward_rms=learner.reward_rms.state_dict(), value_warmup_left=counters.value_warmup_left)
    path = save_checkpoint(run_dir, data, learner.config.keep_checkpoints)
    write_policy(run_dir / POLICY_FILE, current_policy(learner, counters), learner, collector, metadata)
    if best is not None:
        write_policy(run_dir / BEST_POLICY_FILE, best, learner, collector, metadata)
    return path


def current_policy(learner: Learner, counters: Counters) -> PolicySnapshot:
    """The policy the learner holds now, after ``counters.iteration`` iterations."""
    return PolicySnapshot(learner.model.numpy_policy(), learner.obs_rms.state_dict(),
                          {"iteration": counters.iteration, "timesteps": counters.timesteps})


def save_snapshot(run_dir: Path, learner: Learner, collector: Collector, counters: Counters,
                  metadata: Dict[str, Any]) -> None:
    """Rank 0: keep this iteration's exported policy in run_dir/snapshots (bounded)."""
    config = learner.config
    write_policy(snapshots.snapshot_path(run_dir, counters.iteration), current_policy(learner, counters), learner,
                 collector, metadata)
    snapshots.prune(run_dir, config.keep_snapshots, config.snapshot_keep_every)


def spaces_of(collector: Collector) -> Dict[str, Any]:
    return {"observation_size": collector.observation_size, "action_size": collector.action_size,
            "action_low": collector.action_low.tolist(), "action_high": collector.action_high.tolist()}


def restore(learner: Learner, data: CheckpointData, rng: np.random.Generator, rank: int) -> Counters:
    """Load a checkpoint (already read and checked) into this rank's learner and RNG."""
    source = f"checkpoint {data.path}"
    learner.model.set_weights(data.weights, source)
    learner.adam.load_state_dict(data.optimizer, source)
    learner.obs_rms.load_state_dict(data.obs_rms)
    if data.reward_rms:  # absent from checkpoints written before reward normalisation existed
        learner.reward_rms.load_state_dict(data.reward_rms)
    if rank < len(data.rng_states):
        rng.bit_generator.state = data.rng_states[rank]
    return Counters(data.iteration, data.timesteps, data.episodes, data.best_score, data.value_warmup_left)


def initialize(learner: Learner, source: InitSource, rng: np.random.Generator, rank: int, size: int) -> Counters:
    """Load ``source`` (already checked to fit) into a new run: see
    :mod:`baselines_ppo.init_from`. The counters go on from the parent's; the
    best score starts afresh (best_policy.npz is this run's)."""
    if source.checkpoint is not None:
        data = source.checkpoint
        counters = restore(learner, data, rng if len(data.rng_states) == size else np.random.default_rng(), rank)
        if len(data.rng_states) != size:  # another world: the moments were averaged over other ranks
            learner.adam.reset()
        counters.best_score = None
        return counters
    policy = source.policy
    learner.model.set_weights(policy_weights(policy, learner.model.get_weights()), f"policy {source.path}")
    if learner.config.normalize_observations:
        learner.obs_rms.load_state_dict(policy_obs_rms(policy, source.timesteps))
    return Counters(iteration=source.iteration, timesteps=source.timesteps,
                    value_warmup_left=learner.config.value_warmup_iterations)


def _find_resume_point(run_dir: Path, resume: bool, config: PPOConfig, collector: Collector, comm,
                       init_from=None, overwrite: bool = False):
    """Rank 0 decides (:mod:`baselines_ppo.checkpoint`'s rule) and sets aside what
    the decision supersedes; every rank gets the same answer (data or the same
    error): (checkpoint to resume or None, changed settings, InitSource to start
    from or None, notes for the start report)."""
    answer = None
    if mpi.is_root(comm):
        try:
            notes = []
            if overwrite:
                aside = set_aside_earlier_run(run_dir)
                if aside is not None:
                    notes.append(f"overwrite: the earlier run's files were moved into {aside}")
            point = find_resume_point(run_dir)
            data = point.data
            if data is not None and not resume:
                raise CheckpointError(f"{run_dir} already holds checkpoint {data.path.name}: pass resume=True "
                                      "(--resume) to continue it, overwrite=True (--overwrite) to set it aside "
                                      "and start anew, or choose another run directory")
            check_can_start(run_dir, point)
            changes = check_compatible(data, config, collector.observation_size, collector.action_size) \
                if data is not None else []
            source = None
            if data is None and init_from is not None:
                source = load_init_source(init_from)
                check_fits(source, config, collector.observation_size, collector.action_size,
                           collector.action_low, collector.action_high)
            aside = set_aside_skipped(run_dir, point) if data is not None else None
            for path, why in point.skipped if aside is not None else ():
                notes.append(f"WARNING: skipped checkpoint {path.name}: {why}; moved it into {aside}, with a "
                             f"copy of progress.csv and tb/ as they were")
            clean_abandoned(run_dir, data.path if data is not None else None)
            answer = ("ok", data, changes, source, notes)
        except CheckpointError as err:
            answer = ("error", str(err), None, None, None)
    answer = mpi.broadcast(answer, comm=comm)
    if answer[0] == "error":
        raise CheckpointError(answer[1])
    return answer[1:]


# --- the loop ----------------------------------------------------------------------


def train(env_fn: EnvFn, config: PPOConfig, run_dir, iterations: Optional[int] = None, resume: bool = False,
          quiet: bool = False, progress: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None,
          run_files: Optional[Dict[str, str]] = None, tensorboard: bool = True, comm=None,
          symmetry: Optional[Symmetry] = None, init_from=None, overwrite: bool = False,
          stop: Optional[StopRequest] = None) -> TrainResult:
    """Train PPO on ``env_fn(seed)`` (one env per rank); write everything to ``run_dir``.

    iterations: stop once this many iterations exist in total (resumed ones
        included); None: enough to reach config.total_timesteps.
    resume: continue from the newest complete, readable checkpoint in run_dir
        (newer unusable ones are moved aside, loudly); a fresh start if run_dir
        holds nothing of an earlier run; without it an existing checkpoint is an
        error. The result is bit-identical to an uninterrupted run that
        checkpointed at the same iteration (module docstring: "exact resume").
        A run_dir with an earlier run's files but no usable checkpoint is an
        error either way (:func:`baselines_ppo.checkpoint.check_can_start`).
    quiet / progress: progress display on rank 0: "bar", "lines" (one plain line
        per iteration, the default when quiet or not on a terminal) or "none".
    metadata: JSON-able dict stored in checkpoints and exported policies (e.g. the
        experiment config, so evaluation can rebuild the same env).
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
        during imports is caught); by default ``train`` installs one itself. A
        stop before the first iteration returns at once with started=False.
    Returns a TrainResult (same on every rank). Raises RunDirBusy (on every rank,
    before building an env or touching run_dir's files) if another job holds
    run_dir's lock, CheckpointError (on every rank) if the checkpoint cannot be used.
    """
    own_stop = stop is None
    stop = (stop or StopRequest()).__enter__()  # before the slow imports: a stop there must not kill
    try:
        return _train(env_fn, config, run_dir, iterations, resume, quiet, progress, metadata, run_files, tensorboard,
                      comm, symmetry, init_from, overwrite, stop)
    finally:
        if own_stop:
            stop.__exit__(None, None, None)


def _train(env_fn, config, run_dir, iterations, resume, quiet, progress, metadata, run_files, tensorboard, comm,
           symmetry, init_from, overwrite, stop) -> TrainResult:
    check_symmetry(config, symmetry)  # before building an env
    limit_threads()
    run_dir = Path(run_dir)
    lock = _lock_run_dir(run_dir, comm)
    try:
        _refuse_early(run_dir, overwrite, comm)  # seconds, not the minute TensorFlow and an env take
        if mpi.any_rank(stop.requested, comm=comm):
            return TrainResult(run_dir, 0, 0, None, True, started=False)
        import tensorflow as tf

        metadata = dict(metadata or {})
        seed = rank_seed(config.seed, mpi.rank(comm))
        rng = np.random.default_rng(seed)
        tf.random.set_seed(seed)
        env = env_fn(seed)
        try:
            return _train_with(env, config, run_dir, iterations, resume, progress or ("lines" if quiet else None),
                               metadata, run_files or {}, tensorboard, rng, seed, comm, symmetry, init_from,
                               overwrite, stop)
        finally:
            env.close()
    finally:
        if lock is not None:
            lock.release()


def _refuse_early(run_dir: Path, overwrite: bool, comm) -> None:
    """CheckpointError on every rank if run_dir holds an earlier run it cannot
    resume (:func:`~baselines_ppo.checkpoint.check_can_start`), decided by rank 0
    holding the lock, before any slow start-up. _find_resume_point checks again,
    with the networks built, and moves files aside."""
    error = None
    if mpi.is_root(comm) and not overwrite:
        try:
            check_can_start(run_dir, find_resume_point(run_dir))
        except CheckpointError as err:
            error = str(err)
    error = mpi.broadcast(error, comm=comm)
    if error is not None:
        raise CheckpointError(error)


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


def _train_with(env, config: PPOConfig, run_dir: Path, iterations, resume, progress, metadata, run_files,
                tensorboard, rng, seed, comm, symmetry, init_from=None, overwrite=False,
                stop: Optional[StopRequest] = None) -> TrainResult:
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Box):
        raise TypeError(f"baselines_ppo trains envs with a Box action space, got {env.action_space}")
    rank, size = mpi.rank(comm), mpi.size(comm)
    collector = Collector(env)
    learner = Learner(config, collector.observation_size, collector.action_size, rng, comm, symmetry)
    stop = stop or StopRequest()
    data, changes, source, notes = _find_resume_point(run_dir, resume, config, collector, comm, init_from, overwrite)
    if data is not None:
        counters = restore(learner, data, rng, rank)
    elif source is not None:
        counters = initialize(learner, source, rng, rank, size)
    else:
        counters = Counters()
    if mpi.any_rank(stop.requested, comm=comm):  # the whole start-up so far: nothing written yet
        for note in notes if mpi.is_root(comm) else ():
            print(note, file=sys.stderr, flush=True)
        return TrainResult(run_dir, counters.iteration, counters.timesteps, counters.best_score, True, started=False)

    if iterations is not None:
        target = iterations
        total_timesteps = counters.timesteps + sum(  # the progress bar's total
            config.batch_at(counters.timesteps)[0] * size for _ in range(max(0, target - counters.iteration)))
    else:  # follow the batch schedule from where the counters are
        target = counters.iteration + config.iterations_to_total(counters.timesteps, size)
        total_timesteps = config.total_timesteps
    logger = Logger(run_dir, total_timesteps=total_timesteps, start_timesteps=counters.timesteps,
                    resume_iteration=counters.iteration if data is not None else None,
                    resume_timesteps=counters.timesteps if data is not None else None,
                    progress=progress or default_progress_mode(), tensorboard=tensorboard, comm=comm)
    try:
        if mpi.is_root(comm):
            _write_run_config(run_dir, config, metadata, size)
            for name, text in run_files.items():
                atomic_write_bytes(run_dir / name, text.encode())
            if source is not None:
                write_lineage(run_dir, source)
            for note in notes:
                logger.message(note)
            _report_start(logger, run_dir, data, changes, resume, size, source, counters.value_warmup_left)
        if counters.iteration >= target:
            logger.message(f"{counters.iteration} iterations already done (asked for {target}): nothing to do")
            return TrainResult(run_dir, counters.iteration, counters.timesteps, counters.best_score, False)
        interrupted = _loop(collector, learner, logger, counters, target, run_dir, metadata, rng, seed, stop)
        return TrainResult(run_dir, counters.iteration, counters.timesteps, counters.best_score, interrupted)
    finally:
        logger.close()


def _report_start(logger: Logger, run_dir: Path, data: Optional[CheckpointData], changes: List[str],
                  resume: bool, size: int, source: Optional[InitSource] = None, warmup: int = 0) -> None:
    if source is not None:
        logger.message(f"new run from {source.kind} {source.path} (iteration {source.iteration}, "
                       f"{source.timesteps} steps)")
        if warmup:
            logger.message(f"the exported policy has no value network: the first {warmup} iteration(s) train "
                           "the value network alone (ppo.value_warmup_iterations)")
        return
    if data is None:
        if resume:
            logger.message(f"no checkpoint in {run_dir}: starting a new run")
        return
    logger.message(f"resuming {data.path} at iteration {data.iteration} ({data.timesteps} steps)")
    if changes:
        logger.message("settings changed since the checkpoint: " + "; ".join(changes))
    if len(data.rng_states) != size:
        logger.message(f"the checkpoint was written by {len(data.rng_states)} ranks, this run has {size}: "
                       "continuing, but not bit-for-bit as an uninterrupted run would")


def _loop(collector: Collector, learner: Learner, logger: Logger, counters: Counters, target: int, run_dir: Path,
          metadata: Dict[str, Any], rng: np.random.Generator, seed: int, stop: StopRequest) -> bool:
    """Iterate until ``target`` iterations exist or a stop is requested; True if stopped."""
    config, comm = learner.config, learner.comm
    buffer = None
    collector.reset(episode_seed(seed, counters.iteration))
    learner.normalize_reward.reset()
    best: Optional[PolicySnapshot] = None
    while counters.iteration < target:
        wall_start = time.perf_counter()
        steps_per_rank, minibatch_size = config.batch_at(counters.timesteps)
        steps_per_iteration = steps_per_rank * mpi.size(comm)
        if buffer is None or buffer.size != steps_per_rank:  # the schedule of PPOConfig.early_batch_until
            buffer = RolloutBuffer(steps_per_rank, collector.observation_size, collector.action_size)
        rms_before = learner.obs_rms.state_dict()
        batch, rollout, acting = collect(collector, learner, buffer, rng)
        learn_start = time.perf_counter()
        lr = config.learning_rate_at(counters.timesteps)
        warming_up = counters.value_warmup_left > 0
        diagnostics = update(learner, batch, lr, rng, critic_only=warming_up, minibatch_size=minibatch_size)
        if warming_up:
            counters.value_warmup_left -= 1
            if counters.value_warmup_left == 0:  # the actor's first steps: plain bias-corrected Adam
                learner.adam.reset()
        learn_s = time.perf_counter() - learn_start + rollout.policy_seconds

        counters.iteration += 1
        counters.timesteps += steps_per_iteration
        counters.episodes += int(mpi.allreduce_sum(len(rollout.episodes), comm=comm))
        seconds = {"env": rollout.env_seconds, "learn": learn_s, "wall": time.perf_counter() - wall_start}
        row = log_iteration(logger, counters, rollout, batch, diagnostics, lr, float(np.exp(acting.log_std).mean()),
                            seconds, steps_per_iteration, comm)
        # the row exists on rank 0 only; broadcast so that every rank's counters agree
        score = mpi.broadcast(iteration_score(row), comm=comm)
        if score is not None and (counters.best_score is None or score > counters.best_score):
            counters.best_score = score
            best = PolicySnapshot(acting, rms_before, {"iteration": counters.iteration - 1, "score": score,
                                                       "timesteps": counters.timesteps - steps_per_iteration})

        if snapshots.due(counters.iteration, config.snapshot_every) and mpi.is_root(comm):
            save_snapshot(run_dir, learner, collector, counters, metadata)
        stopping = mpi.any_rank(stop.requested, comm=comm)
        if counters.iteration % config.check_sync_every == 0:
            check_synced(learner.flat.get(), comm=comm, context=f"after iteration {counters.iteration}")
        if stopping or checkpoint_due(counters.iteration, config, target):
            save(run_dir, learner, collector, counters, rng, metadata, best)
            best = None
            collector.reset(episode_seed(seed, counters.iteration))  # every checkpoint is an episode boundary
            learner.normalize_reward.reset()
        if stopping:
            logger.message(f"stopped after iteration {counters.iteration}; checkpoint saved in {run_dir}; "
                           "continue with resume (--resume)")
            return True
    return False


def checkpoint_due(iteration: int, config: PPOConfig, target: int) -> bool:
    """The checkpoint schedule: every config.checkpoint_every iterations and at the
    last one; a stop request adds one more. Each save is an episode boundary, so
    this schedule is part of what defines a run's trajectory (module docstring)."""
    return iteration % config.checkpoint_every == 0 or iteration >= target


def _write_run_config(run_dir: Path, config: PPOConfig, metadata: Dict[str, Any], size: int) -> None:
    """Dump everything that defines the run at its start (rank 0)."""
    content = {"ppo": config.to_dict(), "metadata": metadata, "ranks": size,
               "rank_seeds": [rank_seed(config.seed, r) for r in range(size)]}
    atomic_write_bytes(run_dir / RUN_CONFIG_FILE, json.dumps(content, indent=1, sort_keys=True).encode())
