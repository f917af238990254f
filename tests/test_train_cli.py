"""`l2run train` end to end: the real L2Run env over `--ranks 2`, resume, errors,
graceful stop on Ctrl-C, and a rank killed mid-run."""
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines_ppo.checkpoint import latest_checkpoint
from baselines_ppo.progress import read_progress
from experiments.config import config_from_dict, config_to_toml, load_config
from mpi_cases import MPIRUN, REPO, mpi_env

L2RUN = Path(sys.executable).parent / "l2run"


def l2run(*args, timeout=180):
    return subprocess.run([str(L2RUN), *map(str, args)], env=mpi_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def tiny_quick_config(tmp_path, max_steps=100, **ppo) -> Path:
    """The bundled quick config with a tiny batch and short episodes (so episodes finish); ``ppo`` overrides."""
    quick = load_config("quick")
    settings = dict(steps_per_rank=128, minibatch_size=64, epochs=2, checkpoint_every=2)
    settings.update(ppo)
    config = dataclasses.replace(quick, env=dataclasses.replace(quick.env, max_steps=max_steps),
                                 ppo=dataclasses.replace(quick.ppo, **settings))
    path = tmp_path / "quick_tiny.toml"
    path.write_text(config_to_toml(config))
    return path


def pendulum_toml(tmp_path, **ppo) -> Path:
    settings = dict(steps_per_rank=256, minibatch_size=64, epochs=2, total_timesteps=10_000_000,
                    checkpoint_every=1000, hidden_sizes=[16])
    settings.update(ppo)
    path = tmp_path / "pendulum.toml"
    path.write_text(config_to_toml(config_from_dict({"name": "pendulum", "gym_id": "Pendulum-v1", "ppo": settings})))
    return path


def rows_of(run_dir):
    return read_progress(run_dir / "progress.csv")[1]


@pytest.mark.slow
@pytest.mark.mpi
def test_train_real_env_two_ranks_then_resume(tmp_path):
    from baselines_ppo.export import load_policy

    config_path = tiny_quick_config(tmp_path)
    run_dir = tmp_path / "run"
    first = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 2, "--run-dir", run_dir, "--quiet")
    assert first.returncode == 0, first.stderr[-3000:]
    rows = rows_of(run_dir)
    assert [r["time/iteration"] for r in rows] == ["1", "2"]
    assert [r["time/timesteps"] for r in rows] == ["256", "512"]  # 2 ranks x 128 steps
    assert float(rows[-1]["time/episodes"]) >= 2  # 100-step episodes: every rank finished some
    header = read_progress(run_dir / "progress.csv")[0]
    for column in ("rollout/distance", "rollout/distance_max", "reward/velocity", "losses/policy",
                   "train/explained_var", "perf/steps_per_s", "perf/learn_fraction"):
        assert column in header, column
    assert latest_checkpoint(run_dir).name == "ckpt-00000002"
    policy = load_policy(run_dir / "policy.npz")
    assert (policy.observation_size, policy.action_size) == (82, 18)
    assert policy.metadata["env"]["difficulty"] == 0 and policy.metadata["env"]["max_steps"] == 100
    assert (run_dir / "best_policy.npz").is_file()
    assert load_config(run_dir / "config.toml").env.max_steps == 100
    assert "iter 2 | steps 512" in first.stdout

    again = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 3, "--run-dir", run_dir)
    assert again.returncode == 2
    assert "already holds a run (checkpoint ckpt-00000002): pass --resume" in again.stderr

    trained = load_config(config_path)
    other_env = dataclasses.replace(trained, env=dataclasses.replace(trained.env, min_excitation=0.2))
    (tmp_path / "floor.toml").write_text(config_to_toml(other_env))
    refused = l2run("train", "--config", tmp_path / "floor.toml", "--ranks", 2, "--iterations", 3,
                    "--run-dir", run_dir, "--resume")
    assert refused.returncode == 2
    assert ("was trained on another env than the config describes "
            f"(env.min_excitation = {trained.env.min_excitation!r} -> 0.2)") in refused.stderr

    resumed = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 3, "--run-dir", run_dir,
                    "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "at iteration 2" in resumed.stderr
    assert [r["time/iteration"] for r in rows_of(run_dir)] == ["1", "2", "3"]
    assert latest_checkpoint(run_dir).name == "ckpt-00000003"


@pytest.mark.slow
@pytest.mark.mpi
def test_train_real_env_with_mirror_augmentation_and_reward_normalisation(tmp_path):
    from baselines_ppo.checkpoint import load_checkpoint

    config_path = tiny_quick_config(tmp_path, max_steps=40, steps_per_rank=64, minibatch_size=32,
                                    mirror_augmentation=True, normalize_rewards=True)
    run_dir = tmp_path / "run"
    result = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 2, "--run-dir", run_dir,
                   "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = rows_of(run_dir)
    assert [r["time/timesteps"] for r in rows] == ["128", "256"]  # env steps: mirroring adds no steps
    assert all(r["train/epochs"] == "2" for r in rows)
    assert math.isfinite(float(rows[-1]["rollout/distance"])) and math.isfinite(float(rows[-1]["losses/value"]))
    saved = load_config(run_dir / "config.toml").ppo
    assert saved.mirror_augmentation and saved.normalize_rewards
    data = load_checkpoint(latest_checkpoint(run_dir))
    # reward statistics merged over both ranks: 2 iterations x 2 ranks x 64 steps
    assert float(data.reward_rms["count"]) == pytest.approx(256 + 1e-4)


def test_mirror_augmentation_needs_a_known_symmetry(tmp_path, capsys):
    from experiments.cli import main

    config_path = pendulum_toml(tmp_path, mirror_augmentation=True)
    assert main(["train", "--config", str(config_path), "--run-dir", str(tmp_path / "run"), "--ranks", "2"]) == 2
    err = capsys.readouterr().err
    assert "ppo.mirror_augmentation needs a left-right symmetry of the env, and none is known for gym_id = " \
           "'Pendulum-v1'" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_train_in_process_and_usage_errors(tmp_path, capsys):
    from experiments.cli import main

    config_path = pendulum_toml(tmp_path)
    run_dir = tmp_path / "run"
    code = main(["train", "--config", str(config_path), "--run-dir", str(run_dir), "--iterations", "2", "--quiet"])
    assert code == 0
    assert [r["time/iteration"] for r in rows_of(run_dir)] == ["1", "2"]
    assert main(["train", "--config", str(config_path), "--run-dir", str(run_dir), "--iterations", "3"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    bigger = pendulum_toml(tmp_path, hidden_sizes=[32])
    assert main(["train", "--config", str(bigger), "--run-dir", str(run_dir), "--resume"]) == 2
    assert "hidden_sizes = [16], but this run has hidden_sizes = [32]" in capsys.readouterr().err
    assert main(["train", "--config", "no-such-config"]) == 2
    assert "bundled configs: quick, round1, round2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # refused by the parser, as every command's bad numbers are
        main(["train", "--config", str(config_path), "--ranks", "0"])
    assert exited.value.code == 2


def wait_for_rows(run_dir, count, process, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            if len(rows_of(run_dir)) >= count:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {count} rows in {run_dir} after {timeout} s")


@pytest.mark.mpi
def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    command = [str(L2RUN), "train", "--config", str(pendulum_toml(tmp_path)), "--ranks", "2", "--run-dir",
               str(run_dir), "--quiet"]
    process = subprocess.Popen(command, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO)
    try:
        wait_for_rows(run_dir, 2, process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert "stopping after the current iteration" in err and "stopped after iteration" in err
    last = int(rows_of(run_dir)[-1]["time/iteration"])
    assert latest_checkpoint(run_dir).name == f"ckpt-{last:08d}"
    assert (run_dir / "policy.npz").is_file()


@pytest.mark.mpi
def test_a_killed_rank_ends_the_job_and_the_checkpoint_survives(tmp_path):
    run_dir = tmp_path / "run"
    command = [str(L2RUN), "train", "--config", str(pendulum_toml(tmp_path, checkpoint_every=1)), "--ranks", "2",
               "--run-dir", str(run_dir), "--quiet"]
    process = subprocess.Popen(command, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO)
    try:
        wait_for_rows(run_dir, 2, process)
        os.kill(rank_pid(run_dir, rank=1), signal.SIGKILL)
        out, err = process.communicate(timeout=60)  # a hang would time out here
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "mpirun exited with" in err and "continue with --resume" in err
    resumed = l2run("train", "--config", pendulum_toml(tmp_path, checkpoint_every=1), "--ranks", 2, "--run-dir",
                    run_dir, "--resume", "--quiet",
                    "--iterations", int(latest_checkpoint(run_dir).name.split("-")[1]) + 1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def rank_pid(run_dir, rank):
    """The pid of training rank ``rank`` of the job writing to ``run_dir`` (our own child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run_dir).encode() in cmdline and b"experiments.cli" in cmdline \
                and f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} process for {run_dir}")


@pytest.mark.mpi
def test_a_second_job_on_a_live_run_dir_fails_fast_and_touches_nothing(tmp_path):
    from test_checkpoint import files_of, lock_held_elsewhere

    config_path = pendulum_toml(tmp_path, checkpoint_every=1)
    run_dir = tmp_path / "run"
    # through the launcher: its preflight only probes the lock, so its own ranks can take it
    first = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--iterations", 2, "--quiet")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (run_dir / ".lock").is_file() and latest_checkpoint(run_dir).name == "ckpt-00000002"
    saving = run_dir / "checkpoints" / ".tmp-ckpt-00000003-4242"  # the live job's save in progress
    saving.mkdir()
    (saving / "arrays.npz").write_bytes(b"being written")

    with lock_held_elsewhere(run_dir) as pid:
        before = files_of(run_dir)
        expected = (f"another training job is using {run_dir} (lock file {run_dir / '.lock'}, held by pid {pid} on ")
        for ranks in (1, 2):  # the preflight answers before any rank starts
            busy = l2run("train", "--config", config_path, "--ranks", ranks, "--run-dir", run_dir, "--resume",
                         "--iterations", 4, "--quiet", timeout=60)
            assert busy.returncode == 2, busy.stderr[-3000:]
            assert f"l2run train: error: {expected}" in busy.stderr, busy.stderr[-3000:]
            assert f"stop it (l2run stop {run_dir}) or choose another --run-dir" in busy.stderr
            assert "mpirun" not in busy.stderr
        # ranks that mpirun starts directly skip the preflight: rank 0's lock check ends both ranks
        direct = subprocess.run(
            [str(MPIRUN), "-np", "2", "--oversubscribe", sys.executable, "-m", "mpi4py", "-m", "experiments.cli",
             "train", "--config", str(config_path), "--ranks", "2", "--run-dir", str(run_dir), "--resume",
             "--iterations", "4", "--quiet"], env=mpi_env(), capture_output=True, text=True, timeout=120, cwd=REPO)
        assert direct.returncode != 0
        assert f"l2run train: error: {expected}" in direct.stderr, direct.stderr[-3000:]
        assert files_of(run_dir) == before


def test_resume_accepts_runs_saved_before_an_env_field_existed(tmp_path):
    """A checkpoint whose metadata predates a new env field (here min_excitation)
    had that field's default, so resuming it with the default is no change."""
    from baselines_ppo.checkpoint import CheckpointData, save_checkpoint
    from experiments.config import config_to_dict
    from experiments.train_cmd import UsageError, preflight

    config = load_config("round2")
    config = dataclasses.replace(config, env=dataclasses.replace(config.env, min_excitation=0.0))
    saved = config_to_dict(config)
    del saved["env"]["min_excitation"]
    save_checkpoint(tmp_path, CheckpointData(  # as checkpoints were written before they recorded the task
        iteration=1, timesteps=1, episodes=0, best_score=None, weights={}, optimizer={}, obs_rms={},
        rng_states=[], config=config.ppo.to_dict(), spaces={}, metadata=saved), keep=1)
    preflight(config, tmp_path, resume=True)
    changed = dataclasses.replace(config, env=dataclasses.replace(config.env, frame_skip=4, difficulty=1))
    with pytest.raises(UsageError, match=r"\(env.difficulty = 2 -> 1, env.frame_skip = 1 -> 4\); resume with "
                                         r"--config .*config.toml, or train the new env in another --run-dir"):
        preflight(changed, tmp_path, resume=True)
