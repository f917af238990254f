"""``L2RunEnv``: the 2017 "Learning to Run" task as a gymnasium env.

Observation: the challenge's 41 floats (``OBSERVATION_NAMES``), float64.
Action: 18 muscle excitations in the model's order (``MUSCLE_NAMES``); values
outside [0, 1] are clipped, as the simulator cannot use them; None, a wrong
shape, a non-real dtype (complex, bool, strings, objects), NaN or inf is a
``ValueError``.
Reward: metres the pelvis moved forward in this 10 ms step, so the episode sum
is the challenge score. Shaped rewards live in ``rewards/`` and read ``info``.
Termination: pelvis height below 0.65 m (fell). Truncation: ``max_steps`` steps,
or a simulator failure (``info["sim_error"]``): the episode cannot continue, but
the skeleton did not fall, so value bootstrapping stays correct.
"""
from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np

from .constants import (
    ACTION_SIZE,
    LIGAMENT_FORCES,
    MAX_STEPS,
    OBSERVATION_SIZE,
    PELVIS_FALL_HEIGHT,
    PELVIS_X,
    PELVIS_Y,
)
from .course import Course, check_difficulty, generate_course
from .model_file import resolve_model_path
from .simulator import GRADER_INTEGRATOR, SimulationError, Simulator, set_opensim_log_level

#: The 2017 grader's integrator accuracy; 3e-2 was the teams' training speed-up.
GRADER_ACCURACY = 1e-3


def check_count(value, name: str, minimum: int) -> int:
    """An int >= minimum, or a ValueError naming it (a bool is no count: True == 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    return int(value)


def check_accuracy(value, name: str, alternatives: str = "") -> float:
    """A float in (0, 1), or a ValueError naming it (not float()'s TypeError for None)."""
    try:
        accuracy = float(value)
    except (TypeError, ValueError):
        accuracy = None
    if isinstance(value, (bool, np.bool_)) or accuracy is None or not 0.0 < accuracy < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1){alternatives}, got {value!r}")
    return accuracy


class L2RunEnv(gym.Env):
    """OpenSim's gait9dof18musc running over spheres.

    Args:
        difficulty: 0 flat ground; 1 three obstacles; 2 obstacles and a weakened
            psoas per leg (1 - N(0, 0.1), at least 0.5).
        max_obstacles: obstacle slots; 3 (round 1) or 10 (round 2: the extra
            spheres lie beyond 5 m at cumulative spacing U(2, 4) m).
        integrator_accuracy: OpenSim integrator accuracy.
        max_steps: steps of 10 ms before truncation.
        model_path: an .osim file with gait9dof18musc's muscles, bodies and
            contact spheres; None uses the one shipped by osim-rl.
        opensim_log_level: OpenSim's (process-wide) logger level; "warn" hides
            the info lines OpenSim 4.6 prints on every integrate call.
        integrator: the OpenSim integrator, one of ``l2run.simulator.INTEGRATORS``;
            "runge_kutta_merson" is the 2017 grader's, "semi_explicit_euler2"
            trains ~2.5x faster at 3e-2 (``l2run bench integrators``).
        retry_accuracy: when the integrator fails on a step (at 3e-2 it does,
            mostly while a skeleton collapses onto its joint limits), retry
            that step once at this accuracy before giving up; "auto" is
            integrator_accuracy / 10, None turns retries off (a failure then
            ends the episode at once). Retries always use Runge-Kutta-Merson.
        friction_transition_velocity: the feet's friction transition velocity
            in m/s; None keeps the model's 0.1 m/s (the grader's). Larger values
            simulate a running gait faster but let the stance foot creep more
            (``Simulator.set_friction_transition_velocity``): for training only.

    ``reset(seed=s)`` draws the course from ``s``: the same seed gives the same
    course and, for the same actions, the same trajectory. ``reset(options=
    {"obstacles": [[x, y, r], ...], "psoas": (left, right)})`` sets a course
    explicitly (either key may be given alone; the other takes the flat/full-
    strength default).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        difficulty: int = 2,
        max_obstacles: int = 3,
        integrator_accuracy: float = GRADER_ACCURACY,
        max_steps: int = MAX_STEPS,
        model_path: Optional[str] = None,
        opensim_log_level: str = "warn",
        retry_accuracy: Optional[float] | str = "auto",
        integrator: str = GRADER_INTEGRATOR,
        friction_transition_velocity: Optional[float] = None,
    ):
        self.difficulty = check_difficulty(difficulty)
        self.max_obstacles = check_count(max_obstacles, "max_obstacles", 0)
        self.integrator_accuracy = check_accuracy(integrator_accuracy, "integrator_accuracy")
        self.max_steps = check_count(max_steps, "max_steps", 1)
        if isinstance(retry_accuracy, str) and retry_accuracy == "auto":
            retry_accuracy = self.integrator_accuracy / 10
        elif retry_accuracy is not None:
            retry_accuracy = check_accuracy(retry_accuracy, "retry_accuracy", ", 'auto' or None")
        self.model_path = resolve_model_path(model_path)
        set_opensim_log_level(opensim_log_level)
        self.sim = Simulator(self.model_path, self.max_obstacles, self.integrator_accuracy, retry_accuracy,
                             integrator)
        self.sim.set_friction_transition_velocity(friction_transition_velocity)

        self.action_space = gym.spaces.Box(0.0, 1.0, (ACTION_SIZE,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBSERVATION_SIZE,), dtype=np.float64)
        self._obs: Optional[np.ndarray] = None
        self._steps = 0
        self._episode_over = True

    # -- gymnasium API --------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
        super().reset(seed=None if seed is None else int(seed))
        course = self._course_from(options) if options else None
        if course is None:
            course = generate_course(self.difficulty, self.max_obstacles, self.np_random)
        self.sim.reset(course)
        self._steps = 0
        self._episode_over = False
        self._obs = self.sim.observe()
        return self._obs.copy(), self._info(distance=0.0)

    def step(self, action):
        if self._episode_over:
            raise RuntimeError(
                "L2RunEnv.step() called after the episode ended (terminated or truncated) "
                "or before the first reset(); call reset() first"
            )
        excitations = self._validated_action(action)
        previous_x = self._obs[PELVIS_X]
        try:
            self.sim.step(excitations)
            obs = self.sim.observe()
        except SimulationError as err:
            # The episode cannot go on; the last good observation stands and
            # the run carries on with a reset. Truncated, not terminated: the
            # skeleton did not fall, the integrator did.
            self._episode_over = True
            self._steps += 1
            info = self._info(distance=0.0, ligaments=False)
            info["sim_error"] = str(err)
            return self._obs.copy(), 0.0, False, True, info
        self._steps += 1
        self._obs = obs
        distance = float(obs[PELVIS_X] - previous_x)
        terminated = bool(obs[PELVIS_Y] < PELVIS_FALL_HEIGHT)
        truncated = (not terminated) and self._steps >= self.max_steps
        self._episode_over = terminated or truncated
        return obs.copy(), distance, terminated, truncated, self._info(distance)

    def close(self):
        self.sim = None

    # -- helpers --------------------------------------------------------------
    def _validated_action(self, action) -> np.ndarray:
        if action is None:
            raise ValueError(f"action must be an array of {ACTION_SIZE} excitations, got None")
        try:
            raw = np.asarray(action)
        except (TypeError, ValueError) as err:  # e.g. ragged nesting
            raise ValueError(f"action must be {ACTION_SIZE} numbers, got {action!r}") from err
        if raw.dtype.kind == "c":  # float() would drop the imaginary part with only a warning
            raise ValueError(f"action must be real-valued excitations, got complex values (dtype {raw.dtype})")
        if raw.dtype.kind not in "iuf":  # bool, strings, None or other objects inside
            raise ValueError(
                f"action must be {ACTION_SIZE} numbers (real excitations), got dtype {raw.dtype}: {action!r}"
            )
        excitations = raw.astype(np.float64)
        if excitations.shape != (ACTION_SIZE,):
            raise ValueError(
                f"action must have shape ({ACTION_SIZE},) (one excitation per muscle), "
                f"got shape {excitations.shape}"
            )
        bad = ~np.isfinite(excitations)
        if bad.any():
            raise ValueError(
                f"action has non-finite excitations at indices {np.flatnonzero(bad).tolist()}: "
                f"{excitations[bad].tolist()}"
            )
        return np.clip(excitations, 0.0, 1.0)

    def _course_from(self, options: dict) -> Optional[Course]:
        unknown = set(options) - {"obstacles", "psoas"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: ['obstacles', 'psoas']")
        if not options:
            return None
        obstacles = np.asarray(options.get("obstacles", np.zeros((0, 3))), dtype=np.float64)
        if obstacles.size and (obstacles.ndim != 2 or obstacles.shape[1] != 3):
            raise ValueError(f"options['obstacles'] must be rows of (x, y, radius), got shape {obstacles.shape}")
        if len(obstacles.reshape(-1, 3)) > self.max_obstacles:
            raise ValueError(
                f"options['obstacles'] has {len(obstacles)} rows but max_obstacles is {self.max_obstacles}"
            )
        return Course(obstacles.reshape(-1, 3), tuple(options.get("psoas", (1.0, 1.0))))

    def _info(self, distance: float, ligaments: bool = True) -> dict[str, Any]:
        course = self.sim.course
        return {
            "step": self._steps,
            "pelvis_x": float(self._obs[PELVIS_X]),
            "distance": distance,
            "obstacles": course.obstacles.copy(),
            "psoas": course.psoas,
            "ligament_forces": self.sim.ligament_forces() if ligaments else np.zeros(len(LIGAMENT_FORCES)),
        }
