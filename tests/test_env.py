"""L2RunEnv on the real OpenSim 4.6 simulator (no mocks)."""
import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import l2run
from l2run import constants as C
from l2run.course import FIRST_OBSTACLES, generate_course
from l2run.simulator import GRADER_INTEGRATOR, INTEGRATORS


@pytest.fixture(scope="module")
def env():
    """One env shared by the module: construction costs ~0.1 s, each test resets."""
    return l2run.L2RunEnv(difficulty=2, max_obstacles=10, integrator_accuracy=3e-2)


def rollout(env, actions, **reset_kwargs):
    obs, info = env.reset(**reset_kwargs)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), terminated, truncated, info


def test_interface_constants():
    assert len(l2run.OBSERVATION_NAMES) == 41 == len(set(l2run.OBSERVATION_NAMES))
    assert len(l2run.MUSCLE_NAMES) == 18
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0)
    muscles = env.sim.model.getMuscles()
    assert tuple(muscles.get(i).getName() for i in range(18)) == l2run.MUSCLE_NAMES


def test_initial_observation_is_default_pose(env):
    obs, info = env.reset(seed=3)
    assert obs.shape == (41,) and obs.dtype == np.float64
    assert obs[C.PELVIS_X] == 0.0 and obs[C.PELVIS_Y] == pytest.approx(0.91)
    assert np.all(obs[C.JOINT_ANGLES] == 0) and np.all(obs[C.JOINT_SPEEDS] == 0)
    assert obs[C.HEAD_X + 1] > 1.4  # head above 1.4 m
    assert info["step"] == 0 and info["distance"] == 0.0
    assert info["ligament_forces"].shape == (6,)


def test_same_seed_same_course_and_trajectory(env):
    actions = np.random.default_rng(0).random((60, 18))
    first = rollout(env, actions, seed=11)
    second = rollout(env, actions, seed=12)  # something else in between
    third = rollout(env, actions, seed=11)
    np.testing.assert_array_equal(first[0], third[0])
    np.testing.assert_array_equal(first[1], third[1])
    assert not np.array_equal(first[0][0][C.OBSTACLE], second[0][0][C.OBSTACLE])


def test_course_layout_per_difficulty():
    rng = np.random.default_rng(0)
    for _ in range(200):
        flat = generate_course(0, 10, rng)
        assert flat.obstacles.shape == (0, 3) and flat.psoas == (1.0, 1.0)
        round1 = generate_course(1, 3, rng)
        x, y, r = round1.obstacles.T
        assert len(x) == 3 and np.all((1 <= x) & (x <= 5)) and np.all(np.diff(x) >= 0)
        assert np.all(r >= 0.05) and np.all(np.abs(y) <= 0.25 * r)
        assert round1.psoas == (1.0, 1.0)
        round2 = generate_course(2, 10, rng)
        x, y, r = round2.obstacles.T
        assert len(x) == 10 and np.all(x[:FIRST_OBSTACLES] <= 5)
        gaps = np.diff(np.concatenate([[5.0], x[FIRST_OBSTACLES:]]))
        assert np.all((2 <= gaps) & (gaps <= 4))
        assert np.all(np.abs(y[:FIRST_OBSTACLES]) <= 0.25 * r[:FIRST_OBSTACLES])
        extra_y, extra_r = y[FIRST_OBSTACLES:], r[FIRST_OBSTACLES:]
        assert np.all((-0.05 * extra_r <= extra_y) & (extra_y <= 0.25 * extra_r))
        assert all(0.5 <= p for p in round2.psoas)
    strengths = np.array([generate_course(2, 3, rng).psoas for _ in range(2000)])
    assert abs(strengths.mean() - 1.0) < 0.01 and 0.08 < strengths.std() < 0.12


def test_reset_places_course_in_observation_and_info(env):
    obs, info = env.reset(seed=5)
    course = info["obstacles"]
    assert course.shape == (10, 3)
    first = course[0]
    assert obs[C.OBSTACLE].tolist() == pytest.approx([first[0] - obs[C.PELVIS_X], first[1], first[2]])
    assert obs[C.PSOAS].tolist() == pytest.approx(list(info["psoas"]))
    flat = l2run.L2RunEnv(difficulty=0, max_obstacles=3)
    obs, info = flat.reset(seed=5)
    assert obs[C.OBSTACLE].tolist() == list(C.NO_OBSTACLE)
    assert info["obstacles"].shape == (0, 3)


def test_weaker_psoas_is_weaker(env):
    """The psoas strength really scales the muscle: same excitation, less force."""
    actions = np.zeros((10, 18))
    actions[:, [C.PSOAS_R_MUSCLE, C.PSOAS_L_MUSCLE]] = 1.0
    forces = {}
    for strength in (1.0, 0.5):
        rollout(env, actions, options={"psoas": (strength, strength)})
        model, state = env.sim.model, env.sim.state
        model.realizeDynamics(state)
        psoas = [model.getMuscles().get(i) for i in (C.PSOAS_L_MUSCLE, C.PSOAS_R_MUSCLE)]
        forces[strength] = np.array([m.getTendonForce(state) for m in psoas])
    assert np.all(forces[0.5] < 0.85 * forces[1.0])


def test_sphere_under_a_foot_pushes_it(env):
    """A sphere placed under the right toes exerts a contact force and lifts them."""
    obs, _ = env.reset(options={})
    toes_x = obs[C.OBSERVATION_NAMES.index("toes_r_x")]
    actions = np.zeros((20, 18))
    plain = rollout(env, actions, options={"obstacles": np.zeros((0, 3))})[0]
    obs, _ = env.reset(options={"obstacles": [[toes_x + 0.03, 0.0, 0.1]]})
    assert env.sim.obstacle_contact_force() > 100.0  # newtons
    pushed = rollout(env, actions, options={"obstacles": [[toes_x + 0.03, 0.0, 0.1]]})[0]
    toes_y = C.OBSERVATION_NAMES.index("toes_r_y")
    assert pushed[-1, toes_y] > plain[-1, toes_y] + 0.02


def test_falling_terminates(env):
    actions = np.random.default_rng(1).random((1000, 18))
    observations, rewards, terminated, truncated, info = rollout(env, actions, seed=1)
    assert terminated and not truncated
    assert observations[-1][C.PELVIS_Y] < C.PELVIS_FALL_HEIGHT
    assert np.all(observations[:-1, C.PELVIS_Y] >= C.PELVIS_FALL_HEIGHT)
    # The reward is the pelvis's forward motion, so it sums to the 2017 score.
    assert rewards.sum() == pytest.approx(observations[-1][C.PELVIS_X] - observations[0][C.PELVIS_X])
    assert info["distance"] == rewards[-1]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(18))


def test_step_limit_truncates():
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0, max_steps=5)
    _, _, terminated, truncated, info = rollout(env, np.zeros((10, 18)))
    assert truncated and not terminated and info["step"] == 5


def test_step_before_reset_is_an_error():
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(18))


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(17), r"shape \(18,\).*\(17,\)"),
        (np.zeros((2, 18)), r"shape \(18,\).*\(2, 18\)"),
        (np.r_[np.nan, np.zeros(17)], r"non-finite.*\[0\]"),
        (np.r_[np.zeros(17), np.inf], r"non-finite.*\[17\]"),
        ("walk", r"18 numbers"),
    ],
)
def test_bad_actions_are_rejected(env, action, message):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_out_of_range_actions_are_clipped(env):
    raw = np.random.default_rng(2).normal(0.5, 1.0, (20, 18))
    clipped = rollout(env, np.clip(raw, 0, 1), seed=2)[0]
    unclipped = rollout(env, raw, seed=2)[0]
    np.testing.assert_array_equal(clipped, unclipped)


def test_integrator_failure_truncates_and_env_recovers():
    env = l2run.L2RunEnv(difficulty=0, max_obstacles=0)
    # A forced minimum step far above what the dynamics allow makes the
    # integrator diverge within a few steps: a real failure, not a stand-in.
    env.sim.set_integrator_step_bounds(minimum=0.009)
    _, _, terminated, truncated, info = rollout(env, np.ones((50, 18)))
    assert truncated and not terminated
    assert "sim_error" in info and "non-finite" in info["sim_error"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(18))
    env.sim.set_integrator_step_bounds()
    observations, _, terminated, truncated, info = rollout(env, np.zeros((20, 18)))
    assert len(observations) == 21 and "sim_error" not in info and np.all(np.isfinite(observations))


def test_model_path_errors(tmp_path):
    missing = tmp_path / "nowhere.osim"
    with pytest.raises(FileNotFoundError, match="nowhere.osim"):
        l2run.L2RunEnv(model_path=str(missing))
    garbage = tmp_path / "garbage.osim"
    garbage.write_text("this is not an OpenSim model")
    with pytest.raises(ValueError, match="garbage.osim"):
        l2run.L2RunEnv(model_path=str(garbage))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"difficulty": 3}, "difficulty"),
        ({"max_obstacles": -1}, "max_obstacles"),
        ({"integrator_accuracy": 0.0}, "integrator_accuracy"),
        ({"max_steps": 0}, "max_steps"),
        ({"opensim_log_level": "loud"}, "log level"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        l2run.L2RunEnv(**kwargs)


def test_bad_reset_options(env):
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"obstacle": []})
    with pytest.raises(ValueError, match="max_obstacles is 10"):
        env.reset(options={"obstacles": np.ones((11, 3))})
    with pytest.raises(ValueError, match="radii must be positive"):
        env.reset(options={"obstacles": [[1.0, 0.0, -0.1]]})


def test_gymnasium_registration_and_checker():
    env = gymnasium.make("L2Run-v0", difficulty=1, max_obstacles=3, integrator_accuracy=3e-2)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_failed_step_is_retried_at_a_tighter_accuracy():
    """At 3e-2 the integrator fails while a passive skeleton collapses (seed 0,
    zero excitation, step ~131); the retry at accuracy / 10 lets the episode end
    as the fall it is, which is what a learner must see."""
    zeros = np.zeros((400, 18))
    plain = l2run.L2RunEnv(difficulty=2, max_obstacles=10, integrator_accuracy=3e-2, retry_accuracy=None)
    *_, terminated, truncated, info = rollout(plain, zeros, seed=0)
    assert truncated and "sim_error" in info
    retrying = l2run.L2RunEnv(difficulty=2, max_obstacles=10, integrator_accuracy=3e-2)
    observations, _, terminated, truncated, info = rollout(retrying, zeros, seed=0)
    assert terminated and "sim_error" not in info and retrying.sim.retries >= 1
    assert observations[-1][C.PELVIS_Y] < C.PELVIS_FALL_HEIGHT
    with pytest.raises(ValueError, match="retry_accuracy"):
        l2run.L2RunEnv(retry_accuracy=2.0)


def test_semi_explicit_euler_stays_near_the_graders_trajectory():
    """The fast training integrator follows the grader's Runge-Kutta-Merson at
    1e-3 to within centimetres on the same actions (l2run bench integrators)."""
    actions = np.repeat(np.random.default_rng(3).random((30, 18)), 5, axis=0)
    grader = rollout(l2run.L2RunEnv(integrator_accuracy=1e-3), actions, seed=3)[0]
    fast_env = l2run.L2RunEnv(integrator_accuracy=3e-2, integrator="semi_explicit_euler2")
    fast = rollout(fast_env, actions, seed=3)[0]
    n = min(len(grader), len(fast))
    assert n > 50
    pelvis = [C.PELVIS_X, C.PELVIS_Y]
    assert np.abs(fast[:n, pelvis] - grader[:n, pelvis]).max() < 0.02
    with pytest.raises(ValueError, match="integrator must be one of"):
        l2run.L2RunEnv(integrator="leapfrog")


def test_a_larger_friction_transition_velocity_softens_the_stance_foot(tmp_path):
    """Below the transition velocity the feet's friction is a viscous damper of
    mu N / v_t on the loaded foot: the stiff mode that sets the explicit
    integrator's step. Standing on both feet (constant excitations, the grader's
    course), 0.4 m/s takes fewer internal steps than the model's 0.1 and lets
    the feet creep further; None restores the model's own value."""
    actions = np.full((40, 18), 0.3)
    work, creep = {}, {}
    for velocity in (None, 0.4):
        env = l2run.L2RunEnv(difficulty=0, max_obstacles=0, integrator_accuracy=3e-2,
                             integrator="semi_explicit_euler2", friction_transition_velocity=velocity)
        assert [f.getTransitionVelocity() for f in env.sim._foot_contacts] == [velocity or 0.1] * 2
        env.reset(seed=0)
        before = env.sim.integrator_counts()
        observations = rollout(env, actions, seed=0)[0]
        work[velocity] = (env.sim.integrator_counts() - before).taken
        toes = [C.OBSERVATION_NAMES.index(f"{body}_x") for body in ("toes_l", "toes_r")]
        creep[velocity] = np.abs(observations[-1, toes] - observations[0, toes]).max()
    assert work[0.4] < work[None], work
    assert creep[0.4] > creep[None], creep
    env.sim.set_friction_transition_velocity(None)
    assert env.sim._foot_contacts[0].getTransitionVelocity() == env.sim.model_transition_velocity[0] == 0.1
    renamed = tmp_path / "renamed_feet.osim"  # a model whose foot contacts go by other names
    renamed.write_text(env.model_path.read_text().replace('name="foot_r"', 'name="right_foot"'))
    assert l2run.L2RunEnv(model_path=str(renamed)).sim.model_transition_velocity == (0.1,)  # runs as it is
    with pytest.raises(ValueError, match=r"needs the model's foot contact forces \('foot_r', 'foot_l'\)"):
        l2run.L2RunEnv(model_path=str(renamed), friction_transition_velocity=0.3)
    for bad in (0.0, -1.0, 11.0, "fast", True):
        with pytest.raises(ValueError, match=r"friction_transition_velocity must be a speed in \(0, 10\] m/s"):
            l2run.L2RunEnv(friction_transition_velocity=bad)


# -- issue 13: values that used to slip through -----------------------------------------
@pytest.mark.parametrize("difficulty", [True, False, 2.0, 1.5, "2", None, 3, -1])
def test_difficulty_must_be_an_int_0_1_or_2(difficulty):
    """True == 1 and 2.0 == 2, so a plain ``in (0, 1, 2)`` let a bool or a float through."""
    message = rf"difficulty must be 0, 1 or 2 \(an int\), got {re.escape(repr(difficulty))}"
    with pytest.raises(ValueError, match=message):
        l2run.L2RunEnv(difficulty=difficulty)
    with pytest.raises(ValueError, match=message):
        generate_course(difficulty, 3, np.random.default_rng(0))
    from experiments.envs import EnvConfig

    with pytest.raises(ValueError, match="env." + message):
        EnvConfig(difficulty=difficulty)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_obstacles": True}, r"max_obstacles must be an integer >= 0, got True \(bool\)"),
        ({"max_steps": True}, r"max_steps must be an integer >= 1, got True \(bool\)"),
        ({"max_steps": 10.0}, r"max_steps must be an integer >= 1, got 10.0 \(float\)"),
        ({"integrator_accuracy": None}, r"integrator_accuracy must be a number in \(0, 1\), got None"),
        ({"integrator_accuracy": "fast"}, r"integrator_accuracy must be a number in \(0, 1\), got 'fast'"),
        ({"integrator_accuracy": 1e-3j}, r"integrator_accuracy must be a number in \(0, 1\), got 0.001j"),
        ({"retry_accuracy": "x"}, r"retry_accuracy .* got 'x'"),
    ],
)
def test_constructor_arguments_of_the_wrong_type(kwargs, message):
    with pytest.raises(ValueError, match=message):
        l2run.L2RunEnv(**kwargs)


@pytest.mark.filterwarnings("error")  # complex values used to pass with only a ComplexWarning
@pytest.mark.parametrize(
    "action, message",
    [
        (None, r"action must be an array of 18 excitations, got None"),  # was "got shape ()"
        (np.full(18, 0.5 + 0.1j), r"real-valued excitations, got complex values \(dtype complex128\)"),
        (np.full(18, 0.5, dtype=np.complex64), r"complex values \(dtype complex64\)"),
        (["0.5"] * 18, r"18 numbers .*dtype <U3"),  # strings were converted silently
        (np.ones(18, dtype=bool), r"18 numbers .*dtype bool"),
        ([None] * 18, r"18 numbers .*dtype object"),  # was reported as 18 non-finite values
    ],
)
def test_actions_must_be_real_numbers(env, action, message):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


@pytest.mark.parametrize("seed", [-1, True, 1.5, "0"])
def test_reset_seed_must_be_a_non_negative_int(env, seed):
    with pytest.raises(ValueError, match=rf"seed must be an integer >= 0 or None, got {re.escape(repr(seed))}"):
        env.reset(seed=seed)
    obs, _ = env.reset(seed=np.int64(3))  # numpy integers are integers
    assert obs.shape == (C.OBSERVATION_SIZE,)


@pytest.mark.parametrize("integrator", sorted(set(INTEGRATORS) - {GRADER_INTEGRATOR}))
def test_every_integrator_follows_the_grader_on_held_actions(integrator):
    """Each integrator the env offers steps the model (the name maps to an OpenSim
    method) and stays on the grader's trajectory over 20 held steps."""
    actions = np.repeat(np.random.default_rng(5).random((4, 18)), 5, axis=0)
    grader = rollout(l2run.L2RunEnv(integrator_accuracy=1e-3), actions, seed=5)[0]
    other = rollout(l2run.L2RunEnv(integrator_accuracy=1e-2, integrator=integrator), actions, seed=5)[0]
    assert len(other) == len(grader) == 21  # the reset observation and 20 steps
    pelvis = [C.PELVIS_X, C.PELVIS_Y]
    assert np.abs(other[:, pelvis] - grader[:, pelvis]).max() < 5e-3
