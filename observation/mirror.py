"""Left-right mirroring of observations, features and actions.

The model is planar: both legs move in the same sagittal plane, so swapping
the left and right legs is a pure permutation with no sign change (nothing
points along z). The permutations are derived from the names: every ``_l`` /
``_r`` token is swapped (``hip_r_speed`` <-> ``hip_l_speed``, ``toes_l_x`` <->
``toes_r_x``, ``psoas_l`` <-> ``psoas_r``); everything else (pelvis, head,
torso, centre of mass, obstacles) maps to itself. A sign vector is kept for
generality (all +1 here) so that code written against ``features[PERM] * SIGNS``
stays right if a feature with a handed sign is ever added.

Mirrored transitions double the data for a symmetric gait (obs, action) ->
(mirror_features(obs), mirror_action(action)); the psoas strengths swap with
the legs, so a weakened left psoas becomes a weakened right one.
"""
from __future__ import annotations

import re

import numpy as np

from l2run.constants import LIGAMENT_FORCES, MUSCLE_NAMES, OBSERVATION_NAMES

from .table import FEATURE_NAMES

_SIDE = re.compile(r"_(l|r)(?=_|$)")


def mirror_name(name: str) -> str:
    """``hip_r_speed`` -> ``hip_l_speed``; names without a side are unchanged."""
    return _SIDE.sub(lambda m: "_r" if m.group(1) == "l" else "_l", name)


def mirror_permutation(names) -> np.ndarray:
    """Index array p with ``mirrored[i] = original[p[i]]``."""
    index = {name: i for i, name in enumerate(names)}
    permutation = np.array([index[mirror_name(name)] for name in names])
    assert np.array_equal(permutation[permutation], np.arange(len(names))), "not an involution"
    return permutation


#: Feature permutation and signs: ``mirrored = features[..., FEATURE_MIRROR] * FEATURE_MIRROR_SIGNS``.
FEATURE_MIRROR = mirror_permutation(FEATURE_NAMES)
FEATURE_MIRROR_SIGNS = np.ones(len(FEATURE_NAMES))
#: The same for the raw 41 floats.
OBSERVATION_MIRROR = mirror_permutation(OBSERVATION_NAMES)
OBSERVATION_MIRROR_SIGNS = np.ones(len(OBSERVATION_NAMES))
#: Action permutation: muscles 0-8 (right leg) <-> 9-17 (left leg).
ACTION_MIRROR = mirror_permutation(MUSCLE_NAMES)
#: Ligament forces (``info["ligament_forces"]``).
LIGAMENT_MIRROR = mirror_permutation(LIGAMENT_FORCES)

for _array in (FEATURE_MIRROR, FEATURE_MIRROR_SIGNS, OBSERVATION_MIRROR, OBSERVATION_MIRROR_SIGNS,
               ACTION_MIRROR, LIGAMENT_MIRROR):
    _array.setflags(write=False)
del _array


def mirror_features(features: np.ndarray) -> np.ndarray:
    """Swap the legs in features of shape (..., 82)."""
    features = np.asarray(features)
    return features[..., FEATURE_MIRROR] * FEATURE_MIRROR_SIGNS.astype(features.dtype)


def mirror_observation(raw: np.ndarray) -> np.ndarray:
    """Swap the legs in raw observations of shape (..., 41)."""
    raw = np.asarray(raw)
    return raw[..., OBSERVATION_MIRROR] * OBSERVATION_MIRROR_SIGNS.astype(raw.dtype)


def mirror_action(action: np.ndarray) -> np.ndarray:
    """Swap the legs in actions of shape (..., 18)."""
    return np.asarray(action)[..., ACTION_MIRROR]
