"""One PPO iteration -- collect, update, log, a function each -- and the learner they share.

:mod:`baselines_ppo.run` runs the iterations and does what surrounds them.
Each rank steps its own env; the ranks share one set of weights, kept identical
by averaging gradients (:mod:`baselines_ppo.mpi_adam`). A function marked
collective must be called by every rank, in the same order.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from baselines_ppo import mpi
from baselines_ppo.buffer import Batch, RolloutBuffer
from baselines_ppo.config import PPOConfig
from baselines_ppo.logger import Logger
from baselines_ppo.mpi_adam import MpiAdam
from baselines_ppo.normalizers import ObservationNormalizer, RewardNormalizer
from baselines_ppo.numpy_policy import NumpyActorCritic
from baselines_ppo.policy import ActorCritic
from baselines_ppo.rollout import Collector, RolloutStats
from baselines_ppo.symmetry import Symmetry, mirror_batch, mirror_log_prob_gap
from baselines_ppo.tf_util import FlatParameters


def seeded_rng(seed_of_rank: int) -> np.random.Generator:
    """Seed TensorFlow's global generator with this rank's seed; return the rank's
    numpy generator, seeded alike."""
    tf.random.set_seed(seed_of_rank)
    return np.random.default_rng(seed_of_rank)


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
class PolicySnapshot:
    """A policy as it acted: its numpy copy, the observation normalisation it saw
    (ObservationNormalizer.export()) and what to record of it."""

    policy: NumpyActorCritic
    normalization: Tuple[np.ndarray, np.ndarray, float]
    info: Dict[str, Any]


class Learner:
    """This rank's share of what training changes: the networks and their flat
    view, the optimiser, the observation and reward normalisers; and the env's
    symmetry (None if it has none). Build it on every rank, then give every rank
    rank 0's initial weights (:func:`baselines_ppo.tf_util.broadcast_parameters`)."""

    def __init__(self, config: PPOConfig, observation_size: int, action_size: int,
                 rng: np.random.Generator, comm=None, symmetry: Optional[Symmetry] = None,
                 action_bounds: Optional[Tuple[np.ndarray, np.ndarray]] = None):
        check_symmetry(config, symmetry)
        if symmetry is not None:
            symmetry.check_sizes(observation_size, action_size)
        self.config, self.symmetry, self.comm = config, symmetry, comm
        low, high = action_bounds or (np.full(action_size, -np.inf), np.full(action_size, np.inf))
        #: the last arguments of ``ActorCritic.symmetry_loss_and_gradient``: the action mirror
        #: (permutation, signs) and the env's action bounds, which the loss clips the mean action to
        self.symmetry_arguments = None if symmetry is None else (
            tf.constant(symmetry.act_perm, tf.int32), tf.constant(symmetry.act_sign, tf.float32),
            tf.constant(low, tf.float32), tf.constant(high, tf.float32))
        self.model = ActorCritic(observation_size, action_size, config.hidden_sizes, config.activation,
                                 config.init_log_std, rng)
        self.flat = FlatParameters(self.model.parameters)
        critic = {id(v) for layer in self.model.critic for v in layer}
        #: True at the flat positions of the value network's parameters
        self.critic_mask = np.concatenate([np.full(int(np.prod(v.shape)), id(v) in critic)
                                           for v in self.model.parameters])
        self.adam = MpiAdam(self.flat.size, epsilon=config.adam_eps, comm=comm)
        self.obs_normalizer = ObservationNormalizer(observation_size, config.normalize_observations,
                                                    config.obs_clip)
        self.reward_normalizer = RewardNormalizer(config.normalize_rewards, config.gamma, config.reward_clip)


def check_symmetry(config: PPOConfig, symmetry: Optional[Symmetry]) -> None:
    """ValueError if mirror augmentation or the symmetry loss is asked for without a symmetry to apply."""
    if symmetry is not None and not isinstance(symmetry, Symmetry):
        raise TypeError(f"symmetry must be a baselines_ppo.symmetry.Symmetry, got {type(symmetry).__name__}")
    for name, on in (("mirror_augmentation", config.mirror_augmentation),
                     ("symmetry_coef", config.symmetry_coef > 0)):
        if on and symmetry is None:
            raise ValueError(f"ppo.{name} is on but no symmetry was given: pass "
                             "train(..., symmetry=Symmetry(obs_perm, act_perm, ...)) for an env with a left-right "
                             f"mirror, or turn {name} off")


def start_episodes(collector: Collector, learner: Learner, seed: Optional[int]) -> None:
    """New episodes on this rank, at the start and after every checkpoint: the
    env is reset with ``seed``, and the running return of reward normalisation
    restarts with it (the episode it summed is gone). The loop starts episodes
    only through here, so neither half can be forgotten."""
    collector.reset(seed)
    learner.reward_normalizer.reset()


# --- one iteration ---------------------------------------------------------------------


@dataclasses.dataclass
class Iterations:
    """What consecutive iterations on one rank share (:func:`run_iteration`)."""

    collector: Collector
    learner: Learner
    logger: Logger
    counters: Counters
    rng: np.random.Generator
    buffer: Optional[RolloutBuffer] = None
    """Resized when the batch schedule (PPOConfig.batch_at) changes the batch."""


def run_iteration(state: Iterations) -> Optional[PolicySnapshot]:
    """One iteration (collective): collect a batch, update the networks, advance
    the counters and log a row. Returns the policy that collected the batch if
    its score is a new best (counters.best_score then holds it, on every rank),
    else None."""
    collector, learner, counters, comm = state.collector, state.learner, state.counters, state.learner.comm
    config = learner.config
    wall_start = time.perf_counter()
    steps_per_rank, minibatch_size = config.batch_at(counters.timesteps)
    steps = steps_per_rank * mpi.size(comm)
    if state.buffer is None or state.buffer.size != steps_per_rank:
        state.buffer = RolloutBuffer(steps_per_rank, collector.observation_size, collector.action_size)
    normalization = learner.obs_normalizer.export()  # what the acting policy sees: before this iteration's update
    batch, rollout, acting = collect(collector, learner, state.buffer, state.rng)
    learn_start = time.perf_counter()
    lr = config.learning_rate_at(counters.timesteps)
    warming_up = counters.value_warmup_left > 0
    diagnostics = update(learner, batch, lr, state.rng, critic_only=warming_up, minibatch_size=minibatch_size)
    if config.mirror_augmentation:
        diagnostics["mirror_logp_gap"] = mirror_log_prob_gap(batch)
    if warming_up:
        counters.value_warmup_left -= 1
        if counters.value_warmup_left == 0:  # the actor's first steps: plain bias-corrected Adam
            learner.adam.reset()
    learn_s = time.perf_counter() - learn_start + rollout.policy_seconds

    counters.iteration += 1
    counters.timesteps += steps
    counters.episodes += int(mpi.allreduce_sum(len(rollout.episodes), comm=comm))
    seconds = {"env": rollout.env_seconds, "learn": learn_s, "wall": time.perf_counter() - wall_start}
    row = log_iteration(state.logger, counters, rollout, batch, diagnostics, lr, float(np.exp(acting.log_std).mean()),
                        seconds, steps, comm)
    # the row exists on rank 0 only; broadcast so that every rank's counters agree
    score = mpi.broadcast(iteration_score(row), comm=comm)
    if score is None or (counters.best_score is not None and score <= counters.best_score):
        return None
    counters.best_score = score
    return PolicySnapshot(acting, normalization, {"iteration": counters.iteration - 1, "score": score,
                                                  "timesteps": counters.timesteps - steps})


def collect(collector: Collector, learner: Learner, buffer: RolloutBuffer,
            rng: np.random.Generator) -> Tuple[Batch, RolloutStats, NumpyActorCritic]:
    """Fill the buffer with the current policy, update the observation and reward
    statistics, compute advantages (collective), and with mirror_augmentation
    append the mirrored samples. Returns the training batch, the rollout
    statistics, and the numpy policy that acted (what the episode scores measure).
    """
    config, comm = learner.config, learner.comm
    acting = learner.model.numpy_policy()
    stats = collector.collect(acting, learner.obs_normalizer, buffer, rng)
    raw = stats.raw_observations
    mirrored = None
    if config.mirror_augmentation or config.symmetry_coef > 0:
        mirrored_raw = learner.symmetry.mirror_observations(raw)
        # normalised with the statistics the real samples were normalised with (before the update below)
        mirrored = learner.obs_normalizer(mirrored_raw)
        if config.mirror_augmentation:
            raw = np.concatenate([raw, mirrored_raw])  # the networks train on both halves
    learner.obs_normalizer.update(raw, comm)
    learner.reward_normalizer.update(buffer.rewards, buffer.terminated | buffer.truncated, comm)
    batch = buffer.finish(stats.last_value, config.gamma, config.lam, config.normalize_advantages,
                          config.reward_scale, comm=comm, rewards=learner.reward_normalizer(buffer.rewards))
    if config.mirror_augmentation:
        batch = mirror_batch(batch, mirrored, learner.symmetry, acting)
    elif mirrored is not None:  # the symmetry loss's mirror images of the states
        batch.mirrored_observations = mirrored.astype(batch.observations.dtype)
    return batch, stats, acting


def update(learner: Learner, batch: Batch, lr: float, rng: np.random.Generator,
           critic_only: bool = False, minibatch_size: Optional[int] = None) -> Dict[str, float]:
    """PPO epochs over this rank's batch in minibatches (default config.minibatch_size;
    PPOConfig.batch_at's schedule may say otherwise); each step averages gradients over
    ranks (collective). Returns rank-local means of the diagnostics. critic_only: the actor's gradient is
    zeroed (value warm-up; with Adam moments at zero the actor then stays exactly where it is)."""
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
            if config.symmetry_coef > 0:  # in value warm-up too (logged alike); the mask below zeroes it
                symmetry_grad, symmetry_loss = model.symmetry_loss_and_gradient(
                    batch.observations[idx], batch.mirrored_observations[idx], *learner.symmetry_arguments)
                grad = grad + np.float32(config.symmetry_coef) * symmetry_grad.numpy()
                stats = dict(stats, symmetry_loss=symmetry_loss)
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
    for key in ("iteration", "timesteps", "episodes"):
        logger.store(f"time/{key}", getattr(counters, key))
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
    for key in ("approx_kl", "entropy", "clipfrac", "epochs", "grad_norm", "mirror_logp_gap"):
        if key in diagnostics:  # mirror_logp_gap: with mirror augmentation only
            logger.store(f"train/{key}", diagnostics[key])
    if "symmetry_loss" in diagnostics:  # with PPOConfig.symmetry_coef
        logger.store("losses/symmetry", diagnostics["symmetry_loss"])
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
