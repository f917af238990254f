"""experiments.envs: the wrappers make_env stacks on the real simulator."""
import numpy as np
import pytest

from experiments.envs import EnvConfig, FrameSkip, MinimumExcitation, make_env
from experiments.evaluation import policy_env_config

FAST = dict(difficulty=1, max_obstacles=3, integrator="semi_explicit_euler2", integrator_accuracy=3e-2)


def test_frame_skip_repeats_the_action_and_sums_the_step_scores():
    plain = make_env(EnvConfig(features=False, **FAST))
    skipped = make_env(EnvConfig(features=False, frame_skip=3, **FAST))
    assert isinstance(skipped, FrameSkip)
    action = np.full(18, 0.3)
    plain.reset(seed=7)
    skipped.reset(seed=7)
    rewards, distances = [], []
    for _ in range(3):
        obs, reward, *_, info = plain.step(action)
        rewards.append(reward)
        distances.append(info["distance"])
    obs_skip, reward_skip, terminated, truncated, info_skip = skipped.step(action)
    np.testing.assert_allclose(obs_skip, obs)
    assert reward_skip == pytest.approx(sum(rewards))
    assert info_skip["distance"] == pytest.approx(sum(distances))
    assert info_skip["step"] == 3 and not (terminated or truncated)


def test_frame_skip_stops_repeating_when_the_episode_ends():
    env = make_env(EnvConfig(features=False, frame_skip=4, max_steps=6, **FAST))
    env.reset(seed=0)
    env.step(np.full(18, 0.3))
    *_, truncated, info = env.step(np.full(18, 0.3))
    assert truncated and info["step"] == 6  # 2 of the 4 repeats, then the time limit


def test_min_excitation_narrows_the_action_box_and_rejects_actions_below_it():
    env = make_env(EnvConfig(features=True, min_excitation=0.05, **FAST))
    assert isinstance(env, MinimumExcitation)
    assert np.all(env.action_space.low == np.float32(0.05)) and np.all(env.action_space.high == 1)
    env.reset(seed=1)
    env.step(np.full(18, 0.05))  # the floor itself (a float64 0.05) is inside the box
    env.step(env.action_space.sample())
    action = np.full(18, 0.5)
    action[4] = 0.01
    with pytest.raises(ValueError, match=r"action\[4\] = 0.01 is below the env's minimum excitation 0.05"):
        env.step(action)


def test_min_excitation_is_off_by_default_and_validated():
    assert not isinstance(make_env(EnvConfig(features=False, **FAST)), MinimumExcitation)
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match=r"env.min_excitation must be in \[0, 1\), got"):
            EnvConfig(min_excitation=bad)


def test_a_floor_trained_policy_keeps_its_floor_in_evaluation(tmp_path):
    """The floor travels in the exported policy's env metadata, so evaluate and
    render run the same box the policy learned in."""
    from baselines_ppo import export

    path = tmp_path / "policy.npz"
    export.export_policy(path, [(np.zeros((82, 18)), np.full(18, -1.0))], np.zeros(18), "tanh",
                         np.zeros(82), np.ones(82), 10.0, np.full(18, 0.05), np.ones(18),
                         metadata={"env": {"features": True, "min_excitation": 0.05}})
    config = policy_env_config(str(path), difficulty=1, max_obstacles=3)
    assert config.min_excitation == 0.05
    policy = export.load_policy(path)
    assert np.all(policy.act(np.zeros(82)) >= 0.05)  # a mean of -1 is clipped to the floor, not to 0


def test_muscle_floors_raise_the_named_muscles_on_both_legs_or_one():
    from l2run.constants import MUSCLE_NAMES

    env = make_env(EnvConfig(features=False, min_excitation=0.05, muscle_floors={"vasti": 0.15, "glut_max_l": 0.2},
                             **FAST))
    low = dict(zip(MUSCLE_NAMES, env.action_space.low))
    assert low["vasti_r"] == low["vasti_l"] == np.float32(0.15)
    assert low["glut_max_l"] == np.float32(0.2) and low["glut_max_r"] == np.float32(0.05)
    assert low["soleus_r"] == np.float32(0.05)
    env.reset(seed=0)
    action = np.asarray(env.action_space.low, dtype=np.float32).copy()
    env.step(action)  # the floors themselves are inside the box
    action[MUSCLE_NAMES.index("vasti_l")] = 0.1
    with pytest.raises(ValueError, match=r"action\[14\] = 0.1 is below the env's minimum excitation 0.15"):
        env.step(action)
    with pytest.raises(ValueError, match=r"env.muscle_floors: no muscle 'quads'; muscles: bifemsh, gastroc"):
        EnvConfig(muscle_floors={"quads": 0.1})
    with pytest.raises(ValueError, match=r"env.muscle_floors.vasti must be in \[0, 1\), got 1.5"):
        EnvConfig(muscle_floors={"vasti": 1.5})
