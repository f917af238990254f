"""Shaped rewards for Learning to Run: named terms of consecutive raw states,
summed with configurable weights.

    from rewards import ShapedReward
    env = ShapedReward(L2RunEnv(), {"velocity": 1.0, "survival": 0.01})
    shaped = ShapedReward(weights=None)          # callable: the 2017 shaping
    reward = shaped(prev_obs, obs, info, terminated)

See ``rewards.terms`` for what each term measures and what the default
weights multiply.
"""
from .shaped import ShapedReward, validate_weights
from .terms import (
    DEFAULT_WEIGHTS,
    LIGAMENT_PENALTY_FACTOR,
    SCORE_WEIGHTS,
    STRAIGHT_KNEE_ANGLE,
    TERM_NAMES,
    TERMS,
    Term,
)

__all__ = [
    "ShapedReward", "validate_weights",
    "DEFAULT_WEIGHTS", "LIGAMENT_PENALTY_FACTOR", "SCORE_WEIGHTS", "STRAIGHT_KNEE_ANGLE",
    "TERM_NAMES", "TERMS", "Term",
]
