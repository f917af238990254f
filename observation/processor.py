"""Turns the stream of raw 41-float observations into the 82 features.

Why a stateful object per env: the features need the previous 10 ms state
(finite-difference velocities and accelerations) and the obstacles seen so far
(the raw observation only shows the next sphere, so the one under the feet is
forgotten as soon as the pelvis passes its far edge). The 2017 code kept that
memory in function attributes, shared by every env in the process; here each
env owns one :class:`FeatureProcessor` and :meth:`FeatureProcessor.reset`
starts it afresh every episode, so nothing leaks between envs or episodes.

Nothing here depends on absolute x: every position is relative to the pelvis
and obstacles are remembered at absolute x only to be compared with other
absolute x, so moving the whole course forward changes no feature.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from l2run import constants as C

from . import table as T

#: Radius of the four foot contact spheres of gait9dof18musc (r_heel, r_toe, l_heel, l_toe).
FOOT_SPHERE_RADIUS = 0.05
#: Centre of the heel sphere relative to the talus origin, in the foot frame
#: (first axis along talus -> toes origin, second axis its left normal, i.e. up
#: when the foot is flat), m. The foot (talus, calcn, toes) is one rigid body
#: in this model (subtalar and mtp are weld joints), so its pitch follows from
#: the talus and toes positions, and these offsets place the spheres exactly.
#: Measured from gait9dof18musc.osim (tests/test_observation_env.py checks them).
HEEL_SPHERE_IN_FOOT = (-0.0171573, -0.0078575)
#: Centre of the toe sphere relative to the toes origin, in the foot frame (m).
TOE_SPHERE_IN_FOOT = (0.0156124, 0.0475000)
#: Lateral (z) position of the sphere centres in ground (m), + for the right
#: foot, - for the left: hip 0.0835 + subtalar 0.00792 for the heel (calcn
#: origin), + mtp 0.00108 more for the toe. The model is planar (every joint
#: rotates about z), so these never change. The obstacles' centres lie in
#: z = 0, so a foot sphere meets an obstacle of radius R only when its
#: in-plane distance is below sqrt((R + 0.05)^2 - z^2), never when
#: R + 0.05 <= |z|. Measured from gait9dof18musc.osim
#: (tests/test_observation_env.py checks them).
HEEL_SPHERE_Z = 0.09142
TOE_SPHERE_Z = 0.0925
#: Contact indicator band (m): 0 when a foot sphere is this far clear of the
#: surface (see :func:`surface_clearance`), 0.5 when just touching, 1 when
#: pressed this deep into it.
#: Under body weight the soft Hunt-Crossley contact sinks 2-4 cm.
CONTACT_BAND = 0.02

#: Two obstacle observations are the same sphere when their absolute x (pelvis
#: x + distance, rounding differs per step), y and radius agree to this (m).
SAME_OBSTACLE_TOLERANCE = 1e-6

_RAW = {name: i for i, name in enumerate(C.OBSERVATION_NAMES)}
_RAW_PELVIS_SPEEDS = slice(C.PELVIS_TILT_SPEED, C.PELVIS_VY + 1)
_RAW_COM_POSITION = slice(C.COM.start, C.COM.start + 2)
_RAW_COM_VELOCITY = slice(C.COM.start + 2, C.COM.stop)
#: Raw (x, y) indices of T.RELATIVE_BODIES, shape (6, 2).
_RAW_BODY_XY = np.array([[_RAW[f"{body}_x"], _RAW[f"{body}_y"]] for body in T.RELATIVE_BODIES])
_RAW_OBSTACLE_DX, _RAW_OBSTACLE_Y, _RAW_OBSTACLE_RADIUS = range(C.OBSTACLE.start, C.OBSTACLE.stop)


def pelvis_xy(raw: np.ndarray) -> np.ndarray:
    return np.array([raw[C.PELVIS_X], raw[C.PELVIS_Y]])


def foot_sphere_centres(raw: np.ndarray) -> np.ndarray:
    """Ground-frame centres (4, 3) (x, y, z) of the toe and heel contact
    spheres, in ``table.CONTACT_POINTS`` order (toes_l, toes_r, talus_l,
    talus_r). x and y follow the foot; z is the model's constant lateral
    offset (:data:`TOE_SPHERE_Z`, :data:`HEEL_SPHERE_Z`)."""
    centres = np.empty((len(T.CONTACT_POINTS), 3))
    for i, point in enumerate(T.CONTACT_POINTS):
        side = point[-1]
        talus = np.array([raw[_RAW[f"talus_{side}_x"]], raw[_RAW[f"talus_{side}_y"]]])
        toes = np.array([raw[_RAW[f"toes_{side}_x"]], raw[_RAW[f"toes_{side}_y"]]])
        along = (toes - talus) / np.linalg.norm(toes - talus)
        normal = np.array([-along[1], along[0]])
        if point.startswith("toes"):
            origin, (a, b), z = toes, TOE_SPHERE_IN_FOOT, TOE_SPHERE_Z
        else:
            origin, (a, b), z = talus, HEEL_SPHERE_IN_FOOT, HEEL_SPHERE_Z
        centres[i, :2] = origin + a * along + b * normal
        centres[i, 2] = z if side == "r" else -z
    return centres


def surface_clearance(centres: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """Gap (m, negative when pressed in) between each foot sphere (centres
    (n, 3) in ground) and the nearest surface: the ground (y = 0) or any of
    ``obstacles`` (k, 3) absolute (x, y, radius), whose centres lie in z = 0.

    The gap to an obstacle is measured in 3-D along the line of centres, as
    the simulator's Hunt-Crossley contact measures penetration, so the gap to
    the ground and to a sphere mean the same thing (and the contact band of
    :func:`contact_indicator` reads alike on both). The foot spheres sit
    ~9 cm beside the obstacles' plane: a sphere that overlaps a foot sphere
    in the x-y plane may not touch it at all."""
    clearance = centres[:, 1] - FOOT_SPHERE_RADIUS
    if len(obstacles):
        obstacle_centres = np.column_stack([obstacles[:, :2], np.zeros(len(obstacles))])
        distance = np.linalg.norm(centres[:, None, :] - obstacle_centres[None, :, :], axis=-1)
        to_spheres = distance - obstacles[None, :, 2] - FOOT_SPHERE_RADIUS
        clearance = np.minimum(clearance, to_spheres.min(axis=1))
    return clearance


def contact_indicator(clearance: np.ndarray) -> np.ndarray:
    """Smoothstep from 0 (clearance >= CONTACT_BAND) to 1 (<= -CONTACT_BAND)."""
    s = np.clip((CONTACT_BAND - np.asarray(clearance)) / (2 * CONTACT_BAND), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


class ObstacleMemory:
    """The spheres seen so far in one episode, and which are next and previous.

    The raw observation shows only the next sphere (relative x, y, radius), or
    ``(100, 0, 0)`` when none is left. Each new one is remembered at absolute x
    (pelvis x + distance). The *next* sphere is the raw one; the *previous* is
    the remembered sphere just before it in x (or the last one, when none is
    ahead). So when the pelvis passes a sphere's far edge and the raw
    observation switches to the following sphere, the passed one becomes
    "previous"; if the runner falls back behind it, it becomes "next" again and
    the queue follows. Spheres the raw stream never showed (a small one hidden
    behind a larger, overlapping one) stay unknown.
    """

    def __init__(self):
        self.known = np.zeros((0, 3))
        self.next: Optional[np.ndarray] = None

    def reset(self) -> None:
        self.known = np.zeros((0, 3))
        self.next = None

    def update(self, raw: np.ndarray) -> None:
        dx, y, radius = raw[_RAW_OBSTACLE_DX], raw[_RAW_OBSTACLE_Y], raw[_RAW_OBSTACLE_RADIUS]
        if radius <= 0.0:  # the (100, 0, 0) sentinel: the env's spheres all have radius > 0
            self.next = None
            return
        sphere = np.array([raw[C.PELVIS_X] + dx, y, radius])
        if self.next is not None and np.all(np.abs(sphere - self.next) <= SAME_OBSTACLE_TOLERANCE):
            return  # the same sphere as last step
        same = np.all(np.abs(self.known - sphere) <= SAME_OBSTACLE_TOLERANCE, axis=1)
        if same.any():
            sphere = self.known[np.argmax(same)]
        else:
            self.known = np.vstack([self.known, sphere])
        self.next = sphere

    @property
    def previous(self) -> Optional[np.ndarray]:
        behind = self.known if self.next is None else self.known[self.known[:, 0] < self.next[0]]
        if not len(behind):
            return None
        return behind[np.argmax(behind[:, 0])]


class FeatureProcessor:
    """Raw 41-float observations of one episode -> 82 normalised features.

    ``reset(raw)`` on the episode's first observation, then ``step(raw)`` on
    every following 10 ms observation (each step of the env, not of a frame
    skip: the finite differences assume ``constants.STEP_SECONDS``). Both
    return a float64 array of shape (82,) in ``FEATURE_NAMES`` order;
    ``physical`` holds the last features before normalisation.

    On the first step of an episode, accelerations and the finite-difference
    body velocities are 0, which is exact: episodes start at rest from the
    model's default pose (raw speeds 0). Velocities given by the simulator
    (pelvis, joints, centre of mass) are used as they are.
    """

    def __init__(self):
        self.obstacles = ObstacleMemory()
        self._previous_raw: Optional[np.ndarray] = None
        self._previous_body_velocity: Optional[np.ndarray] = None
        self.physical: Optional[np.ndarray] = None

    def reset(self, raw: np.ndarray) -> np.ndarray:
        self.obstacles.reset()
        self._previous_raw = None
        self._previous_body_velocity = None
        return self.step(raw)

    def step(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.shape != (C.OBSERVATION_SIZE,):
            raise ValueError(f"raw observation must have shape ({C.OBSERVATION_SIZE},), got {raw.shape}")
        self.physical = self._physical(raw)
        return T.normalise(self.physical)

    def _physical(self, raw: np.ndarray) -> np.ndarray:
        dt = C.STEP_SECONDS
        previous = self._previous_raw
        first = previous is None
        f = np.full(T.FEATURE_SIZE, np.nan)
        pelvis = pelvis_xy(raw)

        f[T.PELVIS_TILT] = raw[C.PELVIS_TILT]
        f[T.PELVIS_Y] = raw[C.PELVIS_Y]
        pelvis_speeds = raw[_RAW_PELVIS_SPEEDS]
        f[T.PELVIS_SPEEDS] = pelvis_speeds
        f[T.PELVIS_ACCELERATIONS] = 0.0 if first else (pelvis_speeds - previous[_RAW_PELVIS_SPEEDS]) / dt

        f[T.JOINT_ANGLES] = raw[C.JOINT_ANGLES]
        f[T.JOINT_SPEEDS] = raw[C.JOINT_SPEEDS]
        f[T.JOINT_ACCELERATIONS] = 0.0 if first else (raw[C.JOINT_SPEEDS] - previous[C.JOINT_SPEEDS]) / dt

        f[T.COM_POSITION] = raw[_RAW_COM_POSITION] - pelvis
        f[T.COM_VELOCITY] = raw[_RAW_COM_VELOCITY] - raw[[C.PELVIS_VX, C.PELVIS_VY]]
        f[T.COM_ACCELERATION] = 0.0 if first else (raw[_RAW_COM_VELOCITY] - previous[_RAW_COM_VELOCITY]) / dt

        relative = raw[_RAW_BODY_XY] - pelvis  # (6, 2)
        if first:
            velocity = np.zeros_like(relative)
            acceleration = np.zeros_like(relative)
        else:
            velocity = (relative - (previous[_RAW_BODY_XY] - pelvis_xy(previous))) / dt
            acceleration = (velocity - self._previous_body_velocity) / dt
        f[T.BODY_POSITIONS] = relative.ravel()
        f[T.BODY_VELOCITIES] = velocity.ravel()
        f[T.BODY_ACCELERATIONS] = acceleration.ravel()

        self.obstacles.update(raw)
        f[T.CONTACTS] = contact_indicator(surface_clearance(foot_sphere_centres(raw), self.obstacles.known))
        f[T.PSOAS] = raw[C.PSOAS]
        f[T.OBSTACLE_NEXT] = self._obstacle_features(self.obstacles.next, raw[C.PELVIS_X], ahead=True)
        f[T.OBSTACLE_PREV] = self._obstacle_features(self.obstacles.previous, raw[C.PELVIS_X], ahead=False)

        self._previous_raw = raw.copy()
        self._previous_body_velocity = velocity
        assert not np.isnan(f).any(), [T.FEATURE_NAMES[i] for i in np.flatnonzero(np.isnan(f))]
        return f

    @staticmethod
    def _obstacle_features(sphere: Optional[np.ndarray], pelvis_x: float, ahead: bool) -> np.ndarray:
        """(present, dx, top, radius); an absent sphere sits at the horizon with radius 0.

        The next sphere beyond the horizon ahead stays present (clipped dx,
        true size): the runner will reach it. The previous sphere beyond the
        horizon behind reads as absent: no foot can reach it any more (see
        ``table.OBSTACLE_HORIZON_BEHIND``)."""
        if ahead:
            if sphere is None:
                return np.array([0.0, T.OBSTACLE_HORIZON_AHEAD, 0.0, 0.0])
            dx = min(sphere[0] - pelvis_x, T.OBSTACLE_HORIZON_AHEAD)
        else:
            if sphere is None or sphere[0] - pelvis_x < -T.OBSTACLE_HORIZON_BEHIND:
                return np.array([0.0, -T.OBSTACLE_HORIZON_BEHIND, 0.0, 0.0])
            dx = sphere[0] - pelvis_x
        x, y, radius = sphere
        return np.array([1.0, dx, y + radius, radius])
