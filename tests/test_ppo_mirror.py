"""Tier a: left-right mirror augmentation (PPOConfig.mirror_augmentation) in one process.

A toy env (tests/toy_env.py) with a symmetry that has both a swap and a sign
flip stands in for L2Run, so these tests need neither OpenSim nor Pendulum.
"""
import numpy as np
import pytest

from baselines_ppo.buffer import RolloutBuffer
from baselines_ppo.config import PPOConfig
from baselines_ppo.numpy_policy import gaussian_log_prob
from baselines_ppo.symmetry import Symmetry, mirror_batch, mirror_log_prob_gap
from toy_env import TOY_SYMMETRY, ToyEnv

pytestmark = pytest.mark.filterwarnings("ignore:TensorFlow was already running")

T = 32


def config(**changes):
    settings = dict(steps_per_rank=T, minibatch_size=8, epochs=3, hidden_sizes=(8,), init_log_std=-0.5,
                    mirror_augmentation=True)
    settings.update(changes)
    return PPOConfig(**settings)


def learner_for(cfg, symmetry=TOY_SYMMETRY, seed=0):
    from baselines_ppo.trainer import Learner

    return Learner(cfg, 4, 2, np.random.default_rng(seed), symmetry=symmetry)


def collected(cfg, iterations=1):
    """A learner, a collector on ToyEnv, and the training batch of the last of
    ``iterations`` collections (with the policy that acted and the statistics
    the observations were normalised with)."""
    from baselines_ppo.rollout import Collector
    from baselines_ppo.trainer import collect

    learner = learner_for(cfg)
    collector = Collector(ToyEnv())
    collector.reset(seed=1)
    buffer = RolloutBuffer(cfg.steps_per_rank, 4, 2)
    rng = np.random.default_rng(2)
    for _ in range(iterations):
        rms_before = learner.obs_normalizer.state_dict()
        batch, stats, acting = collect(collector, learner, buffer, rng)
    return learner, batch, stats, acting, rms_before


# --- Symmetry ------------------------------------------------------------------------


def test_symmetry_mirrors_with_signs_and_is_an_involution():
    obs = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(TOY_SYMMETRY.mirror_observations(obs)[0], [1.0, 0.0, -2.0, 3.0])
    np.testing.assert_array_equal(TOY_SYMMETRY.mirror_observations(TOY_SYMMETRY.mirror_observations(obs)), obs)
    actions = np.array([[0.25, 0.75]], np.float32)
    mirrored = TOY_SYMMETRY.mirror_actions(actions)
    assert mirrored.dtype == np.float32 and mirrored.tolist() == [[0.75, 0.25]]
    assert (TOY_SYMMETRY.observation_size, TOY_SYMMETRY.action_size) == (4, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(obs_perm=[1, 2, 0], act_perm=[0]),
     r"obs_perm is not an involution \(mirroring twice must give the observation back\): observation entries "
     r"\[0, 1, 2\] map to \[1, 2, 0\]"),
    (dict(obs_perm=[0], act_perm=[1, 1]), r"act_perm is not a permutation of 0..1: \[1, 1\]"),
    (dict(obs_perm=[0, 2], act_perm=[0]), r"obs_perm is not a permutation of 0..1"),
    (dict(obs_perm=[0.0, 1.0], act_perm=[0]), r"obs_perm must be a non-empty 1-d array of integers"),
    (dict(obs_perm=[], act_perm=[0]), r"obs_perm must be a non-empty 1-d array of integers"),
    (dict(obs_perm=[1, 0], obs_sign=[1, 1, 1], act_perm=[0]), r"obs_sign has shape \(3,\), obs_perm has 2 entries"),
    (dict(obs_perm=[1, 0], obs_sign=[1, 0.5], act_perm=[0]), r"obs_sign must hold only \+1 and -1"),
    (dict(obs_perm=[0], act_perm=[1, 0], act_sign=[1, -1]),
     r"act_sign is not an involution with act_perm \(need sign \* sign\[perm\] == 1\): entries \[0, 1\]"),
])
def test_a_bad_symmetry_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Symmetry(**kwargs)


def test_a_symmetry_of_the_wrong_size_is_a_clear_error():
    wrong = Symmetry(obs_perm=[1, 0, 2], act_perm=[1, 0])
    with pytest.raises(ValueError, match=r"mirrors observations of size 3 and actions of size 2, but the env has "
                                         r"observations of size 4 and actions of size 2"):
        learner_for(config(), symmetry=wrong)


def test_mirror_augmentation_without_a_symmetry_fails_before_building_the_env(tmp_path):
    from baselines_ppo import train

    def env_fn(seed):
        raise AssertionError("the env should not be built")

    with pytest.raises(ValueError, match="ppo.mirror_augmentation is on but no symmetry was given"):
        train(env_fn, config(), tmp_path, iterations=1, progress="none", tensorboard=False)
    with pytest.raises(ValueError, match="no symmetry was given"):
        learner_for(config(), symmetry=None)
    learner_for(config(mirror_augmentation=False), symmetry=None)  # off: no symmetry needed


def test_symmetry_leaves_the_callers_arrays_writable():
    perm, sign = np.array([1, 0]), np.array([1.0, 1.0])
    Symmetry(obs_perm=perm, obs_sign=sign, act_perm=[0])
    perm[0], sign[0] = 1, 1.0  # no "read-only" error


# --- the doubled batch ---------------------------------------------------------------


def test_mirrored_samples_carry_the_acting_policys_log_probs():
    cfg = config(normalize_observations=True)
    learner, batch, stats, acting, rms_before = collected(cfg, iterations=2)  # 2: non-trivial statistics
    assert len(batch.observations) == 2 * T
    real, mirror = slice(0, T), slice(T, 2 * T)

    # mirrored observations: mirror the RAW observations, then normalise with the statistics the real
    # half was normalised with (those before this iteration's update)
    std = np.sqrt(rms_before["var"] + 1e-8)
    np.testing.assert_allclose(batch.observations[real], (stats.raw_observations - rms_before["mean"]) / std,
                               rtol=1e-5, atol=1e-5)
    expected_obs = (TOY_SYMMETRY.mirror_observations(stats.raw_observations) - rms_before["mean"]) / std
    np.testing.assert_allclose(batch.observations[mirror], expected_obs, rtol=1e-5, atol=1e-5)
    assert not np.allclose(rms_before["mean"], learner.obs_normalizer.mean), "the statistics changed this iteration"

    # mirrored actions and their log-probabilities under the policy that acted
    np.testing.assert_array_equal(batch.actions[mirror], batch.actions[real][:, [1, 0]])
    expected = gaussian_log_prob(batch.actions[mirror].astype(np.float64),
                                 acting.mean_action(expected_obs), acting.log_std)
    np.testing.assert_allclose(batch.log_probs[mirror], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(batch.log_probs[mirror], batch.log_probs[real], atol=1e-3)
    np.testing.assert_allclose(batch.values[mirror], acting.value(expected_obs), rtol=1e-5, atol=1e-5)

    # same advantages and value targets; normalised over the doubled batch too
    np.testing.assert_array_equal(batch.advantages[mirror], batch.advantages[real])
    np.testing.assert_array_equal(batch.returns[mirror], batch.returns[real])
    assert abs(batch.advantages.mean()) < 1e-5 and abs(batch.advantages.std() - 1) < 1e-3

    # the observation statistics saw both halves, so they are themselves mirror-symmetric (although the
    # env's observations are lopsided) and normalising commutes with mirroring
    statistics = learner.obs_normalizer
    np.testing.assert_allclose(TOY_SYMMETRY.mirror_observations(statistics.mean), statistics.mean, atol=1e-12)
    np.testing.assert_allclose(statistics.var[[1, 0, 2, 3]], statistics.var, rtol=1e-12)
    assert abs(statistics.mean[0] - 1.0) < 1.0 and abs(statistics.mean[2]) < 1e-12
    np.testing.assert_allclose(batch.observations[mirror], TOY_SYMMETRY.mirror_observations(batch.observations[real]),
                               atol=1e-5)

    # at the start of the update the TF policy (= the acting one) gives ratio 1 on the mirrored samples
    tf_log_probs = learner.model.log_prob(batch.observations[mirror], batch.actions[mirror]).numpy()
    np.testing.assert_allclose(tf_log_probs, batch.log_probs[mirror], atol=1e-4)


def test_mirror_batch_is_generic():
    """mirror_batch on a hand-made batch: the numbers it must produce, shape by shape."""
    learner = learner_for(config(mirror_augmentation=False), symmetry=None)
    acting = learner.model.numpy_policy()
    rng = np.random.default_rng(5)
    buffer = RolloutBuffer(4, 4, 2)
    raw = rng.normal(size=(4, 4))
    actions, log_probs, values = acting.sample(raw, rng)
    for t in range(4):
        buffer.add(raw[t], actions[t], log_probs[t], values[t], reward=float(t), terminated=t == 3, truncated=False)
    batch = buffer.finish(0.0, 0.9, 0.9, normalize_advantages=False)
    doubled = mirror_batch(batch, TOY_SYMMETRY.mirror_observations(raw), TOY_SYMMETRY, acting)
    arrays = [name for name in vars(batch) if name != "mirrored_observations"]  # that one: the symmetry loss's
    assert {name: getattr(doubled, name).shape[0] for name in arrays} == dict.fromkeys(arrays, 8)
    assert {name: getattr(doubled, name).dtype for name in arrays} == {name: getattr(batch, name).dtype for name in arrays}
    np.testing.assert_allclose(doubled.log_probs[4:], acting.log_prob(TOY_SYMMETRY.mirror_observations(raw),
                                                                      TOY_SYMMETRY.mirror_actions(batch.actions)),
                               rtol=1e-6)


def test_the_mirror_gap_measures_how_much_less_likely_the_mirrored_actions_are():
    from baselines_ppo.buffer import Batch

    def batch(log_probs):
        n = len(log_probs)
        zeros = np.zeros(n, np.float32)
        return Batch(np.zeros((n, 4), np.float32), np.zeros((n, 2), np.float32), np.asarray(log_probs, np.float32),
                     zeros, zeros, zeros)

    assert mirror_log_prob_gap(batch([-1.0, -2.0, -5.0, -6.0])) == 4.0  # real -1.5, mirrored -5.5
    assert mirror_log_prob_gap(batch([-3.0, -3.0])) == 0.0
    # a batch from the trainer: the acting policy's log-probabilities of the actions it took,
    # against those of their mirror images in the mirrored states, computed here from scratch
    _, doubled, stats, acting, _ = collected(config())
    observations = doubled.observations[:T].astype(np.float64)
    actions = doubled.actions[:T].astype(np.float64)
    real = acting.log_prob(observations, actions)
    mirrored = acting.log_prob(TOY_SYMMETRY.mirror_observations(observations), TOY_SYMMETRY.mirror_actions(actions))
    assert mirror_log_prob_gap(doubled) == pytest.approx(float(real.mean() - mirrored.mean()), rel=1e-4, abs=1e-4)


def test_training_with_mirroring_logs_the_gap(tmp_path):
    import csv

    from baselines_ppo.run import train

    train(lambda rank: ToyEnv(), config(), tmp_path, iterations=2, progress="none", tensorboard=False,
          symmetry=TOY_SYMMETRY)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(np.isfinite(float(row["train/mirror_logp_gap"])) for row in rows)


def test_the_doubled_update_takes_minibatches_of_the_configured_size():
    """2T samples in minibatches of 8: twice the gradient steps of an unmirrored epoch."""
    from baselines_ppo.trainer import update

    steps = {}
    for mirror in (False, True):
        cfg = config(mirror_augmentation=mirror)
        learner, batch, _, _, _ = collected(cfg)
        before = learner.flat.get().copy()
        seen = []
        step = learner.adam.step

        def counting_step(params, grad, lr, max_grad_norm=None):
            seen.append(grad.shape)
            return step(params, grad, lr, max_grad_norm)

        learner.adam.step = counting_step
        diagnostics = update(learner, batch, 1e-3, np.random.default_rng(0))
        steps[mirror] = len(seen)
        assert diagnostics["epochs"] == cfg.epochs and np.isfinite(diagnostics["value_loss"])
        assert (2 if mirror else 1) * cfg.steps_per_rank // cfg.minibatch_size * cfg.epochs == len(seen)
        assert not np.array_equal(learner.flat.get(), before)
    assert steps == {False: 3 * T // 8, True: 3 * 2 * T // 8}


def test_value_and_policy_gradients_see_the_mirrored_half():
    """The loss over the doubled batch is the mean of the losses over its halves:
    the critic fits the mirrored states to the same targets and the actor's
    surrogate includes the mirrored actions."""
    import tensorflow as tf

    learner, batch, _, _, _ = collected(config())
    model = learner.model
    coefficients = [tf.constant(v, tf.float32) for v in (0.2, 0.0, 1.0)]

    def grad_of(part):
        grad, stats = model.loss_and_gradient(batch.observations[part], batch.actions[part], batch.log_probs[part],
                                              batch.advantages[part], batch.returns[part], *coefficients)
        return grad.numpy(), stats

    whole, stats = grad_of(slice(None))
    real, _ = grad_of(slice(0, T))
    mirrored, mirrored_stats = grad_of(slice(T, None))
    np.testing.assert_allclose(whole, (real + mirrored) / 2, rtol=1e-4, atol=1e-6)
    assert not np.allclose(real, mirrored, atol=1e-6)
    assert float(mirrored_stats["approx_kl"]) < 1e-6 and float(mirrored_stats["clipfrac"]) == 0.0


# --- L2Run's symmetry (experiments layer) -----------------------------------------------


@pytest.mark.parametrize("features, size", [(True, 82), (False, 41)])
def test_l2run_symmetry_matches_observation_mirror(features, size):
    from experiments.envs import EnvConfig, env_symmetry
    from observation import mirror

    symmetry = env_symmetry(EnvConfig(features=features, frame_skip=4))
    assert (symmetry.observation_size, symmetry.action_size) == (size, 18)
    x = np.random.default_rng(0).normal(size=(3, size))
    expected = mirror.mirror_features(x) if features else mirror.mirror_observation(x)
    np.testing.assert_array_equal(symmetry.mirror_observations(x), expected)
    assert symmetry.act_perm.tolist() == list(range(9, 18)) + list(range(9))
    np.testing.assert_array_equal(symmetry.act_sign, np.ones(18))


# --- the symmetry loss (PPOConfig.symmetry_coef) ----------------------------------------


@pytest.mark.parametrize("changes, message", [
    (dict(symmetry_coef=-0.1), "symmetry_coef must be a number >= 0"),
    (dict(symmetry_coef=float("nan")), "symmetry_coef must be a number >= 0"),
    (dict(symmetry_coef=0.5, mirror_augmentation=True), "both ask for symmetry; turn one of them off"),
])
def test_a_bad_symmetry_coef_is_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        config(**{"mirror_augmentation": False, **changes})


def test_the_symmetry_loss_needs_a_symmetry():
    with pytest.raises(ValueError, match="ppo.symmetry_coef is on but no symmetry was given"):
        learner_for(config(mirror_augmentation=False, symmetry_coef=0.5), symmetry=None)


def symmetry_loss_by_hand(acting, observations, mirrored):
    mirrored_mean = TOY_SYMMETRY.mirror_actions(acting.mean_action(mirrored.astype(np.float64)))
    return float(np.mean(np.sum((acting.mean_action(observations.astype(np.float64)) - mirrored_mean) ** 2, axis=-1)))


def test_the_symmetry_loss_is_the_mean_squared_asymmetry_of_the_mean_action():
    cfg = config(mirror_augmentation=False, symmetry_coef=1.0, normalize_observations=True)
    learner, batch, stats, acting, rms_before = collected(cfg, iterations=2)
    assert len(batch.observations) == T  # not doubled
    std = np.sqrt(rms_before["var"] + 1e-8)
    expected_mirrored = np.clip((TOY_SYMMETRY.mirror_observations(stats.raw_observations) - rms_before["mean"]) / std,
                                -cfg.obs_clip, cfg.obs_clip)
    np.testing.assert_allclose(batch.mirrored_observations, expected_mirrored, rtol=1e-5, atol=1e-5)
    _, loss = learner.model.symmetry_loss_and_gradient(batch.observations, batch.mirrored_observations,
                                                       *learner.symmetry_arguments)
    expected = symmetry_loss_by_hand(acting, batch.observations, batch.mirrored_observations)
    assert expected > 0 and float(loss) == pytest.approx(expected, rel=1e-4)
    # a mirrored state's mirror is the state itself: the loss is symmetric in the two
    _, swapped = learner.model.symmetry_loss_and_gradient(batch.mirrored_observations, batch.observations,
                                                          *learner.symmetry_arguments)
    assert float(swapped) == pytest.approx(expected, rel=1e-4)


def test_the_symmetry_loss_compares_the_actions_the_env_applies():
    """With bounds, the means are clipped first: a difference beyond the bounds costs nothing."""
    from baselines_ppo.trainer import Learner

    cfg = config(mirror_augmentation=False, symmetry_coef=1.0)
    learner, batch, _, acting, _ = collected(cfg)
    bounded = Learner(cfg, 4, 2, np.random.default_rng(0), symmetry=TOY_SYMMETRY,
                      action_bounds=(np.full(2, -0.01), np.full(2, 0.02)))
    bounded.flat.set(learner.flat.get())
    _, loss = bounded.model.symmetry_loss_and_gradient(batch.observations, batch.mirrored_observations,
                                                       *bounded.symmetry_arguments)
    clip = lambda a: np.clip(a, -0.01, 0.02)  # noqa: E731
    mean = acting.mean_action(batch.observations.astype(np.float64))
    mirrored = TOY_SYMMETRY.mirror_actions(clip(acting.mean_action(batch.mirrored_observations.astype(np.float64))))
    expected = float(np.mean(np.sum((clip(mean) - mirrored) ** 2, axis=-1)))
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert expected < symmetry_loss_by_hand(acting, batch.observations, batch.mirrored_observations)


def test_the_symmetry_loss_makes_the_policy_more_symmetric():
    """The same batch and update with and without the term: only with it does the
    mean action's asymmetry fall, and PPO's own loss is computed as before."""
    from baselines_ppo.trainer import update

    asymmetry = {}
    for coef in (0.0, 5.0):
        cfg = config(mirror_augmentation=False, symmetry_coef=coef)
        learner, batch, _, acting, _ = collected(cfg)
        if batch.mirrored_observations is None:  # off: build the mirror images to measure with
            batch.mirrored_observations = TOY_SYMMETRY.mirror_observations(batch.observations)
        before = symmetry_loss_by_hand(acting, batch.observations, batch.mirrored_observations)
        diagnostics = update(learner, batch, 3e-3, np.random.default_rng(0))
        after = symmetry_loss_by_hand(learner.model.numpy_policy(), batch.observations, batch.mirrored_observations)
        asymmetry[coef] = after / before
        assert ("symmetry_loss" in diagnostics) == (coef > 0)
    assert asymmetry[5.0] < 0.5 * asymmetry[0.0]


def test_training_with_the_symmetry_loss_logs_it(tmp_path):
    import csv

    from baselines_ppo.run import train

    train(lambda rank: ToyEnv(), config(mirror_augmentation=False, symmetry_coef=0.5), tmp_path, iterations=2,
          progress="none", tensorboard=False, symmetry=TOY_SYMMETRY)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(row["losses/symmetry"]) > 0 for row in rows)
    assert "train/mirror_logp_gap" not in rows[0]
