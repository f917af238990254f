"""The 82 features: one table holds each feature's name, meaning, unit and
normalisation, and everything else (names, index constants, offset and scale
vectors, the docs table) is derived from it.

A feature goes through two stages:

* the *physical* value (metres, radians, seconds; computed by
  :class:`observation.FeatureProcessor` from the raw 41 floats), then
* normalisation ``squash((physical - offset) / scale)``, where ``squash`` is
  the identity ("linear") or the signed ``log1p`` ("log1p":
  ``sign(z) * log(1 + |z|)``), which keeps slope 1 near zero and compresses
  the spikes of velocities and accelerations (a knee at 10 rad/s must not
  drown the rest of the input, but must stay visible).

Offsets and scales are fixed numbers, not running statistics: the 2017 team
found that an automatic filter blew constant features up (psoas strength has
std 0 within an episode) and froze arbitrary statistics from the first steps.
They were chosen from ``l2run obs-stats`` runs (8000 random-policy steps,
difficulty 2, 10 obstacles; docs/obs_stats_random.png): every feature that
varies under a random policy has mean in [-1, 1] and std in [0.2, 1.2] there.
Where the random policy is not representative (it falls backwards within
~1.2 s, knees locked), offsets and scales lean towards physical ranges, and
the log1p squash leaves room for a runner's faster motion (a 4 m/s pelvis
reads 2.2). What a random policy cannot make vary:

* ``knee_r``/``knee_l``: random excitation locks both knees hyperextended
  against the ligament (+0.3 rad, std 0.05 rad); a runner flexes them to
  -2 rad, so the scale stays 0.9 rad (random: mean 0.9, std 0.06);
* the obstacle queue: the random skeleton never passes a sphere, so the
  "previous" features stay at their "none" values (-1) and "next ahead" at 1.

Left and right partners share their normalisation, so that mirroring
(:mod:`observation.mirror`) is a plain permutation of normalised features.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

LINEAR = "linear"
LOG1P = "log1p"
SQUASHES = (LINEAR, LOG1P)


@dataclasses.dataclass(frozen=True)
class Feature:
    """One of the 82 features."""

    name: str
    """Unique name; ``_l`` / ``_r`` tokens mark a leg (used for mirroring)."""
    meaning: str
    """What the physical value is, and relative to what."""
    unit: str
    offset: float
    """Subtracted from the physical value (roughly its mean on rollouts)."""
    scale: float
    """Divides ``physical - offset`` (roughly its spread on rollouts)."""
    squash: str = LINEAR
    """``linear`` or ``log1p`` (signed), applied after offset and scale."""

    def __post_init__(self):
        if self.squash not in SQUASHES:
            raise ValueError(f"feature {self.name}: squash must be one of {SQUASHES}, got {self.squash!r}")
        if not self.scale > 0:
            raise ValueError(f"feature {self.name}: scale must be positive, got {self.scale!r}")


#: Bodies reported relative to the pelvis (``constants.TRACKED_BODIES`` minus the pelvis).
RELATIVE_BODIES = ("head", "torso", "toes_l", "toes_r", "talus_l", "talus_r")
#: Joints in the raw observation's order (right leg then left).
JOINTS = ("hip_r", "knee_r", "ankle_r", "hip_l", "knee_l", "ankle_l")
#: Foot contact spheres of each leg, named after the body reported near them.
CONTACT_POINTS = ("toes_l", "toes_r", "talus_l", "talus_r")

#: Next-obstacle distances are clipped to this far ahead (m); "no obstacle
#: ahead" reads as a sphere of radius 0 at this distance.
OBSTACLE_HORIZON_AHEAD = 5.0
#: A previous sphere whose centre is further behind the pelvis than this (m)
#: reads as "no previous obstacle" (present 0, dx at the horizon, top and
#: radius 0). A foot reaches at most ~1 m behind the pelvis (legs 0.9 m), so
#: such a sphere can no longer be touched; reading it as absent keeps the
#: stretch between distant spheres identical to the flat start instead of
#: varying with the size of a sphere the runner has left behind for good.
#: dx itself is continuous there (it reaches the horizon as the sphere leaves).
OBSTACLE_HORIZON_BEHIND = 2.0

# Normalisation per joint kind, shared by both legs: (angle offset, angle
# scale, speed scale, acceleration scale). Angle offsets sit between what a
# random policy visits (hips extended -0.55 rad, knees locked +0.3 rad, ankles
# plantarflexed -0.55 rad) and a running gait (hip -0.4..1, knee -2..0).
_JOINT_NORMALISATION = {
    "hip": (-0.2, 0.5, 1.0, 20.0),
    "knee": (-0.5, 0.9, 1.0, 30.0),
    "ankle": (-0.3, 0.35, 1.0, 40.0),
}

# Relative to the pelvis (m), near the standing pose of gait9dof18musc, and
# the spread seen on rollouts: (x offset, x scale, y offset, y scale).
_BODY_POSITION_NORMALISATION = {
    "head": (-0.15, 0.2, 0.55, 0.1),
    "torso": (-0.11, 0.03, 0.04, 0.05),
    "toes": (0.1, 0.25, -0.9, 0.08),
    "talus": (0.0, 0.25, -0.85, 0.08),
}
# Body velocity and acceleration scales relative to the pelvis: (velocity, acceleration).
_BODY_MOTION_NORMALISATION = {
    "head": (0.4, 5.0),
    "torso": (0.08, 1.0),
    "toes": (0.4, 4.0),
    "talus": (0.3, 3.5),
}


_ANGLE_SIGN = {
    "hip": "> 0 flexed forward",
    "knee": "0 straight, < 0 flexed, > 0 hyperextended",
    "ankle": "> 0 dorsiflexed, < 0 plantarflexed",
}


def _body_kind(body: str) -> str:
    return body.split("_")[0]


def _leg(name: str) -> str:
    side = name.rsplit("_", 1)[-1]
    return {"l": "left", "r": "right"}.get(side, "")


def _joint_features() -> Iterable[Feature]:
    for joint in JOINTS:
        kind = joint.split("_")[0]
        offset, scale, _, _ = _JOINT_NORMALISATION[kind]
        yield Feature(joint, f"{_leg(joint)} {kind} angle (raw; {_ANGLE_SIGN[kind]})", "rad", offset, scale)
    for joint in JOINTS:
        kind = joint.split("_")[0]
        yield Feature(f"{joint}_speed", f"{_leg(joint)} {kind} angular speed (raw)", "rad/s",
                      0.0, _JOINT_NORMALISATION[kind][2], LOG1P)
    for joint in JOINTS:
        kind = joint.split("_")[0]
        yield Feature(f"{joint}_acc", f"{_leg(joint)} {kind} angular acceleration: finite difference "
                      "of its speed over 10 ms (0 on the first step)", "rad/s^2",
                      0.0, _JOINT_NORMALISATION[kind][3], LOG1P)


def _body_features() -> Iterable[Feature]:
    for body in RELATIVE_BODIES:
        x_offset, x_scale, y_offset, y_scale = _BODY_POSITION_NORMALISATION[_body_kind(body)]
        yield Feature(f"{body}_x", f"{body} origin x minus pelvis x", "m", x_offset, x_scale)
        yield Feature(f"{body}_y", f"{body} origin y minus pelvis y", "m", y_offset, y_scale)
    for body in RELATIVE_BODIES:
        velocity_scale, _ = _BODY_MOTION_NORMALISATION[_body_kind(body)]
        for axis in "xy":
            yield Feature(f"{body}_v{axis}", f"{body} {axis} velocity relative to the pelvis: finite "
                          "difference of the relative position over 10 ms (0 on the first step: "
                          "episodes start at rest)", "m/s", 0.0, velocity_scale, LOG1P)
    for body in RELATIVE_BODIES:
        _, acceleration_scale = _BODY_MOTION_NORMALISATION[_body_kind(body)]
        for axis in "xy":
            yield Feature(f"{body}_a{axis}", f"{body} {axis} acceleration relative to the pelvis: "
                          "finite difference of the relative velocity (0 on the first step)",
                          "m/s^2", 0.0, acceleration_scale, LOG1P)


_CONTACT_MEANING = {
    "toes": "toe contact sphere",
    "talus": "heel contact sphere (its centre is 2 cm behind the talus origin)",
}


def _build_table() -> tuple[Feature, ...]:
    rows = [
        Feature("pelvis_tilt", "pelvis pitch (raw; > 0 leans back)", "rad", 0.2, 0.4),
        Feature("pelvis_y", "pelvis height above the ground (the only absolute position; "
                "the episode ends below 0.65 m)", "m", 0.9, 0.08),
        Feature("pelvis_tilt_speed", "pelvis pitch speed (raw)", "rad/s", 0.0, 1.0, LOG1P),
        Feature("pelvis_vx", "pelvis forward speed (raw)", "m/s", 0.0, 0.5, LOG1P),
        Feature("pelvis_vy", "pelvis vertical speed (raw)", "m/s", 0.0, 0.3, LOG1P),
        Feature("pelvis_tilt_acc", "pelvis pitch acceleration: finite difference of its speed "
                "over 10 ms (0 on the first step)", "rad/s^2", 0.0, 10.0, LOG1P),
        Feature("pelvis_ax", "pelvis forward acceleration (finite difference, 0 on the first step)",
                "m/s^2", 0.0, 3.0, LOG1P),
        Feature("pelvis_ay", "pelvis vertical acceleration (finite difference, 0 on the first step)",
                "m/s^2", 0.0, 3.0, LOG1P),
        *_joint_features(),
        Feature("com_x", "centre of mass x minus pelvis x", "m", -0.12, 0.05),
        Feature("com_y", "centre of mass y minus pelvis y", "m", 0.0, 0.05),
        Feature("com_vx", "centre of mass x velocity minus pelvis x velocity (raw speeds)",
                "m/s", 0.0, 0.15, LOG1P),
        Feature("com_vy", "centre of mass y velocity minus pelvis y velocity (raw speeds)",
                "m/s", 0.0, 0.15, LOG1P),
        Feature("com_ax", "centre of mass x acceleration in ground (finite difference of its "
                "raw speed; = horizontal ground force / mass; 0 on the first step)",
                "m/s^2", 0.0, 1.0, LOG1P),
        Feature("com_ay", "centre of mass y acceleration in ground (= vertical ground force / "
                "mass - g: 0 standing, -9.81 in the air; 0 on the first step)",
                "m/s^2", 0.0, 2.0, LOG1P),
        *_body_features(),
        *(Feature(f"{point}_contact",
                  f"{_CONTACT_MEANING[_body_kind(point)]} of the {_leg(point)} foot touching the "
                  "ground or a known obstacle: smoothstep of the gap from 0 (>= 2 cm clear) to 1 "
                  "(>= 2 cm pressed in); 0.5 = just touching. The gap to an obstacle is 3-D: "
                  "the foot spheres sit 9.1-9.3 cm beside the obstacles' plane z = 0",
                  "1", 0.5, 0.5)
          for point in CONTACT_POINTS),
        Feature("psoas_l", "left psoas strength multiplier (raw; 1 below difficulty 2, "
                "1 - N(0, 0.1) at difficulty 2; constant within an episode)", "1", 1.0, 0.1),
        Feature("psoas_r", "right psoas strength multiplier (as psoas_l)", "1", 1.0, 0.1),
        Feature("obstacle_next_ahead", "1 while a sphere lies ahead (raw obstacle is not the "
                "(100, 0, 0) sentinel); 0: no more obstacles", "1", 0.5, 0.5),
        Feature("obstacle_next_dx", "next sphere's centre x minus pelvis x, clipped to "
                f"{OBSTACLE_HORIZON_AHEAD:g} m; {OBSTACLE_HORIZON_AHEAD:g} when none is ahead",
                "m", 2.0, 1.5),
        Feature("obstacle_next_top", "height of the next sphere's top above the ground "
                "(centre y + radius); 0 when none is ahead", "m", 0.07, 0.07),
        Feature("obstacle_next_radius", "next sphere's radius; 0 when none is ahead", "m", 0.07, 0.07),
        Feature("obstacle_prev_known", "1 while a passed sphere (its far edge behind the pelvis, "
                f"so no longer 'next') has its centre within {OBSTACLE_HORIZON_BEHIND:g} m behind "
                "the pelvis; 0 before the first is passed and once the last passed one is further "
                "back (no foot reaches it)", "1", 0.5, 0.5),
        Feature("obstacle_prev_dx", "previous sphere's centre x minus pelvis x, in "
                f"[-{OBSTACLE_HORIZON_BEHIND:g}, -radius) (its far edge is behind the pelvis); "
                f"-{OBSTACLE_HORIZON_BEHIND:g} when none", "m", -1.0, 1.0),
        Feature("obstacle_prev_top", "height of the previous sphere's top (0 when none)", "m", 0.07, 0.07),
        Feature("obstacle_prev_radius", "previous sphere's radius (0 when none)", "m", 0.07, 0.07),
    ]
    return tuple(rows)


#: The table: every feature in order.
FEATURES: tuple[Feature, ...] = _build_table()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_SIZE = len(FEATURES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

#: Normalisation vectors, shape (82,).
OFFSETS = np.array([f.offset for f in FEATURES], dtype=np.float64)
SCALES = np.array([f.scale for f in FEATURES], dtype=np.float64)
LOG1P_MASK = np.array([f.squash == LOG1P for f in FEATURES])
for _array in (OFFSETS, SCALES, LOG1P_MASK):
    _array.setflags(write=False)
del _array


def _span(first: str, last: str) -> slice:
    return slice(FEATURE_INDEX[first], FEATURE_INDEX[last] + 1)


# Index constants, next to the names (the processor fills features through them).
PELVIS_TILT = FEATURE_INDEX["pelvis_tilt"]
PELVIS_Y = FEATURE_INDEX["pelvis_y"]
PELVIS_SPEEDS = _span("pelvis_tilt_speed", "pelvis_vy")          # tilt, x, y
PELVIS_ACCELERATIONS = _span("pelvis_tilt_acc", "pelvis_ay")     # tilt, x, y
JOINT_ANGLES = _span("hip_r", "ankle_l")
JOINT_SPEEDS = _span("hip_r_speed", "ankle_l_speed")
JOINT_ACCELERATIONS = _span("hip_r_acc", "ankle_l_acc")
COM_POSITION = _span("com_x", "com_y")
COM_VELOCITY = _span("com_vx", "com_vy")
COM_ACCELERATION = _span("com_ax", "com_ay")
BODY_POSITIONS = _span("head_x", "talus_r_y")         # (x, y) per RELATIVE_BODIES
BODY_VELOCITIES = _span("head_vx", "talus_r_vy")
BODY_ACCELERATIONS = _span("head_ax", "talus_r_ay")
CONTACTS = _span("toes_l_contact", "talus_r_contact")  # per CONTACT_POINTS
PSOAS = _span("psoas_l", "psoas_r")
OBSTACLE_NEXT = _span("obstacle_next_ahead", "obstacle_next_radius")  # ahead, dx, top, radius
OBSTACLE_PREV = _span("obstacle_prev_known", "obstacle_prev_radius")  # known, dx, top, radius
KNEE_R = FEATURE_INDEX["knee_r"]
KNEE_L = FEATURE_INDEX["knee_l"]

assert FEATURE_SIZE == 82, FEATURE_SIZE
assert len(set(FEATURE_NAMES)) == FEATURE_SIZE
assert sum(s.stop - s.start for s in (
    slice(PELVIS_TILT, PELVIS_Y + 1), PELVIS_SPEEDS, PELVIS_ACCELERATIONS, JOINT_ANGLES, JOINT_SPEEDS,
    JOINT_ACCELERATIONS, COM_POSITION, COM_VELOCITY, COM_ACCELERATION, BODY_POSITIONS,
    BODY_VELOCITIES, BODY_ACCELERATIONS, CONTACTS, PSOAS, OBSTACLE_NEXT, OBSTACLE_PREV)) == FEATURE_SIZE


def normalise(physical: np.ndarray) -> np.ndarray:
    """Physical features (..., 82) -> network inputs (..., 82)."""
    z = (np.asarray(physical, dtype=np.float64) - OFFSETS) / SCALES
    return np.where(LOG1P_MASK, np.sign(z) * np.log1p(np.abs(z)), z)


def denormalise(features: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalise`: network inputs (..., 82) -> physical values."""
    f = np.asarray(features, dtype=np.float64)
    z = np.where(LOG1P_MASK, np.sign(f) * np.expm1(np.abs(f)), f)
    return OFFSETS + SCALES * z


def feature_table_markdown() -> str:
    """The table as Markdown (index, name, unit, normalisation, meaning)."""
    lines = ["| # | name | unit | transform | meaning |", "|---|---|---|---|---|"]
    for i, f in enumerate(FEATURES):
        centred = "x" if f.offset == 0 else f"(x {'-' if f.offset > 0 else '+'} {abs(f.offset):g})"
        transform = f"{centred} / {f.scale:g}"
        if f.squash == LOG1P:
            transform = f"signed log1p({transform})"
        lines.append(f"| {i} | `{f.name}` | {f.unit} | {transform} | {f.meaning} |")
    return "\n".join(lines)


def features_document() -> str:
    """docs/features.md: the table with a short preamble (``python -m observation``)."""
    return "\n".join([
        "# The 82 features",
        "",
        "Generated from `observation/table.py` by `python -m observation > docs/features.md`;",
        "edit the table there, not here (tests/test_observation.py checks the two agree).",
        "",
        "Every feature is `squash((physical - offset) / scale)`; positions are relative to",
        "the pelvis, velocities and accelerations are finite differences over the 10 ms step",
        "(0 on an episode's first step, which starts at rest) unless the simulator reports them.",
        "Statistics under a random policy: `docs/obs_stats_random.png` (`l2run obs-stats`).",
        "",
        feature_table_markdown(),
        "",
    ])
