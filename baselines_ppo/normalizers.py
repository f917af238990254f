"""Observation and reward normalisation: one object each, in numpy.

Each normaliser owns its running statistics and everything done with them:
apply, update (from moments pooled over ranks, so every rank holds the same
statistics), checkpoint state (``obs_rms/``, ``reward_rms/``), and for
observations the export into the policy file -- with the std used to apply
them, because a policy evaluated on observations normalised with other
statistics is a different policy.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from baselines_ppo import mpi

#: Added to the variance before the square root so constant features do not divide by 0.
VAR_EPSILON = 1e-8


class RunningMeanStd:
    """Mean and variance of every sample seen so far, of shape ``shape``.

    ``count`` starts at a tiny epsilon (not 0) so the first update simply adopts
    the batch moments without a special case.
    """

    def __init__(self, shape=(), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + VAR_EPSILON)

    def update_from_moments(self, batch_mean, batch_var, batch_count) -> None:
        """Merge the moments of a batch (Chan et al.'s parallel variance formula).

        ``batch_var`` is the population variance (ddof=0) of the batch.
        """
        if batch_count <= 0:
            return
        batch_mean = np.asarray(batch_mean, dtype=np.float64)
        batch_var = np.asarray(batch_var, dtype=np.float64)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + np.square(delta) * self.count * batch_count / total
        self.mean, self.var, self.count = new_mean, m2 / total, float(total)

    def update_pooled(self, x: np.ndarray, comm=None) -> None:
        """Add this rank's samples ``x`` (n, *shape) and every other rank's (collective)."""
        mean, std, count = mpi.moments(x, comm=comm)
        self.update_from_moments(mean, np.square(std), count)

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array(self.count)}

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"statistics of shape {mean.shape} do not fit values of shape {self.mean.shape}")
        self.mean = mean.copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(state["count"])


class ObservationNormalizer(RunningMeanStd):
    """(obs - mean) / std clipped to [-clip, clip] (PPOConfig.normalize_observations);
    the identity, in float64, when disabled."""

    def __init__(self, observation_size: int, enabled: bool, clip: float):
        super().__init__((observation_size,))
        self.enabled, self.clip = enabled, clip

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs (..., observation_size) -> the same shape, float64."""
        obs = np.asarray(obs, dtype=np.float64)
        if not self.enabled:
            return obs
        return np.clip((obs - self.mean) / self.std, -self.clip, self.clip)

    def update(self, raw_observations: np.ndarray, comm=None) -> None:
        """Add this iteration's raw observations of every rank (collective; nothing when disabled)."""
        if self.enabled:
            self.update_pooled(raw_observations, comm)

    def export(self) -> Tuple[np.ndarray, np.ndarray, float]:
        """(mean, std, clip) that an exported policy applies as ``__call__`` does now."""
        if not self.enabled:  # identity: the network saw raw observations
            return np.zeros_like(self.mean), np.ones_like(self.mean), np.inf
        return self.mean.copy(), self.std, self.clip

    def load_export(self, mean: np.ndarray, std: np.ndarray, count: float) -> None:
        """The inverse of :meth:`export`: statistics that normalise as an exported
        policy's (mean, std) did; ``count``: how many samples they stand for.
        Nothing when disabled (the policy's normalisation was the identity)."""
        if self.enabled:
            self.load_state_dict({"mean": mean, "var": np.maximum(np.square(std) - VAR_EPSILON, 0.0),
                                  "count": float(max(count, 1.0))})


class RewardNormalizer(RunningMeanStd):
    """Scales rewards by a running std of the discounted return (PPOConfig.normalize_rewards).

    As openai/baselines' ``VecNormalize`` (SB3's too): the discounted return of the
    episode in progress, ret_t = gamma * ret_{t-1} + r_t (reset to 0 after an episode
    ends), is what the statistics are fitted to, and rewards are divided by its
    std -- not the std of the rewards themselves, whose scale says little about
    the scale of the value targets. Differences from VecNormalize, both for MPI: the
    statistics are updated once per iteration from moments pooled over ranks, so
    every rank holds the same ones; and the running return restarts with the envs
    at every checkpoint (an episode boundary), so it needs no saving.
    """

    def __init__(self, enabled: bool, gamma: float, clip: float):
        super().__init__(())
        self.enabled, self.gamma, self.clip = enabled, gamma, clip
        self.running_return = 0.0

    def reset(self) -> None:
        """The episodes in progress were dropped: their running return goes with them."""
        self.running_return = 0.0

    def discounted_returns(self, rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
        """Advance the running return over one batch, in time order; rewards and
        episode_ends (T,) -> the (T,) returns ret_t, each including r_t."""
        returns = np.empty(len(rewards), dtype=np.float64)
        running = self.running_return
        for t, (reward, end) in enumerate(zip(rewards, episode_ends)):
            running = self.gamma * running + float(reward)
            returns[t] = running
            if end:
                running = 0.0
        self.running_return = running
        return returns

    def update(self, rewards: np.ndarray, episode_ends: np.ndarray, comm=None) -> None:
        """Fit the statistics to this batch's discounted returns on every rank
        (collective; nothing when disabled)."""
        if self.enabled:
            self.update_pooled(self.discounted_returns(rewards, episode_ends), comm)

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        """rewards (T,) -> the rewards GAE uses: unchanged when disabled."""
        rewards = np.asarray(rewards, dtype=np.float64)
        if not self.enabled:
            return rewards
        return np.clip(rewards / self.std, -self.clip, self.clip)

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        """An empty ``state`` (a checkpoint written before reward normalisation existed) keeps the initial ones."""
        if state:
            super().load_state_dict(state)
