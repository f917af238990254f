"""Shaped reward terms on constructed states, config errors, and the wrapper on the real env."""
import math

import numpy as np
import pytest

import l2run
import rewards
from l2run import constants as C
from synthetic import ReplayEnv, standing_observation

NO_LIGAMENTS = {"ligament_forces": np.zeros(6)}


def state(**changes):
    """The standing pose with some raw fields changed (by constant name)."""
    obs = standing_observation()
    for name, value in changes.items():
        obs[getattr(C, name)] = value
    return obs


def term(name, prev, obs, info=NO_LIGAMENTS, terminated=False):
    return rewards.TERMS[name].function(prev, obs, info, terminated)


# -- signs of each term ---------------------------------------------------------
def test_moving_forward_is_rewarded():
    still = state()
    assert term("velocity", still, state(PELVIS_VX=2.0)) == pytest.approx(2.0 * C.STEP_SECONDS)
    assert term("velocity", still, state(PELVIS_VX=-1.0)) < 0
    assert term("distance", still, state(PELVIS_X=0.03)) == pytest.approx(0.03)
    assert term("distance", state(PELVIS_X=0.03), still) == pytest.approx(-0.03)


def test_fall_penalises_only_the_falling_step():
    assert term("fall", state(), state()) == 0.0
    assert term("fall", state(), state(PELVIS_Y=0.6), terminated=True) == -1.0


def test_survival_only_while_not_fallen():
    assert term("survival", state(), state()) == 1.0
    assert term("survival", state(), state(PELVIS_Y=0.6), terminated=True) == 0.0


def test_leaning_back_is_penalised():
    upright = state()  # head 7 mm ahead of the pelvis
    assert term("lean", upright, upright) == 0.0
    back = state(HEAD_X=-0.2)
    assert term("lean", upright, back) == pytest.approx(-0.2)
    assert term("lean", upright, state(HEAD_X=-0.4)) < term("lean", upright, back) < 0
    assert term("lean", upright, state(HEAD_X=0.3)) == 0.0  # leaning forward is free


def test_straight_knees_are_penalised():
    flexed = state(KNEE_R=-0.8, KNEE_L=-0.3)
    assert term("bent_knee", flexed, flexed) == 0.0
    # The 2017 team's threshold (their run.py: max(0, knee - 0.1)): a knee at 0 rad
    # is not yet "locked"; only hyperextension past 0.1 rad is penalised.
    assert term("bent_knee", flexed, state(KNEE_R=0.0, KNEE_L=0.1)) == 0.0
    one_locked = state(KNEE_R=0.3, KNEE_L=-0.3)  # hyperextended: the random policy's stance
    assert term("bent_knee", flexed, one_locked) == pytest.approx(-(0.3 - rewards.STRAIGHT_KNEE_ANGLE))
    both_locked = state(KNEE_R=0.3, KNEE_L=0.3)
    assert term("bent_knee", flexed, both_locked) == pytest.approx(2 * term("bent_knee", flexed, one_locked))
    assert term("bent_knee", flexed, state(KNEE_R=0.35, KNEE_L=0.35)) < term("bent_knee", flexed, both_locked)


def test_ligament_penalty_is_the_challenges():
    info = {"ligament_forces": np.array([30.0, 0, -40.0, 0, 0, 0])}
    assert term("ligament", state(), state(), info) == pytest.approx(-50.0 * 1e-7)
    assert term("ligament", state(), state()) == 0.0
    with pytest.raises(KeyError, match="ligament_forces"):
        term("ligament", state(), state(), {})


# -- the weighted sum ---------------------------------------------------------------
def test_default_weights_reproduce_the_2017_shaping():
    prev = state()
    obs = state(PELVIS_VX=1.5, PELVIS_X=0.015, HEAD_X=-0.05, KNEE_R=0.25, KNEE_L=-0.5)
    info = {"ligament_forces": np.array([0, 0, 300.0, 400.0, 0, 0])}
    # pelvis_vx*0.01 + 0.01 + min(0, head_x - pelvis_x)*0.1 - sum max(0, knee-0.1)*0.02 - sqrt(sum F^2)*1e-7
    expected = 1.5 * 0.01 + 0.01 + (-0.05 - 0.015) * 0.1 - 0.15 * 0.02 - 500.0 * 1e-7
    shaped = rewards.ShapedReward()
    assert shaped(prev, obs, info, False) == pytest.approx(expected)
    terms = shaped.terms(prev, obs, info, False)
    assert set(terms) == set(rewards.DEFAULT_WEIGHTS)
    assert terms["lean"] == pytest.approx(-0.065 * 0.1)  # weighted values
    assert sum(terms.values()) == pytest.approx(expected)


def test_empty_config_is_the_challenge_score():
    shaped = rewards.ShapedReward(weights={})
    assert shaped.weights == {"distance": 1.0}
    assert shaped(state(), state(PELVIS_X=0.02, PELVIS_VX=3.0), NO_LIGAMENTS, False) == pytest.approx(0.02)


def test_simulator_failure_earns_nothing():
    shaped = rewards.ShapedReward()
    assert shaped(state(), state(PELVIS_VX=2.0), {"sim_error": "integrator failed"}, False) == 0.0


@pytest.mark.parametrize("weights, message", [
    ({"velocity": 1.0, "speed": 2.0}, r"unknown reward term\(s\) \['speed'\]; valid terms: \['velocity', "),
    ({"velocity": "0.01"}, r"weight of 'velocity' must be a finite number, got '0.01'"),
    ({"survival": None}, r"weight of 'survival' must be a finite number, got None"),
    ({"survival": True}, r"weight of 'survival' must be a finite number, got True"),
    ({"lean": math.nan}, r"weight of 'lean' must be a finite number, got nan"),
    ([("velocity", 1.0)], r"must be a mapping"),
])
def test_config_errors(weights, message):
    with pytest.raises(ValueError, match=message):
        rewards.ShapedReward(weights=weights)


def test_every_term_named_in_the_unknown_term_error():
    with pytest.raises(ValueError) as err:
        rewards.validate_weights({"nope": 1})
    assert all(name in str(err.value) for name in rewards.TERM_NAMES)


def test_numpy_and_int_weights_accepted():
    weights = rewards.validate_weights({"velocity": np.float32(2), "survival": 1})
    assert weights == {"velocity": 2.0, "survival": 1.0}


def test_callable_only_instance_refuses_env_calls():
    with pytest.raises(RuntimeError, match="without an env"):
        rewards.ShapedReward().reset()


# -- the wrapper on the real env ------------------------------------------------------
def test_wrapper_on_the_simulator():
    env = rewards.ShapedReward(l2run.L2RunEnv(difficulty=1, max_obstacles=3, integrator_accuracy=3e-2))
    prev, _ = env.reset(seed=0)
    manual = rewards.ShapedReward(weights=None)
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(rng.random(18))
        assert set(info["reward_terms"]) == set(rewards.DEFAULT_WEIGHTS)
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert reward == pytest.approx(manual(prev, obs, info, terminated))
        assert info["distance"] == obs[C.PELVIS_X] - prev[C.PELVIS_X]  # the env's, untouched
        prev = obs
        if terminated or truncated:
            break

    score = rewards.ShapedReward(env.env, {})
    score.reset(seed=0)
    obs, reward, *_, info = score.step(np.zeros(18))
    assert reward == info["distance"] == info["reward_terms"]["distance"]


def test_wrapper_on_a_simulator_failure():
    episode = np.array([standing_observation(x) for x in np.linspace(0, 0.05, 6)])
    env = rewards.ShapedReward(ReplayEnv(episode, fail_at=4))
    env.reset()
    rewards_before = [env.step(np.zeros(18))[1] for _ in range(3)]
    assert all(r == pytest.approx(0.01) for r in rewards_before)  # survival only: raw speeds are 0
    _, reward, terminated, truncated, info = env.step(np.zeros(18))
    assert truncated and reward == 0.0 and all(v == 0.0 for v in info["reward_terms"].values())
