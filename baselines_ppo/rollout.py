"""Collecting one iteration of experience from one env (one env per rank).

Generic on purpose: any gymnasium env with a Box action space. Optional info
keys are picked up when an env provides them:
  info["distance"]      summed over the episode  -> rollout/distance(_max)
  info["reward_terms"]  a {name: value} dict, each summed -> reward/<name>
  info["sim_error"]     counted                  -> rollout/sim_errors
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from baselines_ppo.buffer import RolloutBuffer
from baselines_ppo.numpy_policy import NumpyActorCritic


@dataclass
class Episode:
    """Totals of one finished episode."""

    ret: float
    length: int
    terminated: bool
    distance: Optional[float] = None
    reward_terms: Dict[str, float] = field(default_factory=dict)


@dataclass
class RolloutStats:
    """What one rank saw during one collection."""

    episodes: List[Episode]
    raw_observations: np.ndarray  # (T, obs_size) before normalisation, for the normaliser
    last_value: float  # V(observation after the last step): the batch-end bootstrap
    env_seconds: float  # wall time inside env.step/env.reset
    policy_seconds: float  # wall time computing actions and values
    sim_errors: int


class Collector:
    """Steps one env and keeps the episode in progress across iterations.

    ``reset(seed)`` starts a fresh episode: at start and after every checkpoint
    (:func:`baselines_ppo.trainer.start_episodes`).
    """

    def __init__(self, env):
        self.env = env
        low = np.asarray(env.action_space.low, dtype=np.float64)
        high = np.asarray(env.action_space.high, dtype=np.float64)
        self.action_low, self.action_high = low, high
        self.observation_size = int(np.prod(env.observation_space.shape))
        self.action_size = int(np.prod(env.action_space.shape))
        self._obs = None
        self._new_episode()

    def _new_episode(self):
        self._ep_return = 0.0
        self._ep_length = 0
        self._ep_distance = None
        self._ep_terms: Dict[str, float] = {}

    def reset(self, seed: Optional[int]) -> float:
        """Start a new episode (the one in progress is dropped); returns seconds spent."""
        start = time.perf_counter()
        obs, _ = self.env.reset(seed=seed)
        self._obs = self._flat(obs)
        self._new_episode()
        return time.perf_counter() - start

    def _flat(self, obs) -> np.ndarray:
        return np.asarray(obs, dtype=np.float64).reshape(self.observation_size)

    def collect(self, policy: NumpyActorCritic, normalize: Callable[[np.ndarray], np.ndarray],
                buffer: RolloutBuffer, rng: np.random.Generator) -> RolloutStats:
        """Fill ``buffer`` (buffer.size steps) acting with ``policy`` on
        ``normalize(observations)`` (an ObservationNormalizer)."""
        if self._obs is None:
            raise RuntimeError("Collector.reset(seed) must be called before collect()")
        episodes: List[Episode] = []
        raw = np.zeros((buffer.size, self.observation_size), dtype=np.float64)
        env_s = policy_s = 0.0
        sim_errors = 0
        for t in range(buffer.size):
            raw[t] = self._obs
            tick = time.perf_counter()
            obs_n = normalize(self._obs[None])
            actions, log_probs, values = policy.sample(obs_n, rng)
            action = actions[0]
            tock = time.perf_counter()
            next_obs, reward, terminated, truncated, info = self.env.step(
                np.clip(action, self.action_low, self.action_high).reshape(self.env.action_space.shape)
                .astype(self.env.action_space.dtype))
            next_obs = self._flat(next_obs)
            env_s += time.perf_counter() - tock
            if not np.all(np.isfinite(next_obs)):
                # NaN would reach the networks and every rank's averaged gradient
                raise FloatingPointError(f"the env returned a non-finite observation after {self._ep_length + 1} "
                                         f"steps of an episode: {next_obs}")
            policy_s += tock - tick

            self._ep_return += float(reward)
            self._ep_length += 1
            if "distance" in info:
                self._ep_distance = (self._ep_distance or 0.0) + float(info["distance"])
            for name, value in (info.get("reward_terms") or {}).items():
                self._ep_terms[name] = self._ep_terms.get(name, 0.0) + float(value)
            if info.get("sim_error"):
                sim_errors += 1

            final_value = 0.0
            if truncated and not terminated:
                tick = time.perf_counter()
                final_value = float(policy.value(normalize(next_obs[None]))[0])
                policy_s += time.perf_counter() - tick
            buffer.add(obs_n[0], action, log_probs[0], values[0], float(reward),
                       bool(terminated), bool(truncated), final_value)

            if terminated or truncated:
                episodes.append(Episode(self._ep_return, self._ep_length, bool(terminated),
                                        self._ep_distance, dict(self._ep_terms)))
                env_s += self.reset(seed=None)
            else:
                self._obs = next_obs

        tick = time.perf_counter()
        last_value = float(policy.value(normalize(self._obs[None]))[0])
        policy_s += time.perf_counter() - tick
        return RolloutStats(episodes, raw, last_value, env_s, policy_s, sim_errors)
