"""The 82 engineered features of the 2017 PPO team, from the raw 41 floats.

    from observation import L2RunFeatures
    env = L2RunFeatures(ShapedReward(L2RunEnv()))   # observation: float32 (82,)

* ``table``: the one table of features (name, meaning, unit, offset, scale,
  squash) and the names / index constants / normalisation derived from it;
  ``python -m observation`` prints it as Markdown.
* ``processor``: :class:`FeatureProcessor`, one per env, turns the stream of
  raw observations into features (relative positions, finite-difference
  velocities and accelerations, foot contacts, a two-sphere obstacle queue).
* ``mirror``: left-right swaps of features, raw observations and actions.
* ``wrapper``: :class:`L2RunFeatures`, the gymnasium wrapper.
"""
from .mirror import (
    ACTION_MIRROR,
    FEATURE_MIRROR,
    FEATURE_MIRROR_SIGNS,
    OBSERVATION_MIRROR,
    mirror_action,
    mirror_features,
    mirror_observation,
)
from .processor import FeatureProcessor
from .table import (
    FEATURE_INDEX,
    FEATURE_NAMES,
    FEATURE_SIZE,
    FEATURES,
    OFFSETS,
    SCALES,
    Feature,
    denormalise,
    feature_table_markdown,
    normalise,
)
from .wrapper import L2RunFeatures

__all__ = [
    "ACTION_MIRROR", "FEATURE_MIRROR", "FEATURE_MIRROR_SIGNS", "OBSERVATION_MIRROR",
    "mirror_action", "mirror_features", "mirror_observation",
    "FeatureProcessor",
    "FEATURE_INDEX", "FEATURE_NAMES", "FEATURE_SIZE", "FEATURES", "OFFSETS", "SCALES", "Feature",
    "denormalise", "feature_table_markdown", "normalise",
    "L2RunFeatures",
]
