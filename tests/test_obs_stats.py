"""``l2run obs-stats`` end to end on the real simulator, and experiments.policies."""
import csv

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from experiments import cli
from experiments.policies import make_policy
from observation import FEATURE_NAMES

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (82,), np.float32)
ACT_SPACE = gym.spaces.Box(0.0, 1.0, (18,), np.float32)


@pytest.mark.slow
def test_obs_stats_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "stats"
    code = cli.main(["obs-stats", "--policy", "random", "--steps", "150", "--out", str(out),
                     "--difficulty", "0", "--seeds", "0", "1"])
    assert code == 0
    with open(out / "obs_stats.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == list(FEATURE_NAMES)
    for row in rows:
        values = [float(row[k]) for k in ("mean", "std", "min", "max")]
        assert all(np.isfinite(values)) and values[2] <= values[0] <= values[3] and values[1] >= 0
    flagged = [row["name"] for row in rows if row["out_of_range"] == "1"]
    # difficulty 0: no obstacles, full-strength psoas, so those features are constant (std 0)
    assert {"psoas_l", "psoas_r", "obstacle_next_ahead", "obstacle_prev_dx"} <= set(flagged)
    image = Image.open(out / "obs_stats.png")
    assert image.format == "PNG" and image.size[0] > 2 * image.size[1]
    printed = capsys.readouterr().out
    assert f"{len(flagged)} of 82 features outside" in printed
    assert all(name in printed for name in flagged)


# -- policies -----------------------------------------------------------------------------
def test_random_policy_in_bounds_and_seeded():
    policy = make_policy("random", OBS_SPACE, ACT_SPACE, seed=3)
    actions = np.array([policy.act(None) for _ in range(100)])
    assert actions.shape == (100, 18) and actions.min() >= 0 and actions.max() <= 1 and actions.std() > 0.2
    np.testing.assert_array_equal(actions[0], make_policy("random", OBS_SPACE, ACT_SPACE, seed=3).act(None))
    assert policy.act(None).dtype == np.float32


def test_zero_policy():
    assert np.array_equal(make_policy("zero", OBS_SPACE, ACT_SPACE).act(np.zeros(82)), np.zeros(18))


def test_unknown_spec_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown policy 'banana'.*random.*zero"):
        make_policy("banana", OBS_SPACE, ACT_SPACE)
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy(str(tmp_path / "missing.npz"), OBS_SPACE, ACT_SPACE)


def export_tiny_policy(path, observation_size=82, action_size=18, frame_skip=1):
    from baselines_ppo.export import export_policy

    rng = np.random.default_rng(0)
    actor = [(rng.normal(size=(observation_size, 8)), np.zeros(8)),
             (rng.normal(size=(8, action_size)), np.zeros(action_size))]
    return export_policy(path, actor, np.zeros(action_size), "tanh", np.zeros(observation_size),
                         np.ones(observation_size), 5.0, np.zeros(action_size), np.ones(action_size),
                         metadata={"env": {"features": True, "frame_skip": frame_skip}})


def test_exported_policy_file_and_run_directory(tmp_path):
    export_tiny_policy(tmp_path / "policy.npz")
    for spec in (tmp_path / "policy.npz", tmp_path):
        policy = make_policy(str(spec), OBS_SPACE, ACT_SPACE)
        action = policy.act(np.ones(82, dtype=np.float32))
        assert action.shape == (18,) and 0 <= action.min() and action.max() <= 1


def test_exported_policy_of_the_wrong_size(tmp_path):
    export_tiny_policy(tmp_path / "policy.npz", observation_size=41)
    with pytest.raises(ValueError, match=r"observations of size 41.*observation size 82.*raw 41 floats"):
        make_policy(str(tmp_path), OBS_SPACE, ACT_SPACE)


@pytest.mark.slow
def test_obs_stats_with_an_exported_policy(tmp_path):
    export_tiny_policy(tmp_path / "run" / "policy.npz", frame_skip=3)  # actions held for 3 steps
    code = cli.main(["obs-stats", "--policy", str(tmp_path / "run"), "--steps", "60",
                     "--out", str(tmp_path / "out"), "--difficulty", "0", "--seeds", "0"])
    assert code == 0 and (tmp_path / "out" / "obs_stats.csv").is_file()
