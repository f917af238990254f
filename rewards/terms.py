"""Reward terms: small functions of two consecutive raw states.

Each term is ``term(prev_obs, obs, info, terminated) -> float`` on the raw 41
floats (``l2run.constants`` names) of the states before and after one 10 ms
step, unweighted and signed: bonuses are >= 0, penalties <= 0, so every
weight in a config is positive and "weight * term" is what the step earns.

The 2017 PPO team's shaping (their osim-rl fork, ``RunEnv.compute_reward``)
per 10 ms step was::

    pelvis_vx * 0.01                            -> velocity  (weight 1)
    + 0.01                                      -> survival  (weight 0.01)
    + min(0, head_x - pelvis_x) * 0.1           -> lean      (weight 0.1)
    - sum_knees max(0, knee - 0.1) * 0.02       -> bent_knee (weight 0.02)
    - sqrt(sum ligament_force^2) * 1e-7         -> ligament  (weight 1)

and the challenge's own score is ``distance`` (pelvis x gained per step; the
2017 grader also subtracted the ligament term, which is ~1e-5 per step).
"""
from __future__ import annotations

import dataclasses
import types
from typing import Callable

import numpy as np

from l2run.constants import HEAD_X, KNEE_L, KNEE_R, PELVIS_VX, PELVIS_X, STEP_SECONDS

#: Knee angle (rad) above which a leg counts as "straight" for ``bent_knee``:
#: the 2017 team's 0.1. Knee angles here are 0 for a straight leg, < 0 flexed
#: and > 0 hyperextended (up to ~0.3 rad against the 10 degree ligament), so
#: the penalty acts on knees locked back past 5.7 degrees, which is what their
#: stiff-legged runners (and a random policy) do, and never on a flexed knee.
STRAIGHT_KNEE_ANGLE = 0.1

#: The challenge's ligament penalty factor (osim-rl 2017: sqrt(sum F^2) * 10e-8).
LIGAMENT_PENALTY_FACTOR = 1e-7


def velocity(prev_obs, obs, info, terminated) -> float:
    """Pelvis forward speed after the step times the step length (m): like
    ``distance`` on average, but rewards moving fast now, not having moved."""
    return float(obs[PELVIS_VX] * STEP_SECONDS)


def survival(prev_obs, obs, info, terminated) -> float:
    """1 for every step that did not end in a fall, 0 for the falling step."""
    return 0.0 if terminated else 1.0


def fall(prev_obs, obs, info, terminated) -> float:
    """-1 for the step that ends in a fall, else 0: a price on falling beyond the
    survival bonus it forgoes. The shipped runner falls in most episodes, mostly
    in open ground (docs/training.md, "Where the runner falls"); Reason8, 3rd in
    2017, trained with a fall penalty of -0.2 (arXiv 1711.06922). Not in the
    default shaping."""
    return -1.0 if terminated else 0.0


def lean(prev_obs, obs, info, terminated) -> float:
    """-(pelvis x - head x) when the head is behind the pelvis, else 0 (m):
    pushes the runner to lean forward instead of wobbling the head back."""
    return min(0.0, float(obs[HEAD_X] - obs[PELVIS_X]))


def bent_knee(prev_obs, obs, info, terminated) -> float:
    """-sum over both knees of max(0, knee angle - STRAIGHT_KNEE_ANGLE) (rad):
    a penalty for straight (locked, hyperextended) legs."""
    knees = np.array([obs[KNEE_R], obs[KNEE_L]], dtype=np.float64)
    return float(np.minimum(0.0, STRAIGHT_KNEE_ANGLE - knees).sum())


def ligament(prev_obs, obs, info, terminated) -> float:
    """-sqrt(sum of squared ligament forces) * 1e-7, the challenge's penalty
    for pushing joints against their passive limits (``info["ligament_forces"]``)."""
    try:
        forces = np.asarray(info["ligament_forces"], dtype=np.float64)
    except KeyError:
        raise KeyError(
            "reward term 'ligament' needs info['ligament_forces'] (6 CoordinateLimitForce values "
            "from L2RunEnv); give it weight 0 or drop it for envs without them"
        ) from None
    return 0.0 - float(np.sqrt(np.sum(forces**2)) * LIGAMENT_PENALTY_FACTOR)


def distance(prev_obs, obs, info, terminated) -> float:
    """Pelvis x gained in this step (m): the challenge score summed over an episode."""
    return float(obs[PELVIS_X] - prev_obs[PELVIS_X])


@dataclasses.dataclass(frozen=True)
class Term:
    name: str
    function: Callable[..., float]
    unit: str


#: Every term by name, in the order they are logged.
TERMS: types.MappingProxyType = types.MappingProxyType({
    term.name: term
    for term in (
        Term("velocity", velocity, "m (pelvis_vx * 10 ms)"),
        Term("survival", survival, "1 per step"),
        Term("fall", fall, "-1 per fall"),
        Term("lean", lean, "m, <= 0"),
        Term("bent_knee", bent_knee, "rad, <= 0"),
        Term("ligament", ligament, "<= 0"),
        Term("distance", distance, "m"),
    )
})
TERM_NAMES = tuple(TERMS)

#: The 2017 team's shaping (see the module docstring): velocity instead of distance.
DEFAULT_WEIGHTS = types.MappingProxyType(
    {"velocity": 1.0, "survival": 0.01, "lean": 0.1, "bent_knee": 0.02, "ligament": 1.0}
)
#: The challenge's score: metres gained (what ``L2RunEnv`` returns as reward).
SCORE_WEIGHTS = types.MappingProxyType({"distance": 1.0})
