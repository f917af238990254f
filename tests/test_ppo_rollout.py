"""Tier a: the collector on a scripted env (episode bookkeeping, bootstrapping, clipping)
and the logger's CSV handling, in one process."""
import math

import gymnasium as gym
import numpy as np
import pytest

from baselines_ppo.buffer import RolloutBuffer
from baselines_ppo.logger import Logger
from baselines_ppo.numpy_policy import NumpyActorCritic
from baselines_ppo.progress import read_progress
from baselines_ppo.normalizers import ObservationNormalizer
from baselines_ppo.rollout import Collector


class ScriptedEnv(gym.Env):
    """obs = [t]; episode 1 falls (terminated) at t=3, later ones hit the time limit at t=5."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self):
        self.received, self.episode, self.t = [], 0, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return np.array([0.0]), {}

    def step(self, action):
        self.received.append(np.array(action))
        self.t += 1
        info = {"distance": 0.5, "reward_terms": {"speed": 1.0, "effort": -0.5}}
        if self.episode == 2 and self.t == 2:
            info["sim_error"] = "integrator failed"
        terminated = self.episode == 1 and self.t == 3
        return np.array([float(self.t)]), 1.0, terminated, self.t == 5, info


def test_collector_episode_stats_bootstrap_values_and_clipping():
    env = ScriptedEnv()
    # actor: mean (5, -5) whatever the obs, almost no noise; critic: V(obs) = obs
    policy = NumpyActorCritic(actor=[(np.zeros((1, 2)), np.array([5.0, -5.0]))],
                              critic=[(np.ones((1, 1)), np.zeros(1))], log_std=np.full(2, -20.0),
                              activation="tanh")
    collector = Collector(env)
    collector.reset(seed=0)
    buffer = RolloutBuffer(10, 1, 2)
    stats = collector.collect(policy, ObservationNormalizer(1, False, 5.0), buffer,
                              np.random.default_rng(0))

    first, second = stats.episodes
    assert (first.ret, first.length, first.terminated, first.distance) == (3.0, 3, True, 1.5)
    assert first.reward_terms == {"speed": 3.0, "effort": -1.5}
    assert (second.ret, second.length, second.terminated, second.distance) == (5.0, 5, False, 2.5)
    assert stats.sim_errors == 1
    # steps 0-2: episode 1 (fell at step 2); 3-7: episode 2 (time limit at 7); 8-9: episode 3, cut by the batch
    assert np.flatnonzero(buffer.terminated).tolist() == [2]
    assert np.flatnonzero(buffer.truncated).tolist() == [7]
    assert buffer.final_values[7] == 5.0  # V(true final observation t=5), evaluated before the reset
    assert stats.last_value == 2.0  # V(obs after the last step): episode 3 is at t=2
    np.testing.assert_array_equal(stats.raw_observations[:, 0], [0, 1, 2, 0, 1, 2, 3, 4, 0, 1])
    next_values = buffer.next_values(stats.last_value)
    assert next_values[2] == 0.0 and next_values[7] == 5.0 and next_values[9] == 2.0 and next_values[3] == 1.0
    # the env got clipped actions, the buffer keeps the sampled ones for the log-probability
    np.testing.assert_allclose(np.array(env.received), np.tile([1.0, -1.0], (10, 1)))
    np.testing.assert_allclose(buffer.actions, np.tile([5.0, -5.0], (10, 1)), atol=1e-6)
    assert stats.env_seconds > 0 and stats.policy_seconds > 0


def test_collector_requires_a_reset():
    collector = Collector(ScriptedEnv())
    with pytest.raises(RuntimeError, match="reset"):
        collector.collect(None, None, RolloutBuffer(2, 1, 2), np.random.default_rng(0))


def test_logger_csv_extends_header_and_trims_on_resume(tmp_path, capsys):
    logger = Logger(tmp_path, total_timesteps=100, progress="lines", tensorboard=False)
    for iteration in (1, 2):
        logger.store("time/iteration", iteration)
        logger.store("time/timesteps", 10 * iteration)
        logger.store("rollout/ep_return", [] if iteration == 1 else [1.0, 3.0])
        logger.store("rollout/episodes", 0 if iteration == 1 else 2, reduce="sum")
        logger.dump()
    logger.store("time/iteration", 3)
    logger.store("time/timesteps", 30)
    logger.store("rollout/ep_return", [5.0])
    logger.store("reward/speed", [2.0, 4.0])  # a new key: the header grows
    logger.store("rollout/distance_max", [1.0, 7.0], reduce="max")
    row = logger.dump()
    logger.close()
    assert row["reward/speed"] == 3.0 and row["rollout/distance_max"] == 7.0
    header, rows = read_progress(tmp_path / "progress.csv")
    assert header[:2] == ["time/iteration", "time/timesteps"] and "reward/speed" in header
    assert [r["time/iteration"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["rollout/ep_return"] == "nan"  # no finished episode
    assert float(rows[1]["rollout/ep_return"]) == 2.0
    assert rows[0]["reward/speed"] == "nan" and float(rows[2]["reward/speed"]) == 3.0
    assert "iter 3 | steps 30" in capsys.readouterr().out

    resumed = Logger(tmp_path, total_timesteps=100, resume_iteration=2, progress="none", tensorboard=False)
    assert [r["time/iteration"] for r in read_progress(tmp_path / "progress.csv")[1]] == ["1", "2"]
    resumed.store("time/iteration", 3)
    resumed.store("time/timesteps", 30)
    resumed.dump()
    resumed.close()
    header, rows = read_progress(tmp_path / "progress.csv")
    assert [r["time/iteration"] for r in rows] == ["1", "2", "3"]
    assert "reward/speed" in header and math.isnan(float(rows[2]["reward/speed"]))

    Logger(tmp_path, total_timesteps=100, progress="none", tensorboard=False).close()  # a new run
    assert not (tmp_path / "progress.csv").exists()


def tensorboard_points(tb_dir, tag):
    """[(session dir, step, value)] of scalar ``tag`` in every event file under tb_dir."""
    import tensorflow as tf

    points = []
    for path in sorted(tb_dir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            points += [(path.parent.name, event.step, float(tf.make_ndarray(value.tensor)))
                       for value in event.summary.value if value.tag == tag]
    return points


def log_iterations(logger, iterations, value):
    for iteration in iterations:
        logger.store("time/iteration", iteration)
        logger.store("time/timesteps", 10 * iteration)
        logger.store("losses/value", value + iteration)
        logger.dump()
    logger.close()


def test_tensorboard_sessions_do_not_overlap_after_resume(tmp_path):
    tb = tmp_path / "tb"
    log_iterations(Logger(tmp_path, total_timesteps=100, progress="none"), [1, 2, 3], value=0.0)
    assert [p[:2] for p in tensorboard_points(tb, "losses/value")] == \
        [("session-00000000", 10), ("session-00000000", 20), ("session-00000000", 30)]
    # the job was killed during iteration 4, its last checkpoint is at iteration 2 (20 steps):
    # a record cut mid-write ends the first session's file, and an earlier attempt that also
    # resumed from 2 left a session of its own; both belong to the abandoned timeline
    first_file = next((tb / "session-00000000").iterdir())
    with open(first_file, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x00")
    log_iterations(Logger(tmp_path, total_timesteps=100, progress="none", resume_iteration=2,
                          resume_timesteps=20), [3, 4, 5, 6], value=100.0)
    log_iterations(Logger(tmp_path, total_timesteps=100, progress="none", resume_iteration=2,
                          resume_timesteps=20), [3, 4], value=200.0)

    points = tensorboard_points(tb, "losses/value")
    assert points == [("session-00000000", 10, 1.0), ("session-00000000", 20, 2.0),
                      ("session-00000002", 30, 203.0), ("session-00000002", 40, 204.0)]
    assert sorted(p.name for p in tb.iterdir()) == ["session-00000000", "session-00000002"]
    # progress.csv says the same
    rows = read_progress(tmp_path / "progress.csv")[1]
    assert [(r["time/timesteps"], float(r["losses/value"])) for r in rows] == \
        [(str(step), value) for _, step, value in points]

    Logger(tmp_path, total_timesteps=100, progress="none", tensorboard=False).close()  # a new run
    assert not tb.exists()


def test_tensorboard_events_written_before_sessions_existed_are_trimmed_too(tmp_path):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path / "tb"))  # the old layout: events directly in tb/
    with writer.as_default():
        for step in (10, 20, 30):
            tf.summary.scalar("losses/value", float(step), step=step)
    writer.close()
    Logger(tmp_path, total_timesteps=100, progress="none", resume_iteration=2, resume_timesteps=20).close()
    assert tensorboard_points(tmp_path / "tb", "losses/value") == [("tb", 10, 10.0), ("tb", 20, 20.0)]
