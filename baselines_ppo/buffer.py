"""Rollout storage of one rank and the advantage computation it owns.

Why bootstrapping is handled here and carefully: an episode that ends because
the skeleton fell (``terminated``) has no future reward, so the value after it
is 0. An episode cut by the time limit (``truncated``), or by the end of the
batch, would have continued; treating that cut as a fall teaches the critic
that the last states of every long episode are worthless and biases the
advantages of exactly the good runs (Pardo et al. 2018, "Time Limits in
Reinforcement Learning"). There we bootstrap with V(s_final) -- the value of
the true final observation, which the collector evaluates before the env resets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from baselines_ppo import mpi


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                episode_ends: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates (Schulman et al. 2016) of one rank's steps.

    All arguments have shape (T,), in time order:
      rewards[t]      reward of step t;
      values[t]       V(s_t);
      next_values[t]  the value to bootstrap from after step t: V(s_{t+1}) inside an
                      episode, V(final observation) if the episode was truncated at
                      t, or after the last step of the batch, 0 if it terminated;
      episode_ends[t] True if an episode (terminated or truncated) ended at step t,
                      which stops the lambda-recursion from crossing into the next one.
    Returns advantages of shape (T,); the value targets are advantages + values.
    """
    T = len(rewards)
    advantages = np.zeros(T, dtype=np.float64)
    running = 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        running = delta + gamma * lam * (0.0 if episode_ends[t] else 1.0) * running
        advantages[t] = running
    return advantages


@dataclass
class Batch:
    """One rank's rollout ready for the update; every array has length T."""

    observations: np.ndarray  # (T, obs_size) float32, already normalised
    actions: np.ndarray  # (T, act_size) float32, unclipped samples
    log_probs: np.ndarray  # (T,) float32, log-probabilities at collection time
    values: np.ndarray  # (T,) float32, V(s_t) at collection time
    advantages: np.ndarray  # (T,) float32, normalised if requested
    returns: np.ndarray  # (T,) float32, value targets (raw advantages + values)
    mirrored_observations: Optional[np.ndarray] = None  # (T, obs_size): for PPOConfig.symmetry_coef


class RolloutBuffer:
    """Fixed-size storage for ``size`` steps of one env."""

    def __init__(self, size: int, observation_size: int, action_size: int):
        self.size = size
        self.observations = np.zeros((size, observation_size), dtype=np.float32)
        self.actions = np.zeros((size, action_size), dtype=np.float32)
        self.log_probs = np.zeros(size, dtype=np.float64)
        self.values = np.zeros(size, dtype=np.float64)
        self.rewards = np.zeros(size, dtype=np.float64)
        self.terminated = np.zeros(size, dtype=bool)
        self.truncated = np.zeros(size, dtype=bool)
        self.final_values = np.zeros(size, dtype=np.float64)
        self.pos = 0

    def add(self, observation, action, log_prob: float, value: float, reward: float,
            terminated: bool, truncated: bool, final_value: float = 0.0) -> None:
        """Store step ``pos``. ``final_value`` = V(final observation), used only if
        the episode was truncated (not terminated) at this step."""
        if self.pos >= self.size:
            raise IndexError(f"rollout buffer is full ({self.size} steps)")
        i = self.pos
        self.observations[i] = observation
        self.actions[i] = action
        self.log_probs[i] = log_prob
        self.values[i] = value
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.truncated[i] = truncated
        self.final_values[i] = final_value
        self.pos += 1

    @property
    def full(self) -> bool:
        return self.pos == self.size

    def next_values(self, last_value: float) -> np.ndarray:
        """The bootstrap value after each step (see :func:`compute_gae`).

        ``last_value``: V(observation after the last step), used if the batch ends
        mid-episode.
        """
        nxt = np.empty(self.size, dtype=np.float64)
        nxt[:-1] = self.values[1:]
        nxt[-1] = last_value
        nxt[self.truncated] = self.final_values[self.truncated]
        nxt[self.terminated] = 0.0  # a fall wins over a simultaneous time limit
        return nxt

    def finish(self, last_value: float, gamma: float, lam: float, normalize_advantages: bool,
               reward_scale: float = 1.0, comm=None, rewards: Optional[np.ndarray] = None) -> Batch:
        """Compute advantages and value targets; return the batch for the update.

        ``rewards`` (size,): the rewards GAE uses in place of the stored ones (e.g.
        normalised, see normalizers.RewardNormalizer); ``reward_scale`` multiplies either.
        Collective when ``normalize_advantages``: every rank must call it, since
        the mean/std used come from the advantages of all ranks.
        """
        if not self.full:
            raise RuntimeError(f"rollout buffer holds {self.pos} of {self.size} steps")
        if rewards is None:
            rewards = self.rewards
        elif np.shape(rewards) != (self.size,):
            raise ValueError(f"rewards of shape {np.shape(rewards)} for a buffer of {self.size} steps")
        episode_ends = self.terminated | self.truncated
        advantages = compute_gae(np.asarray(rewards, np.float64) * reward_scale, self.values,
                                 self.next_values(last_value), episode_ends, gamma, lam)
        returns = advantages + self.values
        if normalize_advantages:
            mean, std, _ = mpi.moments(advantages, comm=comm)
            advantages = (advantages - mean) / (std + 1e-8)
        self.pos = 0
        return Batch(
            observations=self.observations.copy(),
            actions=self.actions.copy(),
            log_probs=self.log_probs.astype(np.float32),
            values=self.values.astype(np.float32),
            advantages=advantages.astype(np.float32),
            returns=returns.astype(np.float32),
        )
