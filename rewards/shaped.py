"""``ShapedReward``: a weighted sum of reward terms, as a wrapper or a callable."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Optional

import gymnasium as gym
import numpy as np

from .terms import DEFAULT_WEIGHTS, SCORE_WEIGHTS, TERM_NAMES, TERMS


def validate_weights(weights: Optional[Mapping]) -> dict[str, float]:
    """``{term: weight}`` checked and as floats. ``None``: the 2017 team's
    shaping (``DEFAULT_WEIGHTS``); an empty mapping: the challenge score
    (``{"distance": 1.0}``), which is what "no shaping" means."""
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, Mapping):
        raise ValueError(f"reward weights must be a mapping {{term: weight}}, got {weights!r}")
    if not weights:
        return dict(SCORE_WEIGHTS)
    unknown = [name for name in weights if name not in TERMS]
    if unknown:
        raise ValueError(f"unknown reward term(s) {unknown}; valid terms: {list(TERM_NAMES)}")
    checked = {}
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
            raise ValueError(f"reward weight of {name!r} must be a finite number, got {weight!r}")
        checked[name] = float(weight)
    return checked


class ShapedReward(gym.Wrapper):
    """Replace ``L2RunEnv``'s reward (metres gained) by ``sum(weight * term)``.

    Args:
        env: the raw ``L2RunEnv`` (it must see consecutive 10 ms states: wrap
            it before features and frame skip). ``None`` makes a plain
            callable, ``shaped(prev_obs, obs, info, terminated) -> reward``.
        weights: ``{term: weight}`` over ``rewards.TERM_NAMES``; ``None``: the
            2017 team's shaping; ``{}``: the challenge score.

    Each step adds ``info["reward_terms"]`` = {term: weight * term value} (the
    weighted values sum to the reward; log them as ``reward/<term>``).
    ``info["distance"]`` stays the env's, the true score whatever the shaping.
    A step the simulator failed on (``info["sim_error"]``) earns 0 in every
    term: nothing was simulated.
    """

    def __init__(self, env: Optional[gym.Env] = None, weights: Optional[Mapping] = None):
        self.weights = validate_weights(weights)
        if env is not None:
            super().__init__(env)
        else:
            self.env = None
        self._previous_obs: Optional[np.ndarray] = None

    # -- the callable ---------------------------------------------------------
    def terms(self, prev_obs, obs, info, terminated) -> dict[str, float]:
        """Weighted term values of one step."""
        if "sim_error" in info:
            return {name: 0.0 for name in self.weights}
        return {
            name: weight * TERMS[name].function(prev_obs, obs, info, terminated)
            for name, weight in self.weights.items()
        }

    def __call__(self, prev_obs, obs, info, terminated) -> float:
        return float(sum(self.terms(prev_obs, obs, info, terminated).values()))

    # -- the wrapper ----------------------------------------------------------
    def _require_env(self):
        if self.env is None:
            raise RuntimeError("this ShapedReward was built without an env; it is only a callable")

    def reset(self, *, seed=None, options=None):
        self._require_env()
        obs, info = self.env.reset(seed=seed, options=options)
        self._previous_obs = np.array(obs, dtype=np.float64, copy=True)
        return obs, info

    def step(self, action):
        self._require_env()
        if self._previous_obs is None:
            raise RuntimeError("ShapedReward.step() before reset()")
        obs, _, terminated, truncated, info = self.env.step(action)
        terms = self.terms(self._previous_obs, obs, info, terminated)
        info["reward_terms"] = terms
        self._previous_obs = np.array(obs, dtype=np.float64, copy=True)
        return obs, float(sum(terms.values())), terminated, truncated, info

    def __repr__(self):
        inner = "callable" if self.env is None else repr(self.env)
        return f"<ShapedReward {self.weights} {inner}>"
