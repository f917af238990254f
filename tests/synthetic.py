"""Constructed raw observations, for tests that must not need OpenSim.

Test fixtures, not part of the runtime packages: tests import it as
``synthetic`` (pytest puts tests/ on ``sys.path``, as for ``toy_env``).

``standing_observation`` is gait9dof18musc's default pose (measured from the
model at pelvis height 0.91 m); ``synthetic_episode`` is a smooth, roughly
consistent stride: pelvis moving forward at constant speed, legs swinging in
antiphase, feet rigid (talus -> toes fixed length, as in the model), speeds
equal to the derivatives of the positions, and the obstacle fields filled by
the challenge's rule (a sphere is "next" while x + radius >= pelvis x). Not
physics: just a stream with the structure the feature processor relies on.
``ReplayEnv`` plays such a stream back as a gymnasium env.
"""
from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import numpy as np

from l2run import constants as C

_RAW = {name: i for i, name in enumerate(C.OBSERVATION_NAMES)}

#: gait9dof18musc's default pose: body origins in ground with the pelvis at (0, 0.91).
DEFAULT_POSE = {
    "head": (0.0071695, 1.5365722),
    "pelvis": (0.0, 0.91),
    "torso": (-0.0965008, 0.9964310),
    "toes_l": (0.0079876, -0.0274415),
    "toes_r": (0.0079876, -0.0274415),
    "talus_l": (-0.1196833, 0.0229524),
    "talus_r": (-0.1196833, 0.0229524),
}
DEFAULT_COM = (-0.0697343, 0.9707693)
#: talus origin -> toes origin in the default pose (the foot is rigid).
FOOT_VECTOR = np.subtract(DEFAULT_POSE["toes_r"], DEFAULT_POSE["talus_r"])


def set_obstacle(raw: np.ndarray, obstacles: np.ndarray) -> None:
    """Fill raw's obstacle fields from absolute (x, y, radius) rows sorted by x."""
    pelvis_x = raw[C.PELVIS_X]
    for x, y, radius in np.asarray(obstacles, dtype=np.float64).reshape(-1, 3):
        if x + radius >= pelvis_x:
            raw[C.OBSTACLE] = (x - pelvis_x, y, radius)
            return
    raw[C.OBSTACLE] = C.NO_OBSTACLE


def standing_observation(pelvis_x: float = 0.0, psoas=(1.0, 1.0), obstacles=()) -> np.ndarray:
    """The default pose at rest, moved to ``pelvis_x``."""
    raw = np.zeros(C.OBSERVATION_SIZE)
    raw[C.PELVIS_Y] = DEFAULT_POSE["pelvis"][1]
    for body, (x, y) in DEFAULT_POSE.items():
        raw[_RAW[f"{body}_x"]] = x + pelvis_x
        raw[_RAW[f"{body}_y"]] = y
    raw[C.PELVIS_X] = pelvis_x
    raw[_RAW["com_x"]], raw[_RAW["com_y"]] = DEFAULT_COM[0] + pelvis_x, DEFAULT_COM[1]
    raw[C.PSOAS] = psoas
    set_obstacle(raw, obstacles)
    return raw


def _rotate(vector, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def synthetic_episode(
    steps: int = 200,
    speed: float = 1.5,
    start_x: float = 0.0,
    obstacles: Sequence = (),
    psoas=(1.0, 1.0),
    seed: int = 0,
) -> np.ndarray:
    """(steps, 41) raw observations of a made-up stride starting at rest."""
    rng = np.random.default_rng(seed)
    dt = C.STEP_SECONDS
    frequency = rng.uniform(1.2, 1.8)  # strides per second
    phase0 = rng.uniform(0, 2 * np.pi)
    t = np.arange(steps) * dt
    ramp = np.minimum(t / 0.3, 1.0) ** 2  # start at rest, reach full motion after 0.3 s
    ramp_rate = np.where(t < 0.3, 2 * t / 0.3**2, 0.0)
    omega = 2 * np.pi * frequency
    obs = np.zeros((steps, C.OBSERVATION_SIZE))
    obstacles = np.asarray(obstacles, dtype=np.float64).reshape(-1, 3)
    for k in range(steps):
        raw = obs[k]
        a, da = ramp[k], ramp_rate[k]
        # Pelvis: forward at speed * ramp (position integrates it), small bob and pitch.
        raw[C.PELVIS_X] = start_x + speed * (t[k] ** 3 / (3 * 0.3**2) if t[k] < 0.3 else t[k] - 0.2)
        raw[C.PELVIS_VX] = speed * a
        bob, dbob = 0.02 * np.sin(2 * omega * t[k]), 0.04 * omega * np.cos(2 * omega * t[k])
        raw[C.PELVIS_Y] = 0.91 + a * bob
        raw[C.PELVIS_VY] = a * dbob + da * bob
        tilt, dtilt = -0.1 + 0.05 * np.sin(omega * t[k]), 0.05 * omega * np.cos(omega * t[k])
        raw[C.PELVIS_TILT] = a * tilt
        raw[C.PELVIS_TILT_SPEED] = a * dtilt + da * tilt
        pelvis = np.array([raw[C.PELVIS_X], raw[C.PELVIS_Y]])
        angles, speeds = [], []
        for leg, shift in (("r", 0.0), ("l", np.pi)):
            phase = omega * t[k] + phase0 + shift
            leg_angles = np.array([0.4 * np.sin(phase), -0.6 - 0.5 * np.cos(phase), 0.2 * np.sin(phase + 1)])
            leg_speeds = omega * np.array([0.4 * np.cos(phase), 0.5 * np.sin(phase), 0.2 * np.cos(phase + 1)])
            angles.append(a * leg_angles)
            speeds.append(a * leg_speeds + da * leg_angles)
            # Foot: swings fore-aft with the hip, lifts during swing, pitches with the ankle.
            talus = np.array([
                pelvis[0] + (1 - a) * DEFAULT_POSE["talus_r"][0] + a * 0.35 * np.sin(phase),
                DEFAULT_POSE["talus_r"][1] + a * 0.08 * max(0.0, np.cos(phase)),
            ])
            toes = talus + _rotate(FOOT_VECTOR, a * 0.3 * np.sin(phase + 1))
            raw[_RAW[f"talus_{leg}_x"]], raw[_RAW[f"talus_{leg}_y"]] = talus
            raw[_RAW[f"toes_{leg}_x"]], raw[_RAW[f"toes_{leg}_y"]] = toes
        raw[C.JOINT_ANGLES] = np.concatenate(angles)
        raw[C.JOINT_SPEEDS] = np.concatenate(speeds)
        for body in ("head", "torso"):
            offset = np.subtract(DEFAULT_POSE[body], DEFAULT_POSE["pelvis"])
            raw[_RAW[f"{body}_x"]], raw[_RAW[f"{body}_y"]] = pelvis + _rotate(offset, raw[C.PELVIS_TILT])
        raw[_RAW["pelvis_x"]], raw[_RAW["pelvis_y"]] = pelvis
        com_offset = np.subtract(DEFAULT_COM, DEFAULT_POSE["pelvis"])
        raw[_RAW["com_x"]], raw[_RAW["com_y"]] = pelvis + _rotate(com_offset, raw[C.PELVIS_TILT])
        # Centre of mass speed: the pelvis speed plus the rotation of the offset (legs ignored).
        raw[_RAW["com_vx"]], raw[_RAW["com_vy"]] = (
            raw[[C.PELVIS_VX, C.PELVIS_VY]]
            + raw[C.PELVIS_TILT_SPEED] * _rotate(com_offset, raw[C.PELVIS_TILT] + np.pi / 2)
        )
        raw[C.PSOAS] = psoas
        set_obstacle(raw, obstacles)
    return obs


def shifted(observations: np.ndarray, dx: float) -> np.ndarray:
    """Observations (..., 41) with the whole course moved forward by ``dx``:
    every absolute x (pelvis, centre of mass, bodies) + dx; obstacle distances
    are relative and stay."""
    out = np.array(observations, dtype=np.float64, copy=True)
    absolute_x = [C.PELVIS_X, _RAW["com_x"]] + [_RAW[f"{body}_x"] for body in C.TRACKED_BODIES]
    out[..., absolute_x] += dx
    return out


class ReplayEnv(gym.Env):
    """Plays back constructed raw observations through the gymnasium API with
    ``L2RunEnv``'s info keys, for wrapper tests that need no OpenSim; from step
    ``fail_at`` on it behaves as ``L2RunEnv`` after a simulator failure (repeats
    the last observation, truncated, ``info["sim_error"]``)."""

    def __init__(self, observations: np.ndarray, fail_at: Optional[int] = None):
        self.observations = np.asarray(observations, dtype=np.float64)
        self.fail_at = fail_at
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (C.OBSERVATION_SIZE,), dtype=np.float64)
        self.action_space = gym.spaces.Box(0.0, 1.0, (C.ACTION_SIZE,), dtype=np.float32)
        self.t = 0

    def _info(self, distance):
        return {"step": self.t, "pelvis_x": float(self.observations[self.t, C.PELVIS_X]), "distance": distance,
                "ligament_forces": np.zeros(len(C.LIGAMENT_FORCES))}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observations[0].copy(), self._info(0.0)

    def step(self, action):
        if self.fail_at is not None and self.t + 1 >= self.fail_at:
            info = self._info(0.0)
            info["sim_error"] = "replayed integrator failure"
            return self.observations[self.t].copy(), 0.0, False, True, info
        self.t += 1
        obs = self.observations[self.t]
        distance = float(obs[C.PELVIS_X] - self.observations[self.t - 1, C.PELVIS_X])
        truncated = self.t == len(self.observations) - 1
        terminated = bool(obs[C.PELVIS_Y] < C.PELVIS_FALL_HEIGHT)
        return obs.copy(), distance, terminated, truncated and not terminated, self._info(distance)
