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
import numbers
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
    muscle_floors: Optional[dict] = None
    """Higher floors for named muscles, {muscle: floor}, on top of min_excitation;
    a name without its side ("vasti") means both legs (``l2run.constants.MUSCLE_NAMES``).
    Why: under a trained policy the integrator crawls because of the hip and knee
    muscles it holds near the floor, not the ankle ones (docs/benchmarks.md, `l2run
    bench policy`). Part of the policy's action bounds, like min_excitation."""

    friction_transition_velocity: Optional[float] = None
    """The feet's friction transition velocity in m/s; None: the model's 0.1 m/s,
    the grader's. Below this slip speed friction is a stiff viscous damper on the
    stance foot, the mode that limits the integrator's step under a running
    policy (docs/benchmarks.md, `l2run bench policy` with ``transition=``). A
    training setting like the integrator: evaluation always uses the grader's."""

    def __post_init__(self):
        # The env's and the wrappers' own checks, under the config's key names: one rule per setting.
        from l2run.course import check_difficulty
        from l2run.env import check_accuracy, check_count
        from l2run.simulator import check_integrator, check_transition_velocity
        from rewards import validate_weights

        check_difficulty(self.difficulty, "env.difficulty")
        check_count(self.max_obstacles, "env.max_obstacles", 0)
        check_accuracy(self.integrator_accuracy, "env.integrator_accuracy")
        check_integrator(self.integrator, "env.integrator")
        check_count(self.max_steps, "env.max_steps", 1)
        check_count(self.frame_skip, "env.frame_skip", 1)
        check_min_excitation(self.min_excitation, "env.min_excitation")
        check_transition_velocity(self.friction_transition_velocity, "env.friction_transition_velocity")
        excitation_floors(self)  # a muscle name or floor that does not exist fails here
        try:
            validate_weights(self.reward)  # a typo fails here, not on every rank after mpirun started
        except ValueError as err:
            raise ValueError(f"env.reward: {err}") from None


def check_min_excitation(floor, name: str = "min_excitation") -> float:
    """``floor`` as a float in [0, 1), or a ValueError naming it (as ``name``)."""
    if isinstance(floor, (bool, np.bool_)) or not isinstance(floor, numbers.Real) or not 0 <= floor < 1:
        raise ValueError(f"{name} must be in [0, 1), got {floor!r}")
    return float(floor)


def excitation_floors(config: "EnvConfig") -> np.ndarray:
    """The lower bound of each of the 18 excitations: min_excitation raised by
    muscle_floors; ValueError naming an unknown muscle or a floor outside [0, 1)."""
    from l2run.constants import MUSCLE_NAMES

    floors = np.full(len(MUSCLE_NAMES), float(config.min_excitation))
    for name, floor in (config.muscle_floors or {}).items():
        check_min_excitation(floor, f"env.muscle_floors.{name}")
        legs = [i for i, muscle in enumerate(MUSCLE_NAMES) if muscle in (name, f"{name}_r", f"{name}_l")]
        if not legs:
            sides = sorted({muscle[:-2] for muscle in MUSCLE_NAMES})
            raise ValueError(f"env.muscle_floors: no muscle {name!r}; muscles: {', '.join(sides)} (both legs) "
                             "or one of them with _r or _l")
        floors[legs] = np.maximum(floors[legs], float(floor))
    return floors


class FrameSkip(gym.Wrapper):
    """Repeat each action ``skip`` times (10 ms each), summing rewards.

    Fewer, more meaningful decisions per episode at no simulator cost (a lever
    of the top 2017 teams, Kidzinski et al. 2018). ``info["distance"]`` and
    every ``info["reward_terms"]`` entry are summed over the repeated steps so
    that logged scores stay exact; the repeat stops early when the episode ends.
    """

    def __init__(self, env: gym.Env, skip: int):
        from l2run.env import check_count

        super().__init__(env)
        self.skip = check_count(skip, "frame_skip", 1)

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

    ``floor``: one bound for every muscle, or one per muscle. A learner clips its
    actions to the box, so it learns within it; an action below the floor is an
    error, as any action outside the box is for L2RunEnv. See
    ``EnvConfig.min_excitation`` for why (simulation speed)."""

    def __init__(self, env: gym.Env, floor):
        super().__init__(env)
        inner = env.action_space
        if np.ndim(floor) == 0:
            floor = check_min_excitation(floor)
        floors = np.broadcast_to(np.asarray(floor, dtype=np.float64), inner.shape)
        for value in np.unique(floors):
            check_min_excitation(float(value))
        self.action_space = gym.spaces.Box(
            np.maximum(inner.low, floors.astype(np.float32)), inner.high, inner.shape, dtype=inner.dtype)

    def step(self, action):
        values = np.asarray(action, dtype=np.float32)  # the box's dtype: 0.05 is not below float32(0.05)
        low = self.action_space.low
        if values.shape == low.shape and np.any(values < low):
            i = int(np.argmax(low - values))
            raise ValueError(f"action[{i}] = {float(values[i]):g} is below the env's minimum excitation "
                             f"{float(low[i]):g} for that muscle; actions must lie in [{float(low[i]):g}, 1]")
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
        friction_transition_velocity=config.friction_transition_velocity,
    )
    from rewards import ShapedReward

    env = ShapedReward(env, config.reward)
    if config.features:
        from observation import L2RunFeatures

        env = L2RunFeatures(env)
    floors = excitation_floors(config)
    if floors.any():
        env = MinimumExcitation(env, floors)
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
