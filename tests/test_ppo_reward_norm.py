"""Tier a: reward normalisation (PPOConfig.normalize_rewards) against hand computations."""
import gymnasium as gym
import numpy as np
import pytest

from baselines_ppo.buffer import RolloutBuffer, compute_gae
from baselines_ppo.config import PPOConfig
from baselines_ppo.normalizers import RewardNormalizer
from toy_env import ToyEnv

pytestmark = pytest.mark.filterwarnings("ignore:TensorFlow was already running")


def test_running_discounted_return_carries_over_batches_and_resets_at_episode_ends():
    normalizer = RewardNormalizer(True, gamma=0.5, clip=10.0)
    returns = normalizer.discounted_returns(np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
                                            np.array([False, True, False, False, False]))
    np.testing.assert_allclose(returns, [1.0, 2.0 + 0.5 * 1.0, 3.0, 4.0 + 0.5 * 3.0, 5.0 + 0.5 * 5.5])
    # the episode in progress continues into the next batch ...
    np.testing.assert_allclose(normalizer.discounted_returns(np.array([1.0]), np.array([True])), [1.0 + 0.5 * 7.75])
    np.testing.assert_allclose(normalizer.discounted_returns(np.array([2.0]), np.array([False])), [2.0])
    # ... unless a new one was started (the trainer resets at every checkpoint)
    normalizer.reset()
    np.testing.assert_allclose(normalizer.discounted_returns(np.array([3.0]), np.array([False])), [3.0])


def test_rewards_divided_by_the_return_std_and_clipped():
    normalizer = RewardNormalizer(True, gamma=0.99, clip=10.0)
    normalizer.update_from_moments(5.0, 4.0, 100)  # count 1e-4 + 100: var ~ 4, std ~ 2
    rewards = np.array([1.0, -3.0, 50.0, -50.0])
    normalised = normalizer(rewards)
    std = np.sqrt(normalizer.var + 1e-8)
    assert std == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_allclose(normalised, [1.0 / std, -3.0 / std, 10.0, -10.0])  # divided, not centred
    normalizer.enabled = False
    np.testing.assert_array_equal(normalizer(rewards), rewards)


def test_collect_normalises_rewards_for_the_targets_only():
    from baselines_ppo.rollout import Collector
    from baselines_ppo.trainer import Learner, collect

    gamma, lam = 0.9, 0.95
    config = PPOConfig(steps_per_rank=32, minibatch_size=8, hidden_sizes=(8,), gamma=gamma, lam=lam,
                       normalize_rewards=True, reward_clip=1.5, reward_scale=0.5, normalize_advantages=False)
    learner = Learner(config, 4, 2, np.random.default_rng(0))
    collector = Collector(ToyEnv())
    collector.reset(seed=3)
    buffer = RolloutBuffer(32, 4, 2)
    rng = np.random.default_rng(1)
    reference = RewardNormalizer(True, gamma, 1.5)  # follows the trainer's by hand
    for iteration in range(2):
        batch, stats, acting = collect(collector, learner, buffer, rng)
        rewards, ends = buffer.rewards.copy(), buffer.terminated | buffer.truncated
        returns = reference.discounted_returns(rewards, ends)
        reference.update_from_moments(returns.mean(), returns.var(), len(returns))
        np.testing.assert_allclose(learner.reward_normalizer.mean, reference.mean, rtol=1e-12)
        np.testing.assert_allclose(learner.reward_normalizer.var, reference.var, rtol=1e-12)
        assert learner.reward_normalizer.count == pytest.approx(32 * (iteration + 1) + 1e-4)

        # GAE of reward_scale * clip(r / std(returns), +-clip), with the statistics including this batch
        normalised = 0.5 * np.clip(rewards / np.sqrt(reference.var + 1e-8), -1.5, 1.5)
        assert np.abs(normalised).max() < np.abs(rewards).max()  # the rewards were rescaled indeed
        next_values = np.append(buffer.values[1:], stats.last_value)
        next_values[buffer.truncated] = buffer.final_values[buffer.truncated]
        advantages = compute_gae(normalised, buffer.values, next_values, ends, gamma, lam)
        np.testing.assert_allclose(batch.advantages, advantages, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch.returns, advantages + buffer.values, rtol=1e-5, atol=1e-6)

        # the logged episode returns stay raw: the 10-step episodes that ended in this batch
        ends_at = np.flatnonzero(ends)
        raw_returns = [rewards[end - 9:end + 1].sum() for end in ends_at if end >= 9]
        np.testing.assert_allclose([e.ret for e in stats.episodes][-len(raw_returns):], raw_returns)


def test_reward_statistics_go_into_checkpoints_not_into_the_policy(tmp_path):
    from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
    from baselines_ppo.progress import read_progress
    from baselines_ppo import train

    config = PPOConfig(steps_per_rank=256, minibatch_size=64, epochs=2, hidden_sizes=(8,), normalize_rewards=True)
    train(lambda seed: gym.make("Pendulum-v1"), config, tmp_path, iterations=2, progress="none", tensorboard=False)
    data = load_checkpoint(latest_checkpoint(tmp_path))
    assert set(data.reward_rms) == {"mean", "var", "count"}
    assert float(data.reward_rms["count"]) == pytest.approx(512 + 1e-4)
    assert float(data.reward_rms["var"]) > 100.0  # Pendulum's discounted returns span hundreds
    with np.load(tmp_path / "policy.npz") as policy:
        assert not [name for name in policy.files if "reward" in name]
    rows = read_progress(tmp_path / "progress.csv")[1]
    assert float(rows[-1]["rollout/ep_return"]) < -100.0  # logged raw, not normalised
