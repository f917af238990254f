"""Checkpoints: atomic saves survive crashes, resume is bit-exact, mismatches fail clearly,
and a run directory in use by a live job is left alone."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from baselines_ppo import checkpoint
from baselines_ppo.checkpoint import (CheckpointData, CheckpointError, clean_abandoned, latest_checkpoint,
                                      list_checkpoints, load_checkpoint, save_checkpoint)
from baselines_ppo.config import PPOConfig
from baselines_ppo.progress import read_progress

pytestmark = pytest.mark.filterwarnings("ignore:TensorFlow was already running")


def pendulum(seed=None):
    return gym.make("Pendulum-v1")


def small_config(**changes):
    settings = dict(steps_per_rank=256, minibatch_size=64, epochs=2, gamma=0.9, learning_rate=1e-3,
                    total_timesteps=10_000, checkpoint_every=2, normalize_observations=True, hidden_sizes=(16, 16))
    settings.update(changes)
    return PPOConfig(**settings)


def pendulum_symmetry():
    """Pendulum is symmetric under theta -> -theta: (cos, sin, theta_dot) -> (cos, -sin, -theta_dot),
    torque -> -torque."""
    from baselines_ppo.symmetry import Symmetry

    return Symmetry(obs_perm=[0, 1, 2], obs_sign=[1, -1, -1], act_perm=[0], act_sign=[-1])


def train(run_dir, config, **kwargs):
    from baselines_ppo import train as run_training

    if config.mirror_augmentation:
        kwargs.setdefault("symmetry", pendulum_symmetry())
    return run_training(pendulum, config, run_dir, progress="none", tensorboard=False, **kwargs)


def fake_data(iteration, value=0.0):
    return CheckpointData(iteration=iteration, timesteps=100 * iteration, episodes=iteration, best_score=None,
                          weights={"w": np.full(3, value, np.float32)}, optimizer={"m": np.zeros(3)},
                          obs_rms={"mean": np.zeros(2)}, rng_states=[{"rank": 0}], config={"lr": 1},
                          spaces={"observation_size": 2, "action_size": 1}, metadata={"iteration": iteration})


def test_save_load_roundtrip_and_pruning(tmp_path):
    for iteration in range(1, 6):
        save_checkpoint(tmp_path, fake_data(iteration, value=iteration), keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000003", "ckpt-00000004", "ckpt-00000005"]
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "ckpt-00000005"
    data = load_checkpoint(latest)
    assert (data.iteration, data.timesteps, data.metadata) == (5, 500, {"iteration": 5})
    np.testing.assert_array_equal(data.weights["w"], np.full(3, 5.0, np.float32))
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, fake_data(1, value=1.0), keep=3)
    real_write = checkpoint._write_file

    def dies_midway(path, data):  # the process is killed half-way through state.json
        if path.name == "state.json":
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])
            raise OSError("killed")
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "_write_file", dies_midway)
    with pytest.raises(OSError, match="killed"):
        save_checkpoint(tmp_path, fake_data(2, value=2.0), keep=3)
    monkeypatch.setattr(checkpoint, "_write_file", real_write)

    stale = [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    assert stale, "the simulated crash should leave its temp directory"
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "ckpt-00000001"
    np.testing.assert_array_equal(load_checkpoint(latest).weights["w"], np.full(3, 1.0, np.float32))
    clean_abandoned(tmp_path, latest)
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp-")]


def test_crash_before_latest_is_updated_resumes_the_previous_one(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, fake_data(1), keep=3)

    def dies(path, data):
        raise OSError("killed before the pointer moved")

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", dies)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, fake_data(2), keep=3)
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / "ckpt-00000002").is_dir()  # complete, but never became latest
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "ckpt-00000001"
    clean_abandoned(tmp_path, latest)  # the abandoned timeline goes, aside: nothing is deleted
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000001"]
    assert [p.name for p in tmp_path.glob("superseded-*/checkpoints/*")] == ["ckpt-00000002"]
    save_checkpoint(tmp_path, fake_data(2), keep=3)
    assert latest_checkpoint(tmp_path).name == "ckpt-00000002"


def test_missing_pointer_falls_back_to_newest_complete_dir(tmp_path):
    save_checkpoint(tmp_path, fake_data(1), keep=3)
    save_checkpoint(tmp_path, fake_data(2), keep=3)
    (tmp_path / "checkpoints" / "latest").write_text("ckpt-00000099\n")
    assert latest_checkpoint(tmp_path).name == "ckpt-00000002"
    (tmp_path / "checkpoints" / "ckpt-00000003").mkdir()  # incomplete: ignored
    (tmp_path / "checkpoints" / "latest").unlink()
    assert latest_checkpoint(tmp_path).name == "ckpt-00000002"
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_damaged_checkpoint_error_names_the_path(tmp_path):
    path = save_checkpoint(tmp_path, fake_data(1), keep=3)
    arrays = path / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is damaged"):
        load_checkpoint(path)
    (path / "state.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete: .*state.json is missing"):
        load_checkpoint(path)


@pytest.mark.parametrize("levers", [{}, {"normalize_rewards": True},
                                    {"normalize_rewards": True, "reward_clip": 2.0, "mirror_augmentation": True}],
                         ids=["default", "normalize_rewards", "normalize_rewards+mirror"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, levers):
    config = small_config(**levers)
    straight = train(tmp_path / "straight", config, iterations=4)
    assert straight.iterations == 4

    split_dir = tmp_path / "split"
    train(split_dir, config, iterations=2)
    # debris of a run killed while saving iteration 4: must be ignored and removed
    junk = split_dir / "checkpoints" / ".tmp-ckpt-00000004-12345"
    junk.mkdir()
    (junk / "arrays.npz").write_bytes(b"half a file")
    resumed = train(split_dir, config, iterations=4, resume=True)
    assert resumed.iterations == 4 and not junk.exists()

    assert_same_training(tmp_path / "straight", split_dir, iteration=4)
    assert load_checkpoint(latest_checkpoint(split_dir)).timesteps == 1024
    assert straight.best_score == resumed.best_score is not None

    # asking for iterations that already exist does nothing
    assert train(split_dir, config, iterations=3, resume=True).iterations == 4


def assert_same_training(run_a, run_b, iteration):
    """Bit-identical checkpoints at ``iteration`` and the same logged learning curve."""
    a = load_checkpoint(run_a / "checkpoints" / checkpoint.checkpoint_name(iteration))
    b = load_checkpoint(run_b / "checkpoints" / checkpoint.checkpoint_name(iteration))
    assert (a.iteration, a.timesteps, a.episodes, a.best_score) == (b.iteration, b.timesteps, b.episodes,
                                                                    b.best_score)
    for section in ("weights", "optimizer", "obs_rms", "reward_rms"):
        left, right = getattr(a, section), getattr(b, section)
        assert left.keys() == right.keys()
        for key in left:
            assert np.array_equal(left[key], right[key]), f"{section}/{key} differs after resume"
    assert a.rng_states == b.rng_states
    rows_a = read_progress(run_a / "progress.csv")[1]
    rows_b = read_progress(run_b / "progress.csv")[1]
    assert [r["rollout/ep_return"] for r in rows_a] == [r["rollout/ep_return"] for r in rows_b]
    assert [r["losses/value"] for r in rows_a] == [r["losses/value"] for r in rows_b]


class CtrlCDuringStep(gym.Wrapper):
    """Sends this process SIGINT (a Ctrl-C, which the trainer turns into a stop request) at env step ``at``."""

    def __init__(self, env, at):
        super().__init__(env)
        self.at, self.steps = at, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.env.step(action)


def test_resume_from_a_stop_between_scheduled_checkpoints(tmp_path, monkeypatch):
    """A Ctrl-C during iteration 3 with checkpoint_every=2 saves at 3 and stops. Resumed, the run
    equals the uninterrupted run whose schedule also saves at 3 -- not the one that never saved
    there, since every save ends the episodes in progress (baselines_ppo.run docstring, "exact resume")."""
    from baselines_ppo import run

    config = small_config(normalize_rewards=True)  # its running return restarts at saves too
    split_dir = tmp_path / "split"
    during_iteration_3 = 2 * config.steps_per_rank + 100
    stopped = run.train(lambda seed: CtrlCDuringStep(pendulum(seed), at=during_iteration_3), config, split_dir,
                            iterations=4, progress="none", tensorboard=False)
    assert (stopped.interrupted, stopped.iterations) == (True, 3)
    assert latest_checkpoint(split_dir).name == "ckpt-00000003"
    resumed = train(split_dir, config, iterations=4, resume=True)
    assert (resumed.interrupted, resumed.iterations) == (False, 4)

    scheduled = run.checkpoint_due
    monkeypatch.setattr(run, "checkpoint_due", lambda it, cfg, target: scheduled(it, cfg, target) or it == 3)
    train(tmp_path / "saves_at_3", config, iterations=4)
    monkeypatch.undo()
    assert_same_training(tmp_path / "saves_at_3", split_dir, iteration=3)
    assert_same_training(tmp_path / "saves_at_3", split_dir, iteration=4)

    train(tmp_path / "never_stopped", config, iterations=4)
    never = load_checkpoint(tmp_path / "never_stopped" / "checkpoints" / "ckpt-00000004").weights
    again = load_checkpoint(split_dir / "checkpoints" / "ckpt-00000004").weights
    assert any(not np.array_equal(never[key], again[key]) for key in never)


@contextlib.contextmanager
def lock_held_elsewhere(run_dir):
    """Another process holding run_dir's lock, as a live training job does; yields its pid."""
    code = ("import sys; from baselines_ppo.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.stdin.close()  # the holder exits, the kernel drops its lock
        holder.wait(timeout=30)


def files_of(run_dir):
    """{relative path: bytes (None for a directory)} of everything under run_dir."""
    return {str(p.relative_to(run_dir)): (p.read_bytes() if p.is_file() else None) for p in run_dir.rglob("*")}


def test_a_run_dir_locked_by_another_job_fails_fast_and_is_left_untouched(tmp_path):
    from baselines_ppo.run_lock import RunDirBusy, RunLock
    from baselines_ppo import train as run_training

    run_dir = tmp_path / "live"
    save_checkpoint(run_dir, fake_data(1), keep=3)
    # what a live job has on disk while it saves iteration 2: a resume would clean all of it away
    saving = run_dir / "checkpoints" / ".tmp-ckpt-00000002-4242"
    saving.mkdir()
    (saving / "arrays.npz").write_bytes(b"being written")
    (run_dir / "checkpoints" / "ckpt-00000002").mkdir()  # renamed into place, `latest` not moved yet
    (run_dir / "progress.csv").write_text("time/iteration,time/timesteps\n1,256\n2,512\n")

    def no_env(seed):
        raise AssertionError("an env was built although the run dir is busy")

    with lock_held_elsewhere(run_dir) as pid:
        before = files_of(run_dir)
        message = (rf"another training job is using {re.escape(str(run_dir))} \(lock file "
                   rf"{re.escape(str(run_dir / '.lock'))}, held by pid {pid} on .*\); "
                   rf"stop it \(l2run stop {re.escape(str(run_dir))}\) or choose another --run-dir")
        with pytest.raises(RunDirBusy, match=message):
            run_training(no_env, small_config(), run_dir, iterations=4, resume=True, progress="none")
        assert files_of(run_dir) == before
    RunLock(run_dir).acquire().release()  # the holder is gone, and so is its lock


def test_whether_a_run_is_held_is_read_without_taking_its_lock(tmp_path, capsys):
    from baselines_ppo.run_lock import RunLock, is_held
    from baselines_ppo.run_lock import main as held_status  # the shell scripts' exit status

    run_dir = tmp_path / "live"
    assert is_held(run_dir) is False  # no lock file: nobody trains there
    assert held_status([str(run_dir)]) == 1
    RunLock(run_dir).acquire().release()
    assert is_held(run_dir) is False  # the file stays, the lock went with its holder
    with lock_held_elsewhere(run_dir):
        assert is_held(run_dir) is True
        assert held_status([str(run_dir)]) == 0
        assert is_held(run_dir) is True  # asking did not take it: the holder still has it
    assert is_held(run_dir) is False
    assert held_status([str(run_dir)]) == 1
    with pytest.raises(SystemExit) as usage:
        held_status([])
    assert usage.value.code == 2 and "the following arguments are required: RUN_DIR" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trained")
    train(run_dir, small_config(hidden_sizes=(8,)), iterations=1)
    return run_dir


def test_existing_checkpoint_without_resume_is_an_error(trained_dir):
    with pytest.raises(CheckpointError, match=r"already holds checkpoint ckpt-00000001: pass resume=True"):
        train(trained_dir, small_config(hidden_sizes=(8,)), iterations=2)


def test_incompatible_network_is_an_error_naming_both_values(trained_dir):
    with pytest.raises(CheckpointError, match=r"hidden_sizes = \[8\], but this run has hidden_sizes = \[16, 16\]"):
        train(trained_dir, small_config(hidden_sizes=(16, 16)), iterations=2, resume=True)
    with pytest.raises(CheckpointError, match=r"activation = tanh, but this run has activation = relu"):
        train(trained_dir, small_config(hidden_sizes=(8,), activation="relu"), iterations=2, resume=True)


def test_incompatible_spaces_is_an_error_naming_both_values(trained_dir, tmp_path):
    from baselines_ppo import train as run_training

    run_dir = tmp_path / "copy"
    shutil.copytree(trained_dir, run_dir)
    with pytest.raises(CheckpointError, match=r"observation_size = 3, but this run has observation_size = 2"):
        run_training(lambda seed: gym.make("MountainCarContinuous-v0"), small_config(hidden_sizes=(8,)), run_dir,
                     iterations=2, resume=True, progress="none", tensorboard=False)
