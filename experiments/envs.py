"""Builds the training/evaluation env from an ``[env]`` config section.

The wrapper order matters: the shaped reward must see the raw 41 floats of
consecutive 10 ms states, the feature processor must see every 10 ms state (its
finite differences assume that step), and frame skip goes outside both so that
a repeated action still yields correct features and summed rewards.

    FrameSkip(L2RunFeatures(ShapedReward(L2RunEnv)))
"""
from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass
class EnvConfig:
    """The ``[env]`` section of an experiment config."""

    difficulty: int = 2
    """0: flat ground; 1: 3 obstacles; 2: obstacles + weakened psoas (round 2)."""
    max_obstacles: int = 10
    """3 (round 1) or 10 (round 2)."""
    integrator_accuracy: float = 3e-2
    """OpenSim integrator accuracy: 1e-3 is the 2017 grader's, 3e-2 trains ~3x faster."""
    max_steps: int = 1000
    """Episode length limit in 10 ms steps (truncation, not termination)."""
    model_path: Optional[str] = None
    """An .osim file; None uses gait9dof18musc.osim shipped by osim-rl."""
    features: bool = True
    """Observe the 82 engineered features instead of the raw 41 floats."""
    reward: Optional[dict] = None
    """Weights of shaped reward terms ({name: weight}); None: the 2017 team's shaping;
    {} or {"distance": 1.0}: the challenge score itself."""
    frame_skip: int = 1
    """Repeat each action this many 10 ms steps (rewards summed)."""

    def __post_init__(self):
        if self.difficulty not in (0, 1, 2):
            raise ValueError(f"env.difficulty must be 0, 1 or 2, got {self.difficulty!r}")
        if int(self.max_obstacles) != self.max_obstacles or self.max_obstacles < 0:
            raise ValueError(f"env.max_obstacles must be a non-negative integer, got {self.max_obstacles!r}")
        if not 0 < float(self.integrator_accuracy) < 1:
            raise ValueError(f"env.integrator_accuracy must be in (0, 1), got {self.integrator_accuracy!r}")
        if int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise ValueError(f"env.max_steps must be a positive integer, got {self.max_steps!r}")
        if int(self.frame_skip) != self.frame_skip or self.frame_skip < 1:
            raise ValueError(f"env.frame_skip must be a positive integer, got {self.frame_skip!r}")


def make_env(config: EnvConfig, seed: Optional[int] = None):
    """Return the wrapped gymnasium env described by ``config`` (not yet reset)."""
    raise NotImplementedError("written with the environment issue")
