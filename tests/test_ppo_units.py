"""Tier a: pure pieces of baselines_ppo in one process, against hand computations."""
import math

import numpy as np
import pytest

from baselines_ppo.buffer import RolloutBuffer, compute_gae
from baselines_ppo.config import PPOConfig
from baselines_ppo.mpi_adam import MpiAdam
from baselines_ppo.numpy_policy import NumpyActorCritic, gaussian_log_prob
from baselines_ppo.normalizers import ObservationNormalizer, RunningMeanStd

GAMMA, LAM = 0.9, 0.8
REWARDS = [1.0, 2.0, 3.0]
VALUES = [0.5, 0.4, 0.3]
LAST_VALUE = 0.2  # V(s) after the last step: the batch ends mid-episode


def filled_buffer(terminated=(False, False, False), truncated=(False, False, False), final_values=(0, 0, 0)):
    buffer = RolloutBuffer(3, 1, 1)
    for t in range(3):
        buffer.add([t], [0.0], 0.0, VALUES[t], REWARDS[t], terminated[t], truncated[t], final_values[t])
    return buffer


def advantages_of(buffer):
    batch = buffer.finish(LAST_VALUE, GAMMA, LAM, normalize_advantages=False)
    np.testing.assert_allclose(batch.returns, batch.advantages + np.float32(VALUES), rtol=1e-6)
    return batch.advantages


def test_gae_no_episode_end_bootstraps_from_the_batch_end():
    # delta_t = r_t + gamma V_{t+1} - V_t ; A_t = delta_t + gamma lam A_{t+1}
    a2 = 3 + 0.9 * 0.2 - 0.3  # 2.88
    a1 = 2 + 0.9 * 0.3 - 0.4 + 0.72 * a2  # 1.87 + 0.72 * 2.88
    a0 = 1 + 0.9 * 0.4 - 0.5 + 0.72 * a1
    np.testing.assert_allclose(advantages_of(filled_buffer()), [a0, a1, a2], rtol=1e-6)


def test_gae_termination_uses_zero_and_stops_the_recursion():
    a1 = 2 - 0.4  # the skeleton fell after step 1: no future
    a0 = 1 + 0.9 * 0.4 - 0.5 + 0.72 * a1
    a2 = 3 + 0.9 * 0.2 - 0.3  # a new episode, bootstrapped from the batch end
    np.testing.assert_allclose(advantages_of(filled_buffer(terminated=(False, True, False))), [a0, a1, a2],
                               rtol=1e-6)


def test_gae_truncation_bootstraps_from_the_true_final_observation():
    final = 5.0  # V(final observation) seen before the reset
    a1 = 2 + 0.9 * final - 0.4
    a0 = 1 + 0.9 * 0.4 - 0.5 + 0.72 * a1
    a2 = 3 + 0.9 * 0.2 - 0.3
    got = advantages_of(filled_buffer(truncated=(False, True, False), final_values=(0, final, 0)))
    np.testing.assert_allclose(got, [a0, a1, a2], rtol=1e-6)


def test_gae_fall_at_the_time_limit_counts_as_termination():
    both = filled_buffer(terminated=(False, True, False), truncated=(False, True, False), final_values=(0, 5.0, 0))
    np.testing.assert_allclose(advantages_of(both), advantages_of(filled_buffer(terminated=(False, True, False))))


def test_gae_lambda_one_is_discounted_return_minus_value():
    rewards, values = np.array([1.0, -2.0, 0.5, 4.0]), np.array([0.1, 0.2, 0.3, 0.4])
    next_values = np.append(values[1:], 0.0)
    adv = compute_gae(rewards, values, next_values, np.array([0, 0, 0, 1], bool), 0.99, 1.0)
    returns = [sum(0.99 ** k * r for k, r in enumerate(rewards[t:])) for t in range(4)]
    np.testing.assert_allclose(adv, np.array(returns) - values)


def test_advantages_normalised_and_returns_left_raw():
    buffer = filled_buffer()
    batch = buffer.finish(LAST_VALUE, GAMMA, LAM, normalize_advantages=True)
    assert abs(batch.advantages.mean()) < 1e-6 and abs(batch.advantages.std() - 1) < 1e-3
    raw = filled_buffer().finish(LAST_VALUE, GAMMA, LAM, normalize_advantages=False)
    np.testing.assert_allclose(batch.returns, raw.returns)


def test_reward_scale_scales_the_targets():
    scaled = filled_buffer().finish(0.0, GAMMA, 1.0, False, reward_scale=0.1)
    buffer = RolloutBuffer(3, 1, 1)
    for t in range(3):
        buffer.add([t], [0.0], 0.0, VALUES[t], REWARDS[t] * 0.1, False, False)
    np.testing.assert_allclose(scaled.returns, buffer.finish(0.0, GAMMA, 1.0, False).returns)


def test_running_mean_std_matches_numpy_and_merges_moments():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(5, 3, (n, 4)) for n in (7, 1, 30)]
    everything = np.concatenate(chunks)
    rms = RunningMeanStd((4,), epsilon=1e-12)
    for chunk in chunks:
        rms.update_pooled(chunk)  # a world of one rank: this process's samples
    np.testing.assert_allclose(rms.mean, everything.mean(0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, everything.var(0), rtol=1e-9)
    # merging the moments of two halves (what two ranks contribute) = one pass over all
    merged = RunningMeanStd((4,), epsilon=1e-12)
    for half in (everything[:20], everything[20:]):
        merged.update_from_moments(half.mean(0), half.var(0), len(half))
    np.testing.assert_allclose(merged.mean, rms.mean, rtol=1e-9)
    np.testing.assert_allclose(merged.var, rms.var, rtol=1e-9)
    normalize = ObservationNormalizer(4, enabled=True, clip=100.0)
    normalize.load_state_dict(rms.state_dict())
    normalised = normalize(everything)
    np.testing.assert_allclose(normalised.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(normalised.std(0), 1, rtol=1e-6)
    normalize.clip = 5.0
    assert np.abs(normalize(everything * 100)).max() == 5.0
    restored = RunningMeanStd((4,))
    restored.load_state_dict(rms.state_dict())
    np.testing.assert_array_equal(restored.mean, rms.mean)
    with pytest.raises(ValueError, match=r"shape \(4,\).*\(3,\)"):
        RunningMeanStd((3,)).load_state_dict(rms.state_dict())


@pytest.mark.parametrize("changes, message", [
    ({"steps_per_rank": 100, "minibatch_size": 64}, r"steps_per_rank \(100\) must be divisible by ppo.minibatch_size \(64\)"),
    ({"steps_per_rank": 32, "minibatch_size": 64}, r"minibatch_size \(64\) must not exceed"),
    ({"learning_rate": -1e-3}, r"ppo.learning_rate must be a positive number, got -0.001"),
    ({"learning_rate": 0}, r"ppo.learning_rate must be a positive number, got 0"),
    ({"gamma": 1.5}, r"ppo.gamma must be in \(0, 1\], got 1.5"),
    ({"lam": -0.1}, r"ppo.lam must be in \[0, 1\], got -0.1"),
    ({"hidden_sizes": (64, 0)}, r"hidden_sizes must be a non-empty list of positive integers, got \(64, 0\)"),
    ({"hidden_sizes": ()}, r"hidden_sizes must be"),
    ({"activation": "sigmoid"}, r"activation must be one of tanh, relu, elu, got 'sigmoid'"),
    ({"lr_schedule": "cosine"}, r"lr_schedule must be one of linear, constant, piecewise, got 'cosine'"),
    ({"epochs": 0}, r"ppo.epochs must be a positive integer, got 0"),
    ({"epochs": 2.5}, r"ppo.epochs must be a positive integer, got 2.5"),
    ({"target_kl": 0.0}, r"ppo.target_kl must be a positive number or None \(off\), got 0.0"),
    ({"max_grad_norm": -1.0}, r"max_grad_norm must be a positive number or None"),
    ({"entropy_coef": -0.01}, r"entropy_coef must be >= 0, got -0.01"),
    ({"normalize_observations": 1}, r"normalize_observations must be true or false, got 1"),
    ({"normalize_rewards": "yes"}, r"normalize_rewards must be true or false, got 'yes'"),
    ({"mirror_augmentation": 1}, r"mirror_augmentation must be true or false, got 1"),
    ({"reward_clip": 0.0}, r"reward_clip must be a positive number, got 0.0"),
    ({"seed": -1}, r"ppo.seed must be a non-negative integer, got -1"),
    ({"clip_range": math.inf}, r"clip_range must be a positive number, got inf"),
])
def test_config_validation_names_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**changes)


def test_config_defaults_are_ppo1_and_schedule():
    config = PPOConfig()
    assert (config.hidden_sizes, config.activation, config.steps_per_rank, config.epochs, config.minibatch_size,
            config.clip_range, config.gamma, config.lam, config.learning_rate, config.adam_eps,
            config.entropy_coef) == ((64, 64), "tanh", 2048, 10, 64, 0.2, 0.99, 0.95, 3e-4, 1e-5, 0.0)
    assert config.learning_rate_at(0) == 3e-4
    assert config.learning_rate_at(config.total_timesteps // 2) == pytest.approx(1.5e-4)
    assert config.learning_rate_at(2 * config.total_timesteps) == 0.0
    assert PPOConfig(lr_schedule="constant").learning_rate_at(10 ** 9) == 3e-4
    assert PPOConfig(total_timesteps=10_000, steps_per_rank=2048).total_iterations(2) == 3
    assert (config.mirror_augmentation, config.normalize_rewards, config.reward_clip) == (False, False, 10.0)


def test_adam_first_step_and_gradient_clipping():
    adam = MpiAdam(3, epsilon=1e-8)
    params = np.array([1.0, 2.0, 3.0], np.float32)
    grad = np.array([0.5, -2.0, 0.0])
    new, norm = adam.step(params, grad, lr=0.1)
    assert norm == pytest.approx(math.sqrt(4.25))
    np.testing.assert_allclose(new, params - 0.1 * np.sign(grad), atol=1e-5)  # Adam's first step: lr * sign(g)
    state = adam.state_dict()
    clone = MpiAdam(3, epsilon=1e-8)
    clone.load_state_dict(state)
    a, _ = adam.step(new, grad, 0.1)
    b, _ = clone.step(new, grad, 0.1)
    np.testing.assert_array_equal(a, b)
    # clipping the global norm to 1 scales the gradient before the moments see it
    clipped, unclipped = MpiAdam(3), MpiAdam(3)
    clipped.step(params, grad * 100, 0.1, max_grad_norm=1.0)
    unclipped.step(params, grad * 100 / np.linalg.norm(grad * 100), 0.1)
    np.testing.assert_allclose(clipped.m, unclipped.m, rtol=1e-6)
    with pytest.raises(ValueError, match="3 Adam moments.*4 parameters"):
        MpiAdam(4).load_state_dict(state)


def test_numpy_log_prob_is_a_diagonal_gaussian():
    rng = np.random.default_rng(0)
    mean, log_std = rng.normal(size=(5, 3)), np.array([-0.5, 0.0, 0.3])
    actions = rng.normal(size=(5, 3))
    std = np.exp(log_std)
    expected = np.sum(-0.5 * ((actions - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(gaussian_log_prob(actions, mean, log_std), expected)


def test_tf_and_numpy_networks_agree():
    from baselines_ppo.policy import ActorCritic

    rng = np.random.default_rng(3)
    model = ActorCritic(6, 2, (16, 8), "tanh", -0.5, rng)
    acting: NumpyActorCritic = model.numpy_policy()
    obs = rng.normal(size=(10, 6)).astype(np.float32)
    np.testing.assert_allclose(acting.mean_action(obs), model.mean_action(obs).numpy(), atol=1e-5)
    np.testing.assert_allclose(acting.value(obs), model.value(obs).numpy(), atol=1e-5)
    actions, log_probs, _ = acting.sample(obs, np.random.default_rng(0))
    np.testing.assert_allclose(log_probs, model.log_prob(obs, actions.astype(np.float32)).numpy(), atol=1e-4)
    entropy = float(model.entropy())
    assert entropy == pytest.approx(2 * (-0.5 + 0.5 * math.log(2 * math.pi * math.e)), rel=1e-5)


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_target_kl_stops_the_epochs_early(tmp_path):
    import gymnasium as gym

    from baselines_ppo.progress import read_progress
    from baselines_ppo import train

    config = PPOConfig(steps_per_rank=256, minibatch_size=32, epochs=10, learning_rate=1e-2, target_kl=1e-6,
                       hidden_sizes=(8,))
    train(lambda seed: gym.make("Pendulum-v1"), config, tmp_path, iterations=1, progress="none", tensorboard=False)
    row = read_progress(tmp_path / "progress.csv")[1][0]
    assert row["train/epochs"] == "1" and float(row["train/approx_kl"]) > 1.5e-6


def test_clipped_surrogate_kl_and_clipfrac_against_a_hand_computation():
    """policy.ActorCritic.loss_and_gradient on chosen ratios r = pi_new / pi_old and
    advantages A, clip 0.2: the objective per sample is min(r A, clip(r, 0.8, 1.2) A)."""
    import tensorflow as tf

    from baselines_ppo.policy import ActorCritic

    model = ActorCritic(1, 1, (4,), "tanh", 0.0, np.random.default_rng(0))
    # zero output layers: action mean 0 and V = 0 for every observation, std = exp(0) = 1
    model.set_weights({name: (np.zeros_like(value) if name.endswith("_1") else value)
                       for name, value in model.get_weights().items()})
    ratios = np.array([1.5, 1.5, 0.5, 0.5, 1.1, 0.9])
    advantages = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -2.0])
    per_sample = [1.2,    # r above 1 + clip, A > 0: the gain is capped at 1.2 A (clipped, no gradient)
                  -1.5,   # r above 1 + clip, A < 0: the loss is NOT capped, the unclipped r A is smaller
                  0.5,    # r below 1 - clip, A > 0: unclipped r A is smaller, kept
                  -0.8,   # r below 1 - clip, A < 0: capped at 0.8 A (clipped, no gradient)
                  2.2,    # inside the range: r A
                  -1.8]
    actions = np.array([0.3, -1.2, 0.7, 2.0, -0.5, 1.1])
    log_probs = -0.5 * actions ** 2 - 0.5 * math.log(2 * math.pi)  # N(0, 1) densities
    returns = np.array([1.0, 2.0, -1.0, 0.5, 0.0, 3.0])

    def run(idx, vf_coef=1.0):
        """(flat gradient, stats) over samples idx; old log-probs set so that new / old = ratios."""
        def f32(x):
            return tf.constant(x, tf.float32)
        grad, stats = model.loss_and_gradient(
            f32(np.zeros((len(idx), 1))), f32(actions[idx, None]), f32((log_probs - np.log(ratios))[idx]),
            f32(advantages[idx]), f32(returns[idx]), f32(0.2), f32(0.0), f32(vf_coef))
        return grad.numpy(), {k: float(v) for k, v in stats.items()}

    everything = np.arange(6)
    grad, stats = run(everything)
    assert stats["policy_loss"] == pytest.approx(-np.mean(per_sample), rel=1e-5)  # = 0.2 / 6
    assert stats["policy_loss"] == pytest.approx(0.2 / 6, rel=1e-5)
    kl = np.mean((ratios - 1) - np.log(ratios))  # (r - 1) - log r per sample, each >= 0
    assert stats["approx_kl"] == pytest.approx(kl, rel=1e-5)
    assert kl == pytest.approx((0.5 - math.log(1.5)) * 2 / 6 + (-0.5 - math.log(0.5)) * 2 / 6
                               + (0.1 - math.log(1.1)) / 6 + (-0.1 - math.log(0.9)) / 6)
    assert stats["clipfrac"] == pytest.approx(4 / 6)  # |r - 1| > 0.2, clipped term active or not
    assert stats["value_loss"] == pytest.approx(np.mean(returns ** 2), rel=1e-6)  # V = 0
    assert stats["entropy"] == pytest.approx(0.5 * math.log(2 * math.pi * math.e), rel=1e-6)

    # d loss / d log_std: only unclipped samples contribute, -r A (a^2 - 1) / N each
    # (d log N(a; 0, e^s) / ds = a^2 e^-2s - 1 at s = 0)
    log_std_index = sum(int(np.prod(v.shape)) for layer in model.actor for v in layer)
    unclipped = np.array([False, True, True, False, True, True])
    expected = -np.sum((ratios * advantages * (actions ** 2 - 1))[unclipped]) / 6
    assert grad[log_std_index] == pytest.approx(expected, rel=1e-4)
    # samples whose clipped term is the minimum give no policy gradient at all
    clipped_grad, clipped_stats = run(np.array([0, 3]), vf_coef=0.0)
    assert clipped_stats["policy_loss"] == pytest.approx(-(1.2 - 0.8) / 2, rel=1e-5)
    assert clipped_stats["clipfrac"] == 1.0
    np.testing.assert_array_equal(clipped_grad, 0.0)
