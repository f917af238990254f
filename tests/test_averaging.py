"""Tier a: ``l2run average`` averages a line's policies as functions, and refuses what is no line.

Policies are built with numpy alone (``baselines_ppo.export``); the last test
averages two real snapshots of a short PPO run on the real simulator's sizes
and scores the mean on the real simulator.
"""
import json

import numpy as np
import pytest

from baselines_ppo.averaging import (AVERAGED_FROM_KEY, average_policies, check_same_line, flat_weights,
                                     rebase_first_layer, weight_distances)
from baselines_ppo.export import ExportedPolicy, load_policy, save_policy
from experiments.cli import main

SIZES = (6, 8, 8, 3)
LOW, HIGH = np.zeros(3), np.ones(3)


def make_policy(seed, obs_mean=None, obs_std=None, obs_clip=np.inf, activation="tanh", sizes=SIZES, path=None):
    rng = np.random.default_rng(seed)
    actor = [(rng.normal(0, 0.7, (a, b)), rng.normal(0, 0.3, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    obs_mean = rng.normal(0, 2, sizes[0]) if obs_mean is None else obs_mean
    obs_std = rng.uniform(0.5, 3, sizes[0]) if obs_std is None else obs_std
    return ExportedPolicy(actor, rng.normal(-1, 0.2, sizes[-1]), activation, obs_mean, obs_std, obs_clip,
                          LOW, HIGH, {"name": f"seed {seed}"}, path)


def observations(seed=1, n=200):
    return np.random.default_rng(seed).normal(0, 4, (n, SIZES[0]))


def test_a_rebased_first_layer_computes_what_it_did():
    """Reading other statistics, the rewritten policy is the same function (no clip)."""
    policy, other = make_policy(0), make_policy(1)
    rebased = ExportedPolicy([rebase_first_layer(policy, other.obs_mean, other.obs_std)] + policy.actor[1:],
                             policy.log_std, "tanh", other.obs_mean, other.obs_std, np.inf, LOW, HIGH)
    np.testing.assert_allclose(rebased.act(observations(), mode="mean"), policy.act(observations(), mode="mean"),
                               atol=1e-12)
    assert not np.allclose(policy.normalize(observations()), other.normalize(observations()))  # the stats differ


def test_one_function_under_two_normalisers_averages_to_itself():
    """The mean is one of functions: a policy and its copy rewritten to other statistics
    average to the policy, where averaging the raw numbers would not."""
    policy, stats = make_policy(0), make_policy(1)
    copy = ExportedPolicy([rebase_first_layer(policy, stats.obs_mean, stats.obs_std)] + policy.actor[1:],
                          policy.log_std, "tanh", stats.obs_mean, stats.obs_std, np.inf, LOW, HIGH)
    averaged = average_policies([policy, copy])
    np.testing.assert_allclose(averaged.act(observations(), mode="mean"), policy.act(observations(), mode="mean"),
                               atol=1e-12)
    np.testing.assert_array_equal(averaged.obs_mean, copy.obs_mean)  # the last policy's statistics
    naive = ExportedPolicy([((k1 + k2) / 2, (b1 + b2) / 2) for (k1, b1), (k2, b2) in zip(policy.actor, copy.actor)],
                           policy.log_std, "tanh", copy.obs_mean, copy.obs_std, np.inf, LOW, HIGH)
    assert not np.allclose(naive.act(observations(), mode="mean"), policy.act(observations(), mode="mean"), atol=1e-3)


def test_with_shared_statistics_the_mean_is_of_the_weights():
    mean, std = np.zeros(SIZES[0]), np.ones(SIZES[0])
    policies = [make_policy(seed, mean, std, obs_clip=5.0) for seed in (0, 1, 2)]
    averaged = average_policies(policies)
    for i, (kernel, bias) in enumerate(averaged.actor):
        np.testing.assert_allclose(kernel, np.mean([p.actor[i][0] for p in policies], axis=0), atol=1e-12)
        np.testing.assert_allclose(bias, np.mean([p.actor[i][1] for p in policies], axis=0), atol=1e-12)
    np.testing.assert_allclose(averaged.log_std, np.mean([p.log_std for p in policies], axis=0))
    np.testing.assert_allclose(weight_distances(policies, averaged),
                               [np.linalg.norm(flat_weights(p.actor) - flat_weights(averaged.actor)) for p in policies])
    assert averaged.obs_clip == 5.0 and averaged.metadata["name"] == "seed 2"
    assert averaged.metadata[AVERAGED_FROM_KEY] == ["policy 1", "policy 2", "policy 3"]


@pytest.mark.parametrize("other, message", [
    (dict(sizes=(6, 8, 9, 3)), r"has layers .* expected .* only policies of one line"),
    (dict(activation="relu"), "uses activation 'relu', expected 'tanh'"),
    (dict(obs_clip=5.0), "clips observations at 5, expected inf"),
])
def test_policies_of_different_lines_are_refused(other, message):
    with pytest.raises(ValueError, match=message):
        check_same_line([make_policy(0), make_policy(1, **other)])


def test_fewer_than_two_policies_are_refused():
    with pytest.raises(ValueError, match="at least 2 policies, got 1"):
        average_policies([make_policy(0)])


def write(policy, path):
    return str(save_policy(path, policy))


def test_the_command_writes_the_mean_and_never_overwrites(tmp_path, capsys):
    a, b = write(make_policy(0), tmp_path / "a.npz"), write(make_policy(1), tmp_path / "b.npz")
    out = tmp_path / "mean.npz"
    assert main(["average", a, b, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"averaged 2 policies (8 x 8 tanh) into {out}" in printed
    assert "their weights lie " in printed and " from the mean's (whose norm is " in printed
    written, expected = load_policy(out), average_policies([load_policy(a), load_policy(b)])
    np.testing.assert_allclose(written.act(observations()), expected.act(observations()), atol=1e-5)  # float32 file
    assert written.metadata[AVERAGED_FROM_KEY] == [a, b]
    before = out.read_bytes()
    with pytest.raises(SystemExit, match=f"{out} exists; name a new file"):
        main(["average", b, a, "--out", str(out)])
    assert out.read_bytes() == before


def test_the_command_names_the_file_that_is_no_policy_or_of_another_line(tmp_path):
    a = write(make_policy(0), tmp_path / "a.npz")
    wide = write(make_policy(1, sizes=(6, 16, 8, 3)), tmp_path / "wide.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a policy")
    with pytest.raises(SystemExit, match="junk.npz is not a readable policy file"):
        main(["average", a, str(junk), "--out", str(tmp_path / "x.npz")])
    with pytest.raises(SystemExit, match="wide.npz has layers"):
        main(["average", a, wide, "--out", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_snapshots_of_a_real_run_average_into_a_runner_of_the_real_simulator(tmp_path, capsys):
    """Two snapshots of a short PPO run on the real env, averaged, then scored on it."""
    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\n[env]\ndifficulty = 0\nmax_obstacles = 0\nintegrator_accuracy = 3e-2\n'
                      '[ppo]\nsteps_per_rank = 128\nminibatch_size = 64\nepochs = 2\nsnapshot_every = 1\n')
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--run-dir", str(run), "--iterations", "2", "--quiet"]) == 0
    snapshots = sorted((run / "snapshots").glob("policy-*.npz"))
    assert len(snapshots) == 2
    out = tmp_path / "mean.npz"
    assert main(["average", *map(str, snapshots), "--out", str(out)]) == 0
    report = tmp_path / "report.json"
    assert main(["evaluate", "--policy", str(out), "--episodes", "1", "--max-steps", "30", "--accuracy", "3e-2",
                 "--difficulty", "0", "--quiet", "--out", str(report)]) == 0
    written = json.loads(report.read_text())
    [episode] = written["episodes"]
    assert episode["steps"] == 30 and np.isfinite(episode["score"])
    last = load_policy(snapshots[-1]).metadata["training"]
    assert written["training"] == {"iteration": last["iteration"], "timesteps": last["timesteps"], "averaged": 2}
