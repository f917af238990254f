"""The 82 features on the real OpenSim simulator (no mocks)."""
import numpy as np
import opensim
import pytest

import l2run
import observation as O
from observation import processor as P
from observation import table as T

SPHERE_BEHIND_START = [0.0, -0.045, 0.05]  # far edge at 0.05 m: the pelvis passes it within ~1 s
SPHERE_AHEAD = [3.0, 0.0, 0.1]


@pytest.fixture(scope="module")
def raw_env():
    return l2run.L2RunEnv(difficulty=2, max_obstacles=10, integrator_accuracy=3e-2)


@pytest.fixture(scope="module")
def env(raw_env):
    return O.L2RunFeatures(raw_env)


def run(env, policy, steps, **reset_kwargs):
    obs, info = env.reset(**reset_kwargs)
    observations = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        observations.append(obs)
        if terminated or truncated:
            break
    return np.array(observations), info


def test_features_finite_on_random_rollouts(env):
    assert env.observation_space.shape == (82,) and env.observation_space.dtype == np.float32
    rng = np.random.default_rng(0)
    rows, episodes = [], 0
    while len(rows) < 250:
        features, info = run(env, lambda obs: rng.random(18), 250 - len(rows), seed=episodes)
        rows.extend(features)
        episodes += 1
    rows = np.array(rows)
    assert rows.dtype == np.float32 and rows.shape[1] == 82
    assert np.all(np.isfinite(rows))
    assert all(env.observation_space.contains(row) for row in rows)
    assert np.abs(rows).max() < 20  # normalised: no raw-scale value slipped through


def test_reset_after_an_episode_equals_a_fresh_start(env, raw_env):
    actions = np.random.default_rng(1).random((40, 18))
    first, _ = run(env, lambda obs, it=iter(actions): next(it), 39, seed=21)
    run(env, lambda obs: np.random.default_rng(2).random(18), 300, seed=22)  # a whole other episode
    again, _ = run(env, lambda obs, it=iter(actions): next(it), 39, seed=21)
    np.testing.assert_array_equal(again, first)
    # the processor alone on the real raw stream: reused after an episode == fresh
    reused, fresh = O.FeatureProcessor(), O.FeatureProcessor()
    raw, _ = raw_env.reset(seed=23)
    reused.reset(raw)
    for action in actions[:30]:
        raw, *_ = raw_env.step(action)
        reused.step(raw)
    raw, _ = raw_env.reset(seed=21)
    np.testing.assert_array_equal(reused.reset(raw), fresh.reset(raw))
    for action in actions:
        raw, *_ = raw_env.step(action)
        np.testing.assert_array_equal(reused.step(raw), fresh.step(raw))


def test_standing_start_has_both_feet_on_the_ground(env):
    features, _ = run(env, lambda obs: np.zeros(18), 0, seed=0)
    contacts = O.denormalise(features[0])[T.CONTACTS]
    assert np.all(contacts > 0.9), contacts


def test_obstacle_queue_on_the_simulator(env):
    """Falling forward (no excitation) the pelvis passes a sphere: it becomes the previous one."""
    course = {"obstacles": [SPHERE_BEHIND_START, SPHERE_AHEAD], "psoas": (1.0, 1.0)}
    obs, info = env.reset(options=course)
    physical = O.denormalise(obs)
    np.testing.assert_allclose(physical[T.OBSTACLE_NEXT], [1, 0.0, 0.005, 0.05], atol=1e-6)
    assert physical[T.OBSTACLE_PREV][0] == 0
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(np.zeros(18))
        passed = info["pelvis_x"] > SPHERE_BEHIND_START[0] + SPHERE_BEHIND_START[2] + 0.01
        if passed or terminated or truncated:
            break
    assert info["pelvis_x"] > 0.06, "the skeleton did not fall forward past the first sphere"
    physical = O.denormalise(obs.astype(np.float64))
    pelvis_x = info["pelvis_x"]
    np.testing.assert_allclose(physical[T.OBSTACLE_PREV], [1, 0.0 - pelvis_x, 0.005, 0.05], atol=1e-5)
    np.testing.assert_allclose(physical[T.OBSTACLE_NEXT], [1, 3.0 - pelvis_x, 0.1, 0.1], atol=1e-5)


def lifted_observation(sim, height):
    """Raise the whole skeleton ``height`` m (pelvis_ty) in the simulator's
    current state and observe it: at rest both feet press into the ground,
    which would hide whether they touch an obstacle."""
    pelvis_ty = sim.model.getCoordinateSet().get("pelvis_ty")
    pelvis_ty.setValue(sim.state, pelvis_ty.getValue(sim.state) + height)
    return sim.observe()


LIFT = 0.3
TOE_R = T.CONTACT_POINTS.index("toes_r")
TOE_L = T.CONTACT_POINTS.index("toes_l")


@pytest.mark.parametrize("radius, planar_distance, touching", [
    (0.10, 0.135, False),  # in-plane distance between sqrt(0.15^2 - 0.0925^2) = 0.118 and 0.15
    (0.03, 0.0, False),    # radius + 0.05 <= 0.0925: overlaps the toe in x-y, never touches it
    (0.10, 0.09, True),    # 1.4 cm deep in 3-D
])
def test_obstacle_contact_feature_agrees_with_the_simulator(raw_env, radius, planar_distance, touching):
    """An obstacle straight below both toe spheres (same x-y in the default
    pose, at z = +-0.0925 while obstacles sit at z = 0), with the skeleton
    lifted clear of the ground: the contact feature says touching exactly
    when the simulator's contact force is non-zero."""
    raw_env.reset(options={"obstacles": []})
    toe_x, toe_y, _ = P.foot_sphere_centres(lifted_observation(raw_env.sim, LIFT))[TOE_R]
    obstacle = [toe_x, toe_y - planar_distance, radius]
    raw_env.reset(options={"obstacles": [obstacle]})
    raw = lifted_observation(raw_env.sim, LIFT)
    force = raw_env.sim.obstacle_contact_force()
    processor = O.FeatureProcessor()
    processor.reset(raw)
    contacts = processor.physical[T.CONTACTS]
    assert contacts[TOE_R] == pytest.approx(contacts[TOE_L])
    assert np.all(contacts[[T.CONTACT_POINTS.index("talus_l"), T.CONTACT_POINTS.index("talus_r")]] == 0)
    if touching:
        assert force > 0 and contacts[TOE_R] > 0.5, (force, contacts)
    else:
        assert planar_distance < radius + P.FOOT_SPHERE_RADIUS  # a 2-D test would call it touching
        assert force == 0 and contacts[TOE_R] < 0.5, (force, contacts)


def test_foot_geometry_matches_the_model():
    """HEEL/TOE_SPHERE_IN_FOOT and HEEL/TOE_SPHERE_Z were measured from
    gait9dof18musc.osim; check them."""
    model = opensim.Model(str(l2run.default_model_path()))
    state = model.initSystem()

    def xy(vec):
        return np.array([vec[0], vec[1]])

    sign = {"l": -1.0, "r": 1.0}

    for side in "lr":
        talus = xy(model.getBodySet().get(f"talus_{side}").getTransformInGround(state).p())
        toes = xy(model.getBodySet().get(f"toes_{side}").getTransformInGround(state).p())
        along = (toes - talus) / np.linalg.norm(toes - talus)
        normal = np.array([-along[1], along[0]])
        for sphere, origin, expected, z in ((f"{side}_heel", talus, P.HEEL_SPHERE_IN_FOOT, P.HEEL_SPHERE_Z),
                                            (f"{side}_toe", toes, P.TOE_SPHERE_IN_FOOT, P.TOE_SPHERE_Z)):
            geometry = model.getContactGeometrySet().get(sphere)
            location = geometry.getFrame().findStationLocationInGround(state, geometry.get_location())
            offset = xy(location) - origin
            np.testing.assert_allclose([offset @ along, offset @ normal], expected, atol=1e-6)
            assert location[2] == pytest.approx(sign[side] * z, abs=1e-9)
            assert opensim.ContactSphere.safeDownCast(geometry).getRadius() == P.FOOT_SPHERE_RADIUS
