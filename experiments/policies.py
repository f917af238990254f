"""Policies the commands can run, named by a spec string.

    policy = make_policy("random", env.observation_space, env.action_space, seed=0)
    action = policy.act(obs)

Specs: ``random`` (uniform in the action box), ``zero`` (all excitations 0:
the skeleton collapses passively), a path to an exported policy ``.npz``
(``baselines_ppo.export``), or a run directory (its exported policy).

An exported policy acts in the deterministic mode its file records unless told
otherwise (``act``): "expected" or "mean" (``ModePolicy``), or "sample", drawing
its actions as training did from a generator seeded per episode (``SampledPolicy``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import gymnasium as gym
import numpy as np

from baselines_ppo.export import ACTS

BUILTIN_POLICIES = ("random", "zero")


class RandomPolicy:
    """Actions uniform in the (bounded) action box, from its own seeded RNG."""

    def __init__(self, action_space: gym.spaces.Box, seed: int = 0):
        self.low = np.asarray(action_space.low, dtype=np.float64)
        self.high = np.asarray(action_space.high, dtype=np.float64)
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError("the random policy needs a bounded action space")
        self.dtype = action_space.dtype
        self.rng = np.random.default_rng(seed)

    def act(self, obs) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(self.dtype)


class ZeroPolicy:
    """All zeros (no muscle excitation)."""

    def __init__(self, action_space: gym.spaces.Box):
        self.action = np.zeros(action_space.shape, dtype=action_space.dtype)

    def act(self, obs) -> np.ndarray:
        return self.action.copy()


def _box_size(space: gym.Space, what: str) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"{what} space must be a 1-D Box, got {space}")
    return int(space.shape[0])


def load_exported_policy(path: Path, observation_space: gym.Space, action_space: gym.Space):
    """The exported policy at ``path`` (file or run directory), checked against the spaces."""
    from baselines_ppo import export  # lazy: numpy-only, but not needed by random/zero

    policy = export.load_policy(export.find_policy(path))
    env_obs, env_act = _box_size(observation_space, "observation"), _box_size(action_space, "action")
    if policy.observation_size != env_obs or policy.action_size != env_act:
        hint = ""
        from l2run.constants import OBSERVATION_SIZE
        from observation import FEATURE_SIZE

        if {policy.observation_size, env_obs} == {OBSERVATION_SIZE, FEATURE_SIZE}:
            trained_on = (f"{FEATURE_SIZE} features" if policy.observation_size == FEATURE_SIZE
                          else f"raw {OBSERVATION_SIZE} floats")
            hint = f" (the policy was trained on the {trained_on}: set env.features to match)"
        raise ValueError(
            f"policy {path} takes observations of size {policy.observation_size} and gives actions of "
            f"size {policy.action_size}, but the env has observation size {env_obs} and action size "
            f"{env_act}{hint}"
        )
    return policy


def check_act(spec: str, act: Optional[str]) -> None:
    """Fail fast on an ``act`` that names no way of acting, or that a built-in policy has not."""
    if act is not None and act not in ACTS:
        raise ValueError(f"--act {act!r} is not one of {', '.join(ACTS)}")
    if act is not None and str(spec) in BUILTIN_POLICIES:
        raise ValueError(f"--act {act} applies to an exported policy, not to the built-in {spec!r} policy")


def check_policy_spec(spec: str) -> None:
    """Fail fast, before any env is built, on a spec that names nothing."""
    if spec not in BUILTIN_POLICIES and not Path(spec).exists():
        raise ValueError(f"--policy {spec!r} is neither 'random', 'zero', an exported policy .npz "
                         "nor a run directory (no such path)")


class ModePolicy:
    """An exported policy acting in one deterministic mode ("expected" or "mean")."""

    def __init__(self, policy, mode: str):
        self.policy, self.mode = policy, mode
        self.metadata = policy.metadata

    def act(self, obs) -> np.ndarray:
        return self.policy.act(obs, self.mode)


class SampledPolicy:
    """An exported policy drawing its actions as in training, from its own
    generator: seeded with the episode's course seed, a score belongs to the seed
    and not to which rank ran what before."""

    def __init__(self, policy, seed: int):
        self.policy = policy
        self.metadata = policy.metadata
        self.rng = np.random.default_rng(seed)

    def act(self, obs) -> np.ndarray:
        return self.policy.sample(obs, self.rng)


def make_policy(spec: str, observation_space: gym.Space, action_space: gym.Space, seed: int = 0,
                act: Optional[str] = None):
    """An object with ``act(obs) -> action`` for ``spec`` (see the module docstring);
    ``act`` (one of ACTS) overrides an exported policy's recorded mode."""
    spec = str(spec)
    check_act(spec, act)
    if spec == "random":
        return RandomPolicy(action_space, seed)
    if spec == "zero":
        return ZeroPolicy(action_space)
    path = Path(spec)
    if path.exists():
        policy = load_exported_policy(path, observation_space, action_space)
        if act == "sample":
            return SampledPolicy(policy, seed)
        return policy if act is None else ModePolicy(policy, act)
    raise ValueError(
        f"unknown policy {spec!r}: expected one of {list(BUILTIN_POLICIES)}, a policy .npz file "
        "or a run directory holding one (no such file or directory)"
    )


class HeldPolicy:
    """Each action of ``policy`` held for ``repeat`` calls: a policy trained with
    frame skip k, run on an env that steps every 10 ms so that every state is
    seen (``l2run obs-stats``, ``l2run falls``). Same trajectory as the
    frame-skipped env, which steps its inner env k times with one action.
    Start each episode with a new one."""

    def __init__(self, policy, repeat: int):
        self.policy, self.repeat = policy, int(repeat)
        self._action, self._left = None, 0

    def act(self, obs) -> np.ndarray:
        if self._left == 0:
            self._action, self._left = self.policy.act(obs), self.repeat
        self._left -= 1
        return self._action


def frame_skip_of(policy) -> int:
    """The frame skip an exported policy was trained with (1 for built-in ones)."""
    return int((getattr(policy, "metadata", {}).get("env") or {}).get("frame_skip", 1))
