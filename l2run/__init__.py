"""l2run: the NIPS 2017 "Learning to Run" task on OpenSim 4.6 as a gymnasium env.

    import gymnasium as gym, l2run
    env = gym.make("L2Run-v0", difficulty=2, max_obstacles=10)

This package knows nothing of TensorFlow or MPI.
"""
import gymnasium

from .constants import (
    ACTION_SIZE,
    MUSCLE_NAMES,
    OBSERVATION_NAMES,
    OBSERVATION_SIZE,
)
from .course import Course, generate_course
from .env import GRADER_ACCURACY, L2RunEnv
from .model_file import default_model_path
from .simulator import SimulationError, set_opensim_log_level

__all__ = [
    "ACTION_SIZE", "MUSCLE_NAMES", "OBSERVATION_NAMES", "OBSERVATION_SIZE",
    "Course", "generate_course", "GRADER_ACCURACY", "L2RunEnv", "default_model_path",
    "SimulationError", "set_opensim_log_level",
]

if "L2Run-v0" not in gymnasium.registry:
    # No max_episode_steps here: the env truncates itself at max_steps.
    gymnasium.register(id="L2Run-v0", entry_point="l2run.env:L2RunEnv")
