"""Builds the training/evaluation env from an ``[env]`` config section.

The wrapper order matters: the shaped reward must see the raw 41 floats of
consecutive 10 ms states, the feature processor must see every 10 ms state (its
finite differences assume that step), and frame skip goes outside both so that
a repeated action still yields correct features and summed rewards.

    FrameSkip(MinimumExcitation(L2RunFeatures(ShapedReward(L2RunEnv))))

``MinimumExcitation`` only narrows the action box; where it sits does not matter.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import gymnasium as gym
import numpy as np


@dataclasses.dataclass
class EnvConfig:
    """The ``[env]`` section of an experiment config."""

    difficulty: int = 2
    """0: flat ground; 1: 3 obstacles; 2: obstacles + weakened psoas (round 2)."""
    max_obstacles: int = 10
    """3 (round 1) or 10 (round 2)."""
    integrator_accuracy: float = 3e-2
    """OpenSim integrator accuracy: 1e-3 is the 2017 grader's; 3e-2 is the 2017 teams'
    training setting (~3x faster in OpenSim 3.3, ~1.35x in 4.6: `l2run bench env`)."""
    integrator: str = "runge_kutta_merson"
    """OpenSim integrator (``l2run.simulator.INTEGRATORS``): the grader's Runge-Kutta-Merson,
    or "semi_explicit_euler2", ~2.7x faster at 3e-2 and closer to the grader's trajectories
    than Runge-Kutta-Merson at 3e-2 (``l2run bench integrators``)."""
    max_steps: int = 1000
    """Episode length limit in 10 ms steps (truncation, not termination)."""
    model_path: Optional[str] = None
    """An .osim file; None uses gait9dof18musc.osim shipped by osim-rl."""
    features: bool = True
    """Observe the 82 engineered features instead of the raw 41 floats."""
    reward: Optional[dict] = None
    """Weights of shaped reward terms ({term: weight}, see ``rewards.TERM_NAMES``);
    None: the 2017 team's shaping; {} or {distance = 1.0}: the challenge score itself."""
    frame_skip: int = 1
    """Repeat each action this many 10 ms steps (rewards summed)."""
    min_excitation: float = 0.0
    """Lower bound of every muscle excitation (the action box becomes [this, 1]).
    Nearly relaxed Thelen muscles make the fibre dynamics stiff, and OpenSim's
    error-controlled integrator then crawls: with a floor of 0.05 a trained
    policy's steps simulate 1.5-2x faster (``l2run bench min-excitation``). The
    floor is part of the policy (its action bounds), so the challenge's plain
    [0, 1] env runs it unchanged."""

    def __post_init__(self):
        from l2run.course import check_difficulty

        check_difficulty(self.difficulty, "env.difficulty")  # an int: True or 2.0 would pass `in (0, 1, 2)`
        if int(self.max_obstacles) != self.max_obstacles or self.max_obstacles < 0:
            raise ValueError(f"env.max_obstacles must be a non-negative integer, got {self.max_obstacles!r}")
        if not 0 < float(self.integrator_accuracy) < 1:
            raise ValueError(f"env.integrator_accuracy must be in (0, 1), got {self.integrator_accuracy!r}")
        from l2run.simulator import INTEGRATORS

        if self.integrator not in INTEGRATORS:
            raise ValueError(f"env.integrator must be one of {sorted(INTEGRATORS)}, got {self.integrator!r}")
        if int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise ValueError(f"env.max_steps must be a positive integer, got {self.max_steps!r}")
        if int(self.frame_skip) != self.frame_skip or self.frame_skip < 1:
            raise ValueError(f"env.frame_skip must be a positive integer, got {self.frame_skip!r}")
        if not 0 <= float(self.min_excitation) < 1:
            raise ValueError(f"env.min_excitation must be in [0, 1), got {self.min_excitation!r}")
        from rewards import validate_weights

        try:
            validate_weights(self.reward)  # a typo fails here, not on every rank after mpirun started
        except ValueError as err:
            raise ValueError(f"env.reward: {err}") from None


class FrameSkip(gym.Wrapper):
    """Repeat each action ``skip`` times (10 ms each), summing rewards.

    Fewer, more meaningful decisions per episode at no simulator cost (a lever
    of the top 2017 teams, Kidzinski et al. 2018). ``info["distance"]`` and
    every ``info["reward_terms"]`` entry are summed over the repeated steps so
    that logged scores stay exact; the repeat stops early when the episode ends.
    """

    def __init__(self, env: gym.Env, skip: int):
        super().__init__(env)
        if int(skip) != skip or skip < 1:
            raise ValueError(f"frame skip must be a positive integer, got {skip!r}")
        self.skip = int(skip)

    def step(self, action):
        total_reward, distance, terms = 0.0, 0.0, {}
        for _ in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            distance += float(info.get("distance", 0.0))
            for name, value in info.get("reward_terms", {}).items():
                terms[name] = terms.get(name, 0.0) + float(value)
            if terminated or truncated:
                break
        info = dict(info, distance=distance)
        if terms:
            info["reward_terms"] = terms
        return obs, total_reward, terminated, truncated, info


class MinimumExcitation(gym.Wrapper):
    """Narrow the action box to [``floor``, 1]: no muscle is ever fully relaxed.

    A learner clips its actions to the box, so it learns within it; an action
    below the floor is an error, as any action outside the box is for L2RunEnv.
    See ``EnvConfig.min_excitation`` for why (simulation speed)."""

    def __init__(self, env: gym.Env, floor: float):
        super().__init__(env)
        if not 0 <= float(floor) < 1:
            raise ValueError(f"minimum excitation must be in [0, 1), got {floor!r}")
        inner = env.action_space
        self.floor = float(floor)
        self.action_space = gym.spaces.Box(
            np.maximum(inner.low, np.float32(self.floor)), inner.high, inner.shape, dtype=inner.dtype)

    def step(self, action):
        values = np.asarray(action, dtype=np.float32)  # the box's dtype: 0.05 is not below float32(0.05)
        low = self.action_space.low
        if values.shape == low.shape and np.any(values < low):
            i = int(np.argmax(low - values))
            raise ValueError(f"action[{i}] = {float(values[i]):g} is below the env's minimum excitation "
                             f"{self.floor:g}; actions must lie in [{self.floor:g}, 1]")
        return self.env.step(action)


def make_env(config: EnvConfig, seed: Optional[int] = None) -> gym.Env:
    """Return the wrapped gymnasium env described by ``config``.

    ``seed`` seeds the action space (the env's courses are seeded by the
    ``reset(seed=...)`` calls of whoever runs it)."""
    from l2run import L2RunEnv

    env: gym.Env = L2RunEnv(
        difficulty=config.difficulty,
        max_obstacles=config.max_obstacles,
        integrator_accuracy=config.integrator_accuracy,
        integrator=config.integrator,
        max_steps=config.max_steps,
        model_path=config.model_path,
    )
    from rewards import ShapedReward

    env = ShapedReward(env, config.reward)
    if config.features:
        from observation import L2RunFeatures

        env = L2RunFeatures(env)
    if config.min_excitation > 0:
        env = MinimumExcitation(env, config.min_excitation)
    if config.frame_skip > 1:
        env = FrameSkip(env, config.frame_skip)
    if seed is not None:
        env.action_space.seed(int(seed))
    return env


def env_symmetry(config: EnvConfig):
    """The left-right mirror of the env ``make_env(config)`` builds, for
    ``PPOConfig.mirror_augmentation``: a ``baselines_ppo.symmetry.Symmetry`` over
    the 82 features (``config.features``) or the raw 41 floats, with the 18 muscle
    excitations swapped leg for leg (0-8 <-> 9-17). Frame skip changes nothing:
    it repeats actions outside the observation."""
    from baselines_ppo.symmetry import Symmetry
    from observation import mirror

    if config.features:
        obs_perm, obs_sign = mirror.FEATURE_MIRROR, mirror.FEATURE_MIRROR_SIGNS
    else:
        obs_perm, obs_sign = mirror.OBSERVATION_MIRROR, mirror.OBSERVATION_MIRROR_SIGNS
    return Symmetry(obs_perm=obs_perm, obs_sign=obs_sign, act_perm=mirror.ACTION_MIRROR)
