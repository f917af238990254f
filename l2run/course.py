"""The course of one episode: obstacle spheres and psoas strengths.

Pure numpy, so a course can be generated, tested and logged without OpenSim.
The distributions follow the 2017 challenge (osim-rl 1.x ``generate_env``):

* difficulty 0: flat ground, full-strength muscles;
* difficulty 1: three spheres at x ~ U(1, 5) m, radius r = 0.05 + Exp(0.05) m,
  centre height y = r * U(-0.25, 0.25) (mostly buried: the ground cuts them);
* difficulty 2: as 1, plus each leg's psoas strength 1 - N(0, 0.1), at least 0.5.

``max_obstacles`` above 3 is the round-2 course: after the first three spheres
(all within 5 m), further ones follow from x = 5 m at cumulative spacing
U(2, 4) m, with centre height r * U(-0.05, 0.25) (the 2017 round-2 code: these
stick out of the ground more).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .constants import NO_OBSTACLE

FIRST_OBSTACLES = 3
"""Spheres placed in the first 5 m (round 1 had only these)."""

DIFFICULTIES = (0, 1, 2)


def check_difficulty(difficulty, name: str = "difficulty") -> int:
    """``difficulty`` as an int, or a ValueError naming it (as ``name``). Only
    integers count: ``True == 1`` and ``2.0 == 2``, so a bool or a float would
    pass a plain ``in (0, 1, 2)`` test and run a course nobody asked for."""
    if isinstance(difficulty, (bool, np.bool_)) or not isinstance(difficulty, (int, np.integer)) \
            or difficulty not in DIFFICULTIES:
        raise ValueError(f"{name} must be 0, 1 or 2 (an int), got {difficulty!r} ({type(difficulty).__name__})")
    return int(difficulty)


@dataclasses.dataclass(frozen=True)
class Course:
    """Obstacles as an (n, 3) array of absolute (x, y, radius) sorted by x, and
    psoas strength multipliers (left, right)."""

    obstacles: np.ndarray
    psoas: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        obstacles = np.asarray(self.obstacles, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(obstacles)):
            raise ValueError(f"obstacles must be finite (x, y, radius) rows, got {obstacles.tolist()}")
        if np.any(obstacles[:, 2] <= 0):
            raise ValueError(f"obstacle radii must be positive, got {obstacles[:, 2].tolist()}")
        obstacles = obstacles[np.argsort(obstacles[:, 0], kind="stable")]
        obstacles.setflags(write=False)
        object.__setattr__(self, "obstacles", obstacles)
        psoas = tuple(float(p) for p in self.psoas)
        if len(psoas) != 2 or not all(0 < p <= 10 for p in psoas):
            raise ValueError(f"psoas must be two strengths (left, right) in (0, 10], got {self.psoas!r}")
        object.__setattr__(self, "psoas", psoas)

    def next_obstacle(self, pelvis_x: float) -> tuple[float, float, float]:
        """(x distance from the pelvis, y, radius) of the first sphere whose far
        edge is not yet behind the pelvis; ``NO_OBSTACLE`` when none is left.
        Same rule as the 2017 grader."""
        for x, y, radius in self.obstacles:
            if x + radius >= pelvis_x:
                return (float(x - pelvis_x), float(y), float(radius))
        return NO_OBSTACLE


def generate_course(difficulty: int, max_obstacles: int, rng: np.random.Generator) -> Course:
    """Draw a course for ``difficulty`` (0, 1, 2) with at most ``max_obstacles`` spheres."""
    difficulty = check_difficulty(difficulty)
    if max_obstacles < 0:
        raise ValueError(f"max_obstacles must be >= 0, got {max_obstacles!r}")
    rows = []
    if difficulty >= 1 and max_obstacles > 0:
        first = min(FIRST_OBSTACLES, max_obstacles)
        xs = list(rng.uniform(1.0, 5.0, first))
        x = 5.0
        for _ in range(max_obstacles - first):
            x += rng.uniform(2.0, 4.0)
            xs.append(x)
        n = len(xs)
        radii = 0.05 + rng.exponential(0.05, n)
        heights = np.concatenate([rng.uniform(-0.25, 0.25, first), rng.uniform(-0.05, 0.25, n - first)])
        rows = np.column_stack([xs, radii * heights, radii])
    psoas = (1.0, 1.0)
    if difficulty >= 2:
        left, right = 1.0 - rng.normal(0.0, 0.1, 2)
        psoas = (max(0.5, float(left)), max(0.5, float(right)))
    return Course(np.asarray(rows, dtype=np.float64).reshape(-1, 3), psoas)
