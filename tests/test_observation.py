"""The 82 features on constructed raw observations (no OpenSim)."""
import numpy as np
import pytest

import observation as O
from l2run import constants as C
from observation import processor as P
from observation import table as T
from synthetic import ReplayEnv, set_obstacle, shifted, standing_observation, synthetic_episode

RAW = {name: i for i, name in enumerate(C.OBSERVATION_NAMES)}
COURSE = [[0.6, 0.01, 0.1], [1.6, -0.02, 0.25], [4.0, 0.0, 0.08]]


def features_of(episode, processor=None):
    processor = processor or O.FeatureProcessor()
    rows = [processor.reset(episode[0])] + [processor.step(raw) for raw in episode[1:]]
    return np.array(rows)


def physical_of(episode):
    processor = O.FeatureProcessor()
    processor.reset(episode[0])
    rows = [processor.physical]
    for raw in episode[1:]:
        processor.step(raw)
        rows.append(processor.physical)
    return np.array(rows)


# -- the table ------------------------------------------------------------------
def test_names_unique_and_82():
    assert O.FEATURE_SIZE == 82 == len(O.FEATURE_NAMES) == len(set(O.FEATURE_NAMES))
    assert O.OFFSETS.shape == O.SCALES.shape == (82,) and np.all(O.SCALES > 0)
    markdown = O.feature_table_markdown().splitlines()
    assert len(markdown) == 2 + 82 and all(f"`{name}`" in "\n".join(markdown) for name in O.FEATURE_NAMES)


def test_index_constants_partition_the_features():
    groups = [slice(T.PELVIS_TILT, T.PELVIS_Y + 1), T.PELVIS_SPEEDS, T.PELVIS_ACCELERATIONS, T.JOINT_ANGLES,
              T.JOINT_SPEEDS, T.JOINT_ACCELERATIONS, T.COM_POSITION, T.COM_VELOCITY, T.COM_ACCELERATION,
              T.BODY_POSITIONS, T.BODY_VELOCITIES, T.BODY_ACCELERATIONS, T.CONTACTS, T.PSOAS,
              T.OBSTACLE_NEXT, T.OBSTACLE_PREV]
    covered = np.concatenate([np.arange(82)[g] for g in groups])
    assert sorted(covered) == list(range(82))
    assert O.FEATURE_NAMES[T.KNEE_R] == "knee_r" and O.FEATURE_NAMES[T.OBSTACLE_NEXT][0] == "obstacle_next_ahead"


def test_normalise_round_trip_and_squash():
    physical = np.random.default_rng(0).normal(O.OFFSETS, 20 * O.SCALES, size=(50, 82))
    np.testing.assert_allclose(O.denormalise(O.normalise(physical)), physical, rtol=1e-9, atol=1e-9)
    spiky = O.FEATURE_INDEX["knee_r_acc"]
    huge = O.OFFSETS.copy()
    huge[spiky] += 1e4 * O.SCALES[spiky]
    assert O.normalise(huge)[spiky] == pytest.approx(np.log1p(1e4))  # compressed, not 1e4


def test_left_right_partners_share_normalisation():
    for i, j in enumerate(O.FEATURE_MIRROR):
        a, b = O.FEATURES[i], O.FEATURES[j]
        assert (a.offset, a.scale, a.squash, a.unit) == (b.offset, b.scale, b.squash, b.unit), (a.name, b.name)


# -- the processor ----------------------------------------------------------------
def test_features_finite_and_near_unit_scale_on_a_stride():
    features = features_of(synthetic_episode(300, obstacles=COURSE, psoas=(0.9, 1.1)))
    assert features.shape == (300, 82) and np.all(np.isfinite(features))
    assert np.abs(features).max() < 10


@pytest.mark.parametrize("dx", [7.3, -2.5, 123.4])
def test_translating_the_course_changes_no_feature(dx):
    episode = synthetic_episode(250, obstacles=COURSE, seed=1)
    moved = shifted(episode, dx)
    assert moved[5, C.PELVIS_X] == pytest.approx(episode[5, C.PELVIS_X] + dx)
    np.testing.assert_array_equal(moved[:, C.OBSTACLE], episode[:, C.OBSTACLE])
    np.testing.assert_allclose(features_of(moved), features_of(episode), rtol=0, atol=1e-6)


def test_first_step_uses_no_previous_episode():
    first, second = synthetic_episode(120, obstacles=COURSE, seed=2), synthetic_episode(80, seed=3, speed=2.5)
    reused = O.FeatureProcessor()
    features_of(first, reused)
    np.testing.assert_array_equal(features_of(second, reused), features_of(second))
    # and what the first step holds: raw speeds, zero finite differences
    processor = O.FeatureProcessor()
    raw = standing_observation()
    raw[[C.PELVIS_TILT_SPEED, C.PELVIS_VX, C.PELVIS_VY]] = (0.5, 1.2, -0.3)
    processor.reset(raw)
    physical = processor.physical
    np.testing.assert_array_equal(physical[T.PELVIS_SPEEDS], [0.5, 1.2, -0.3])
    for group in (T.PELVIS_ACCELERATIONS, T.JOINT_ACCELERATIONS, T.COM_ACCELERATION, T.BODY_VELOCITIES,
                  T.BODY_ACCELERATIONS):
        assert np.all(physical[group] == 0)


def test_finite_differences_match_the_motion():
    episode = synthetic_episode(200, speed=2.0, seed=4)
    physical = physical_of(episode)
    dt = C.STEP_SECONDS
    head = O.FEATURE_INDEX["head_vx"]
    expected = np.diff(episode[:, RAW["head_x"]] - episode[:, C.PELVIS_X]) / dt
    np.testing.assert_allclose(physical[1:, head], expected, atol=1e-9)
    knee_acc = O.FEATURE_INDEX["knee_l_acc"]
    np.testing.assert_allclose(physical[1:, knee_acc], np.diff(episode[:, RAW["knee_l_speed"]]) / dt, atol=1e-9)
    pelvis_ax = O.FEATURE_INDEX["pelvis_ax"]
    np.testing.assert_allclose(physical[1:, pelvis_ax], np.diff(episode[:, C.PELVIS_VX]) / dt, atol=1e-9)


def test_processors_do_not_share_state():
    a, b = synthetic_episode(100, obstacles=COURSE, seed=5), synthetic_episode(100, seed=6)
    alone_a, alone_b = features_of(a), features_of(b)
    pa, pb = O.FeatureProcessor(), O.FeatureProcessor()
    mixed_a, mixed_b = [pa.reset(a[0])], [pb.reset(b[0])]
    for ra, rb in zip(a[1:], b[1:]):
        mixed_a.append(pa.step(ra))
        mixed_b.append(pb.step(rb))
    np.testing.assert_array_equal(mixed_a, alone_a)
    np.testing.assert_array_equal(mixed_b, alone_b)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        O.FeatureProcessor().reset(np.zeros(40))


# -- obstacle queue -------------------------------------------------------------------
def obstacle_features(processor):
    physical = processor.physical
    return physical[T.OBSTACLE_NEXT], physical[T.OBSTACLE_PREV]


def test_obstacle_queue_passes_next_to_previous():
    course = [[1.0, 0.02, 0.1], [2.0, -0.03, 0.2]]
    processor = O.FeatureProcessor()
    processor.reset(standing_observation(0.0, obstacles=course))
    nxt, prev = obstacle_features(processor)
    np.testing.assert_allclose(nxt, [1, 1.0, 0.12, 0.1])
    np.testing.assert_allclose(prev, [0, -T.OBSTACLE_HORIZON_BEHIND, 0, 0])

    for x in np.arange(0.01, 1.1, 0.01):  # walk up to the sphere's far edge (1.1)
        processor.step(standing_observation(x, obstacles=course))
    nxt, prev = obstacle_features(processor)
    assert nxt[0] == 1 and nxt[1] == pytest.approx(1.0 - 1.09) and prev[0] == 0

    processor.step(standing_observation(1.12, obstacles=course))  # passed it
    nxt, prev = obstacle_features(processor)
    np.testing.assert_allclose(nxt, [1, 2.0 - 1.12, 0.17, 0.2])
    np.testing.assert_allclose(prev, [1, 1.0 - 1.12, 0.12, 0.1])

    processor.step(standing_observation(2.3, obstacles=course))  # past both: no more obstacles
    nxt, prev = obstacle_features(processor)
    np.testing.assert_allclose(nxt, [0, T.OBSTACLE_HORIZON_AHEAD, 0, 0])
    np.testing.assert_allclose(prev, [1, 2.0 - 2.3, 0.17, 0.2])
    assert O.normalise(processor.physical)[O.FEATURE_INDEX["obstacle_next_ahead"]] == -1

    processor.step(standing_observation(3.9, obstacles=course))  # 1.9 m behind: still within reach
    np.testing.assert_allclose(obstacle_features(processor)[1], [1, 2.0 - 3.9, 0.17, 0.2])
    processor.step(standing_observation(4.05, obstacles=course))  # beyond the horizon: reads as none
    np.testing.assert_allclose(obstacle_features(processor)[1], [0, -T.OBSTACLE_HORIZON_BEHIND, 0, 0])

    processor.step(standing_observation(1.05, obstacles=course))  # fell back behind the first's far edge
    nxt, prev = obstacle_features(processor)
    np.testing.assert_allclose(nxt, [1, 1.0 - 1.05, 0.12, 0.1])
    np.testing.assert_allclose(prev, [0, -T.OBSTACLE_HORIZON_BEHIND, 0, 0])
    assert len(processor.obstacles.known) == 2


def test_next_obstacle_distance_clipped_to_horizon():
    processor = O.FeatureProcessor()
    processor.reset(standing_observation(0.0, obstacles=[[8.0, 0.0, 0.1]]))
    nxt, _ = obstacle_features(processor)
    np.testing.assert_allclose(nxt, [1, T.OBSTACLE_HORIZON_AHEAD, 0.1, 0.1])


def test_flat_course_reads_no_obstacles():
    processor = O.FeatureProcessor()
    processor.reset(standing_observation(0.0))
    nxt, prev = obstacle_features(processor)
    assert nxt[0] == 0 and prev[0] == 0 and nxt[3] == 0 and prev[3] == 0


# -- contacts --------------------------------------------------------------------------
def contacts(raw, course=()):
    processor = O.FeatureProcessor()
    processor.reset(raw)
    return dict(zip(T.CONTACT_POINTS, processor.physical[T.CONTACTS]))


def lift_foot(raw, side, dy):
    raw = raw.copy()
    for body in (f"toes_{side}", f"talus_{side}"):
        raw[RAW[f"{body}_y"]] += dy
    return raw


def test_contact_on_ground_and_in_the_air():
    standing = standing_observation()
    assert all(value > 0.9 for value in contacts(standing).values())  # default pose presses 3-4 cm in
    lifted = contacts(lift_foot(standing, "l", 0.15))
    assert lifted["toes_l"] == 0 and lifted["talus_l"] == 0
    assert lifted["toes_r"] > 0.9 and lifted["talus_r"] > 0.9


def test_contact_smoothstep_band():
    assert P.contact_indicator(np.array([0.05, P.CONTACT_BAND, 0.0, -P.CONTACT_BAND, -0.1])).tolist() == [
        0.0, 0.0, 0.5, 1.0, 1.0]


def sphere_below(raw, point, radius, planar_distance):
    """An obstacle of ``radius`` centred ``planar_distance`` below the foot
    sphere ``point`` in the x-y plane (and, as all obstacles, at z = 0)."""
    x, y, _ = P.foot_sphere_centres(raw)[T.CONTACT_POINTS.index(point)]
    return [x, y - planar_distance, radius]


def test_contact_on_a_sphere_counts():
    """A foot resting on top of a sphere is in contact although it is high above the ground."""
    raw = lift_foot(standing_observation(), "r", 0.2)
    radius = 0.12
    reach = radius + P.FOOT_SPHERE_RADIUS
    set_obstacle(raw, [sphere_below(raw, "toes_r", radius, np.sqrt(reach**2 - P.TOE_SPHERE_Z**2))])
    assert contacts(raw)["toes_r"] == pytest.approx(0.5)  # just touching, in 3-D
    assert contacts(lift_foot(standing_observation(), "r", 0.2))["toes_r"] == 0  # no sphere: in the air


@pytest.mark.parametrize("radius, planar_distance, gap", [
    (0.12, 0.17, np.hypot(0.17, 0.0925) - 0.17),  # touching in the x-y plane, 2.4 cm apart in 3-D
    (0.03, 0.0, 0.0925 - 0.08),                    # radius + 0.05 <= |z|: never touches
    (0.10, 0.10, np.hypot(0.10, 0.0925) - 0.15),   # pressed 1.4 cm in
])
def test_contact_with_a_sphere_is_measured_in_3d(radius, planar_distance, gap):
    """The foot spheres sit at z = +-0.0925 (toes) beside the obstacles' plane z = 0."""
    raw = lift_foot(standing_observation(), "r", 0.3)
    obstacle = sphere_below(raw, "toes_r", radius, planar_distance)
    clearance = P.surface_clearance(P.foot_sphere_centres(raw), np.array([obstacle]))
    assert clearance[T.CONTACT_POINTS.index("toes_r")] == pytest.approx(gap, abs=1e-12)
    set_obstacle(raw, [obstacle])
    assert contacts(raw)["toes_r"] == pytest.approx(P.contact_indicator(gap))


def test_foot_sphere_centres_sit_beside_the_obstacle_plane():
    centres = dict(zip(T.CONTACT_POINTS, P.foot_sphere_centres(standing_observation())))
    assert centres["toes_r"][2] == P.TOE_SPHERE_Z == -centres["toes_l"][2]
    assert centres["talus_r"][2] == P.HEEL_SPHERE_Z == -centres["talus_l"][2]


def test_foot_sphere_centres_follow_the_foot_pitch():
    """The foot is rigid: rotating toes about the talus moves the toe sphere with it."""
    raw = standing_observation()
    before = P.foot_sphere_centres(raw)
    talus = raw[[RAW["talus_r_x"], RAW["talus_r_y"]]]
    toes = raw[[RAW["toes_r_x"], RAW["toes_r_y"]]]
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    raw[[RAW["toes_r_x"], RAW["toes_r_y"]]] = talus + rotation @ (toes - talus)
    after = P.foot_sphere_centres(raw)
    i = T.CONTACT_POINTS.index("toes_r")
    np.testing.assert_allclose(after[i, :2], talus + rotation @ (before[i, :2] - talus), atol=1e-12)
    j = T.CONTACT_POINTS.index("talus_r")
    np.testing.assert_allclose(after[j, :2], talus + rotation @ (before[j, :2] - talus), atol=1e-12)
    np.testing.assert_array_equal(after[:, 2], before[:, 2])  # pitch never moves a sphere sideways


# -- mirroring ---------------------------------------------------------------------------
def test_mirror_permutations():
    names = np.array(O.FEATURE_NAMES)
    assert names[O.FEATURE_MIRROR][O.FEATURE_INDEX["hip_r_speed"]] == "hip_l_speed"
    assert names[O.FEATURE_MIRROR][O.FEATURE_INDEX["toes_l_contact"]] == "toes_r_contact"
    assert names[O.FEATURE_MIRROR][O.FEATURE_INDEX["obstacle_next_radius"]] == "obstacle_next_radius"
    assert names[O.FEATURE_MIRROR][O.FEATURE_INDEX["psoas_l"]] == "psoas_r"
    moved = np.flatnonzero(O.FEATURE_MIRROR != np.arange(82))
    # 18 joint features, 4 feet x 6 position/velocity/acceleration features, 4 contacts, 2 psoas
    assert all(("_l" in names[i]) or ("_r" in names[i]) for i in moved) and len(moved) == 18 + 24 + 4 + 2
    np.testing.assert_array_equal(O.ACTION_MIRROR, np.r_[9:18, 0:9])
    assert np.array(C.MUSCLE_NAMES)[O.ACTION_MIRROR][0] == "hamstrings_l"


def test_mirroring_twice_is_identity():
    rng = np.random.default_rng(0)
    features, raw, action = rng.normal(size=(7, 82)), rng.normal(size=(7, 41)), rng.random((7, 18))
    np.testing.assert_array_equal(O.mirror_features(O.mirror_features(features)), features)
    np.testing.assert_array_equal(O.mirror_observation(O.mirror_observation(raw)), raw)
    np.testing.assert_array_equal(O.mirror_action(O.mirror_action(action)), action)
    assert not np.array_equal(O.mirror_features(features), features)


def test_mirrored_raw_stream_gives_mirrored_features():
    episode = synthetic_episode(200, obstacles=COURSE, psoas=(0.8, 1.15), seed=7)
    features = features_of(episode)
    mirrored = features_of(O.mirror_observation(episode))
    assert not np.allclose(mirrored, features)
    np.testing.assert_allclose(mirrored, O.mirror_features(features), rtol=0, atol=1e-12)


# -- the wrapper (on a replayed stream; tests/test_observation_env.py runs it on OpenSim) --
def test_wrapper_passes_reward_and_info_and_holds_features_on_simulator_failure():
    episode = synthetic_episode(30, obstacles=COURSE, seed=8)
    env = O.L2RunFeatures(ReplayEnv(episode, fail_at=20))
    assert env.observation_space.shape == (82,) and env.observation_space.dtype == np.float32
    features, _ = env.reset(seed=0)
    expected = features_of(episode).astype(np.float32)
    np.testing.assert_array_equal(features, expected[0])
    for t in range(1, 20):
        features, reward, terminated, truncated, info = env.step(np.zeros(18))
        np.testing.assert_array_equal(features, expected[t])
        assert reward == info["distance"] == pytest.approx(episode[t, C.PELVIS_X] - episode[t - 1, C.PELVIS_X])
    features, reward, terminated, truncated, info = env.step(np.zeros(18))
    assert truncated and "sim_error" in info
    np.testing.assert_array_equal(features, expected[19])  # not a sudden stop read into accelerations


def test_docs_table_is_up_to_date():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    assert docs.read_text() == T.features_document(), "regenerate: python -m observation > docs/features.md"
