"""Names and index constants of the 2017 "Learning to Run" interface.

Everything that addresses the 41-float observation or the 18-float action by
position goes through the names here, so ``obs[PELVIS_X]`` reads as what it is
instead of ``obs[1]``.
"""

#: Simulated time per env step: the challenge's 10 ms control interval.
STEP_SECONDS = 0.01

#: The episode ends (terminated) once the pelvis drops below this height (m).
PELVIS_FALL_HEIGHT = 0.65

#: Default episode length of the challenge (steps of 10 ms).
MAX_STEPS = 1000

#: The 18 muscles of ``gait9dof18musc`` in the model's own order; action[i]
#: is the excitation in [0, 1] of ``MUSCLE_NAMES[i]``.
MUSCLE_NAMES = (
    "hamstrings_r", "bifemsh_r", "glut_max_r", "iliopsoas_r", "rect_fem_r",
    "vasti_r", "gastroc_r", "soleus_r", "tib_ant_r",
    "hamstrings_l", "bifemsh_l", "glut_max_l", "iliopsoas_l", "rect_fem_l",
    "vasti_l", "gastroc_l", "soleus_l", "tib_ant_l",
)
#: The hip and knee muscles, without their side: held near a zero excitation they
#: make the fibre dynamics stiff and the integrator crawl; the ankle ones do not
#: (docs/benchmarks.md, ``l2run bench policy --variants ... sampled+hipknee=0.15``).
HIP_KNEE_MUSCLES = ("hamstrings", "bifemsh", "glut_max", "iliopsoas", "rect_fem", "vasti")
PSOAS_R_MUSCLE = MUSCLE_NAMES.index("iliopsoas_r")
PSOAS_L_MUSCLE = MUSCLE_NAMES.index("iliopsoas_l")

#: Joint coordinates reported in the observation, right leg then left.
JOINT_COORDINATES = (
    "hip_flexion_r", "knee_angle_r", "ankle_angle_r",
    "hip_flexion_l", "knee_angle_l", "ankle_angle_l",
)
PELVIS_COORDINATES = ("pelvis_tilt", "pelvis_tx", "pelvis_ty")

#: Bodies whose (x, y) origin in ground is reported, in the challenge's order.
TRACKED_BODIES = ("head", "pelvis", "torso", "toes_l", "toes_r", "talus_l", "talus_r")

#: The 6 passive joint-limit forces ("ligaments") of the model; the challenge
#: penalised sqrt(sum of their squared forces) * 1e-7 per step.
LIGAMENT_FORCES = (
    "HipLimit_r", "HipLimit_l", "KneeLimit_r", "KneeLimit_l", "AnkleLimit_r", "AnkleLimit_l",
)

#: The 2017 challenge's 41 observation floats, in its order.
OBSERVATION_NAMES = (
    "pelvis_tilt", "pelvis_tx", "pelvis_ty",
    "pelvis_tilt_speed", "pelvis_tx_speed", "pelvis_ty_speed",
    "hip_r", "knee_r", "ankle_r", "hip_l", "knee_l", "ankle_l",
    "hip_r_speed", "knee_r_speed", "ankle_r_speed",
    "hip_l_speed", "knee_l_speed", "ankle_l_speed",
    "com_x", "com_y", "com_vx", "com_vy",
    *(f"{body}_{axis}" for body in TRACKED_BODIES for axis in ("x", "y")),
    "psoas_strength_l", "psoas_strength_r",
    "obstacle_dx", "obstacle_y", "obstacle_radius",
)
OBSERVATION_SIZE = len(OBSERVATION_NAMES)
ACTION_SIZE = len(MUSCLE_NAMES)

_INDEX = {name: i for i, name in enumerate(OBSERVATION_NAMES)}
# The pelvis joint's generalized coordinates (rotation, x, y) and speeds.
PELVIS_POSITION = slice(_INDEX["pelvis_tilt"], _INDEX["pelvis_ty"] + 1)
PELVIS_SPEEDS = slice(_INDEX["pelvis_tilt_speed"], _INDEX["pelvis_ty_speed"] + 1)
PELVIS_TILT = _INDEX["pelvis_tilt"]
PELVIS_X = _INDEX["pelvis_tx"]
PELVIS_Y = _INDEX["pelvis_ty"]
PELVIS_TILT_SPEED = _INDEX["pelvis_tilt_speed"]
PELVIS_VX = _INDEX["pelvis_tx_speed"]
PELVIS_VY = _INDEX["pelvis_ty_speed"]
JOINT_ANGLES = slice(_INDEX["hip_r"], _INDEX["ankle_l"] + 1)
JOINT_SPEEDS = slice(_INDEX["hip_r_speed"], _INDEX["ankle_l_speed"] + 1)
KNEE_R = _INDEX["knee_r"]
KNEE_L = _INDEX["knee_l"]
COM = slice(_INDEX["com_x"], _INDEX["com_vy"] + 1)
BODY_POSITIONS = slice(_INDEX["head_x"], _INDEX["talus_r_y"] + 1)
HEAD_X = _INDEX["head_x"]
PSOAS = slice(_INDEX["psoas_strength_l"], _INDEX["psoas_strength_r"] + 1)
OBSTACLE = slice(_INDEX["obstacle_dx"], _INDEX["obstacle_radius"] + 1)

#: What the observation reports when no obstacle lies ahead (challenge convention).
NO_OBSTACLE = (100.0, 0.0, 0.0)

del _INDEX

assert OBSERVATION_SIZE == 41 and ACTION_SIZE == 18
assert len(set(OBSERVATION_NAMES)) == OBSERVATION_SIZE
