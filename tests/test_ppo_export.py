"""Tier a: the exported numpy policy reproduces the TF policy, and bad files fail clearly."""
import json
import subprocess
import sys

import numpy as np
import pytest

from baselines_ppo.export import BEST_POLICY_FILE, POLICY_FILE, PolicyFileError, export_policy, find_policy, load_policy
from baselines_ppo.normalizers import ObservationNormalizer

LOW, HIGH = np.zeros(4), np.ones(4)


@pytest.fixture(scope="module")
def model_and_stats():
    from baselines_ppo.policy import ActorCritic

    rng = np.random.default_rng(7)
    model = ActorCritic(5, 4, (32, 32), "elu", 0.0, rng)
    for v in model.parameters:  # move the output layer away from its 0.01 init so actions vary
        v.assign(v.numpy() + rng.normal(0, 0.3, v.shape).astype(np.float32))
    rms = ObservationNormalizer(5, enabled=True, clip=5.0)
    rms.update(rng.normal(3.0, 2.0, (100, 5)))
    return model, rms


def export(path, model, rms, metadata=None):
    acting = model.numpy_policy()
    return export_policy(path, acting.actor, acting.log_std, acting.activation, rms.mean, rms.std, 5.0,
                         LOW, HIGH, metadata)


def test_exported_action_equals_tf_deterministic_action(tmp_path, model_and_stats):
    model, rms = model_and_stats
    path = export(tmp_path / "policy.npz", model, rms, {"env": {"difficulty": 2}, "name": "unit"})
    policy = load_policy(path)
    assert (policy.observation_size, policy.action_size) == (5, 4)
    assert policy.metadata == {"env": {"difficulty": 2}, "name": "unit"}
    raw = np.random.default_rng(1).normal(3.0, 4.0, (50, 5))
    tf_action = np.clip(model.mean_action(rms(raw).astype(np.float32)).numpy(), LOW, HIGH)
    np.testing.assert_allclose(policy.act(raw, mode="mean"), tf_action, atol=1e-5)
    assert 0 < np.mean((tf_action > 0) & (tf_action < 1)) < 1  # some clipped, some not: the test means something
    np.testing.assert_allclose(policy.act(raw[0], mode="mean"), tf_action[0], atol=1e-5)  # single observation
    with pytest.raises(ValueError, match="expects observations of size 5"):
        policy.act(np.zeros(6))
    assert path.stat().st_size < 50_000
    assert not list(tmp_path.glob(".*tmp*")), "temp file left behind"


def test_load_errors_name_the_path(tmp_path, model_and_stats):
    with pytest.raises(FileNotFoundError, match="no policy file at .*missing.npz"):
        load_policy(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(PolicyFileError, match="garbage.npz is not a readable policy file: expected the .npz") as err:
        load_policy(garbage)
    assert "allow_pickle" not in str(err.value)  # numpy's advice to unpickle is cut, its reason kept
    assert "pickled (object) data" in str(err.value)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(PolicyFileError, match="other.npz is not a policy file written by baselines_ppo"):
        load_policy(other)
    model, rms = model_and_stats
    good = export(tmp_path / "good.npz", model, rms)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PolicyFileError, match="truncated.npz"):
        load_policy(truncated)
    with np.load(good) as data:
        arrays = dict(data)
    arrays["obs_mean"] = np.zeros(3)
    np.savez(tmp_path / "damaged.npz", **arrays)
    with pytest.raises(PolicyFileError, match=r"damaged.npz is a damaged policy file: obs_mean has shape \(3,\)"):
        load_policy(tmp_path / "damaged.npz")


def test_find_policy_in_a_run_dir(tmp_path, model_and_stats):
    model, rms = model_and_stats
    with pytest.raises(FileNotFoundError, match="holds no exported policy"):
        find_policy(tmp_path)
    export(tmp_path / POLICY_FILE, model, rms)
    assert find_policy(tmp_path) == tmp_path / POLICY_FILE
    assert find_policy(tmp_path, best=True) == tmp_path / POLICY_FILE  # falls back
    export(tmp_path / BEST_POLICY_FILE, model, rms)
    assert find_policy(tmp_path, best=True) == tmp_path / BEST_POLICY_FILE
    assert load_policy(tmp_path).action_size == 4  # a run dir loads its latest policy


def test_find_policy_of_a_saved_line(tmp_path, model_and_stats):
    """A line kept by save_line.sh holds its policy beside its latest checkpoint."""
    model, rms = model_and_stats
    kept = tmp_path / "checkpoints" / "ckpt-00000007"
    kept.mkdir(parents=True)
    (tmp_path / "checkpoints" / "latest").write_text("ckpt-00000007\n")
    with pytest.raises(FileNotFoundError, match="checkpoints/<latest>/policy.npz"):
        find_policy(tmp_path)
    export(kept / POLICY_FILE, model, rms)
    assert find_policy(tmp_path) == kept / POLICY_FILE
    export(tmp_path / POLICY_FILE, model, rms)
    assert find_policy(tmp_path) == tmp_path / POLICY_FILE  # a package's own policy comes first


def test_export_module_needs_neither_tensorflow_nor_mpi(tmp_path, model_and_stats):
    model, rms = model_and_stats
    path = export(tmp_path / "policy.npz", model, rms, {"k": 1})
    code = ("import sys, numpy as np; from baselines_ppo.export import load_policy; "
            f"p = load_policy({str(path)!r}); p.act(np.zeros(5)); "
            "bad = [m for m in ('tensorflow', 'mpi4py') if m in sys.modules]; "
            "print(json.dumps(bad))").replace("import sys", "import json, sys")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_default_action_is_the_expected_clipped_gaussian_action(tmp_path, model_and_stats):
    """act() returns what the clipped policy applies on average: checked against
    Monte Carlo samples of the TF policy's Gaussian, clipped as the env clips."""
    model, rms = model_and_stats
    policy = load_policy(export(tmp_path / "policy.npz", model, rms, {}))
    raw = np.random.default_rng(2).normal(3.0, 4.0, (6, 5))
    mean = model.mean_action(rms(raw).astype(np.float32)).numpy().astype(np.float64)
    std = np.exp(policy.log_std)
    samples = mean + std * np.random.default_rng(3).standard_normal((200_000, *mean.shape))
    np.testing.assert_allclose(policy.act(raw), np.clip(samples, LOW, HIGH).mean(axis=0), atol=3e-3)
    assert not np.allclose(policy.act(raw), policy.act(raw, mode="mean"), atol=1e-2)  # they do differ
    with pytest.raises(ValueError, match="act mode"):
        policy.act(raw, mode="mode")


def test_sampled_actions_are_the_training_gaussian_clipped(tmp_path, model_and_stats):
    """sample() draws mean + std * N(0, 1) from the generator it is given, clipped as
    the env clips: the TF policy's Gaussian, whose average is the expected mode."""
    model, rms = model_and_stats
    policy = load_policy(export(tmp_path / "policy.npz", model, rms, {}))
    raw = np.tile(np.random.default_rng(2).normal(3.0, 4.0, (6, 5)), (20_000, 1))
    mean = model.mean_action(rms(raw).astype(np.float32)).numpy().astype(np.float64)
    noise = np.random.default_rng(5).standard_normal(mean.shape)
    draws = policy.sample(raw, np.random.default_rng(5))
    np.testing.assert_allclose(draws, np.clip(mean + np.exp(policy.log_std) * noise, LOW, HIGH), atol=1e-5)
    np.testing.assert_allclose(draws.reshape(20_000, 6, 4).mean(axis=0), policy.act(raw[:6]), atol=1e-2)
    one = policy.sample(raw[0], np.random.default_rng(9))
    assert one.shape == (4,) and np.array_equal(one, policy.sample(raw[0], np.random.default_rng(9)))


def test_expected_clipped_gaussian_with_infinite_bounds():
    from baselines_ppo.export import expected_clipped_gaussian

    mean, std = np.array([-0.5, 0.3, 1.4]), np.array([1.0, 0.1, 0.5])
    x = mean + std * np.random.default_rng(4).standard_normal((400_000, 3))  # sample-mean sd <= 0.0016
    inf = np.full(3, np.inf)
    np.testing.assert_allclose(expected_clipped_gaussian(mean, std, -inf, inf), mean)
    np.testing.assert_allclose(expected_clipped_gaussian(mean, std, np.zeros(3), inf), np.maximum(x, 0).mean(0),
                               atol=8e-3)
    np.testing.assert_allclose(expected_clipped_gaussian(mean, std, -inf, np.ones(3)), np.minimum(x, 1).mean(0),
                               atol=8e-3)
