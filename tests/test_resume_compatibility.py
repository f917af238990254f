"""One resume check on every launch path (baselines_ppo.compatibility): a checkpoint
trained on another task, or with other networks, is refused by the trainer itself --
through `l2run train --ranks 2`, ranks mpirun starts directly, and `train()` called
from Python -- with one line, the same error on every rank, and nothing touched.
(Slurm's `srun ... -m experiments.cli train` ranks take the direct-mpirun path.)"""
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from baselines_ppo.checkpoint import CheckpointData, CheckpointError, latest_checkpoint, load_checkpoint
from baselines_ppo.compatibility import TaskChanged, check_compatible
from baselines_ppo.config import PPOConfig
from experiments.config import config_to_toml, load_config
from experiments.train_cmd import task_of
from mpi_cases import MPIRUN, REPO, mpi_env, run_script_on_two_ranks
from test_run_safety import error_lines, run_files
from test_train_cli import l2run, pendulum_toml

pytestmark = pytest.mark.filterwarnings("ignore:TensorFlow was already running")

TASK = {"gym_id": "Pendulum-v1", "env": {"difficulty": 0, "reward": {"velocity": 1.0}}}
OTHER_TASK = {"gym_id": "Pendulum-v1", "env": {"difficulty": 1, "reward": {"velocity": 1.0, "effort": 0.1}}}
OTHER_CHANGES = ["env.difficulty = 0 -> 1", "env.reward = {'velocity': 1.0} -> {'velocity': 1.0, 'effort': 0.1}"]


# --- the check itself ------------------------------------------------------------------


def checkpoint_of(task=None, metadata=None):
    return CheckpointData(iteration=1, timesteps=256, episodes=1, best_score=None, weights={}, optimizer={},
                          obs_rms={}, rng_states=[], config=PPOConfig(hidden_sizes=(8,)).to_dict(),
                          spaces={"observation_size": 3, "action_size": 1}, metadata=metadata or {}, task=task,
                          path=Path("run/checkpoints/ckpt-00000001"))


def test_a_task_setting_that_changed_is_refused_and_named():
    recorded = checkpoint_of(TASK)
    assert check_compatible(recorded, PPOConfig(hidden_sizes=(8,), learning_rate=1e-3), TASK, 3, 1) == \
        ["learning_rate: 0.0003 -> 0.001"]  # PPO settings may change: reported, not refused
    with pytest.raises(TaskChanged, match=re.escape(
            f"checkpoint {recorded.path} was trained on another task ({', '.join(OTHER_CHANGES)}); resume with the "
            "run's own config (the settings it was trained with), or train the new task in another run directory")) \
            as refused:
        check_compatible(recorded, PPOConfig(hidden_sizes=(8,)), OTHER_TASK, 3, 1)
    assert refused.value.changes == OTHER_CHANGES
    # a PPO setting newer than the checkpoint is compared with its default
    older_code = dataclasses.replace(recorded, config={k: v for k, v in recorded.config.items() if k != "lr_points"})
    bent = PPOConfig(hidden_sizes=(8,), lr_schedule="piecewise", lr_points=((0, 3e-4), (1000, 0.0)))
    assert check_compatible(older_code, bent, TASK, 3, 1) == [
        "lr_points: None -> [[0, 0.0003], [1000, 0.0]]", "lr_schedule: 'linear' -> 'piecewise'"]
    # a task setting newer than the checkpoint is not compared; a caller without a task checks none
    newer = {"gym_id": "Pendulum-v1", "env": {**TASK["env"], "frame_skip": 4}}
    assert check_compatible(recorded, PPOConfig(hidden_sizes=(8,)), newer, 3, 1) == []
    assert check_compatible(recorded, PPOConfig(hidden_sizes=(8,)), None, 3, 1) == []


def test_a_checkpoint_that_recorded_no_task_is_compared_through_its_metadata():
    older = checkpoint_of(metadata={"name": "run", "gym_id": "Pendulum-v1", "env": TASK["env"]})
    assert check_compatible(older, PPOConfig(hidden_sizes=(8,)), TASK, 3, 1) == []
    with pytest.raises(TaskChanged) as refused:
        check_compatible(older, PPOConfig(hidden_sizes=(8,)), OTHER_TASK, 3, 1)
    assert refused.value.changes == OTHER_CHANGES


def test_the_networks_are_checked_too_and_the_sizes_only_when_known():
    recorded = checkpoint_of(TASK)
    with pytest.raises(CheckpointError, match=r"hidden_sizes = \[8\], but this run has hidden_sizes = \[16\]"):
        check_compatible(recorded, PPOConfig(hidden_sizes=(16,)), TASK)
    with pytest.raises(CheckpointError, match=r"observation_size = 3, but this run has observation_size = 2"):
        check_compatible(recorded, PPOConfig(hidden_sizes=(8,)), TASK, 2, 1)
    assert check_compatible(recorded, PPOConfig(hidden_sizes=(8,)), TASK) == []  # a launcher's early check


@pytest.mark.parametrize("line", ["pretrained/round2", "lines/round2-from-scratch"])
def test_the_committed_checkpoints_fit_their_config_and_refuse_another_env(line):
    """Whether they record their task or predate that (their metadata, the
    experiment config, then stands in), their own config fits and another env does not."""
    data = load_checkpoint(latest_checkpoint(REPO / line))
    config = load_config(REPO / line / "config.toml")
    check_compatible(data, config.ppo, task_of(config), 82, 18)
    other = dataclasses.replace(config, env=dataclasses.replace(config.env, difficulty=1))
    with pytest.raises(TaskChanged, match=r"\(env.difficulty = 2 -> 1\)"):
        check_compatible(data, config.ppo, task_of(other), 82, 18)


# --- train() from Python ---------------------------------------------------------------


def pendulum(seed):
    return gym.make("Pendulum-v1")


def train_pendulum(run_dir, hidden_sizes=(8,), **kwargs):
    from baselines_ppo import train

    config = PPOConfig(steps_per_rank=256, minibatch_size=64, epochs=1, hidden_sizes=hidden_sizes)
    return train(pendulum, config, run_dir, progress="none", tensorboard=False, **kwargs)


def test_train_from_python_records_the_task_and_refuses_another_on_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train_pendulum(run_dir, iterations=1, task=TASK)
    assert load_checkpoint(latest_checkpoint(run_dir)).task == TASK
    before = run_files(run_dir)
    with pytest.raises(TaskChanged, match=re.escape(f"was trained on another task ({', '.join(OTHER_CHANGES)})")):
        train_pendulum(run_dir, iterations=2, resume=True, task=OTHER_TASK)
    with pytest.raises(CheckpointError, match=r"hidden_sizes = \[8\], but this run has hidden_sizes = \[16\]"):
        train_pendulum(run_dir, hidden_sizes=(16,), iterations=2, resume=True, task=TASK)
    assert run_files(run_dir) == before

    assert train_pendulum(run_dir, iterations=2, resume=True, task=TASK).iterations == 2
    # a new run from it on another task is allowed, with a note
    capsys.readouterr()
    assert train_pendulum(tmp_path / "branch", iterations=3, init_from=run_dir, task=OTHER_TASK).iterations == 3
    assert f"was trained on another task ({', '.join(OTHER_CHANGES)}); training it on this run's" in \
        capsys.readouterr().err


TRAIN_THEN_RESUME_ON_ANOTHER_TASK = """
import sys

import gymnasium as gym

from baselines_ppo import mpi, train
from baselines_ppo.checkpoint import CheckpointError
from baselines_ppo.config import PPOConfig

config = PPOConfig(steps_per_rank=256, minibatch_size=64, epochs=1, hidden_sizes=(8,))
for task, resume in (({"env": {"max_steps": 200}}, False), ({"env": {"max_steps": 100}}, True)):
    try:
        train(lambda seed: gym.make("Pendulum-v1"), config, sys.argv[1], iterations=1 + resume, resume=resume,
              task=task, progress="none", tensorboard=False)
    except CheckpointError as err:
        print(f"rank {mpi.rank()}: {type(err).__name__}: {err}", flush=True)
"""


@pytest.mark.mpi
def test_every_rank_raises_the_same_error(tmp_path):
    run_dir = tmp_path / "run"
    done, reports = run_script_on_two_ranks(tmp_path / "resume_on_another_task.py", TRAIN_THEN_RESUME_ON_ANOTHER_TASK,
                                            run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    message = (f"TaskChanged: checkpoint {run_dir / 'checkpoints' / 'ckpt-00000001'} was trained on another task "
               "(env.max_steps = 200 -> 100); resume with the run's own config")
    assert len(reports) == 2 and all(line.startswith(f"rank {rank}: {message}") for rank, line in enumerate(reports))
    assert reports[0].split(": ", 1)[1] == reports[1].split(": ", 1)[1]


# --- the CLI: the launcher, and ranks mpirun starts directly ----------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(config, run dir) of one Pendulum iteration, trained in this process."""
    from experiments.cli import main

    root = tmp_path_factory.mktemp("trained")
    config_path = pendulum_toml(root)
    run_dir = root / "run"
    assert main(["train", "--config", str(config_path), "--run-dir", str(run_dir), "--iterations", "1",
                 "--quiet"]) == 0
    return config_path, run_dir


def with_max_steps(config_path, directory, max_steps):
    """A copy of the config whose [env] differs in one setting (not a network size)."""
    config = load_config(config_path)
    path = directory / "edited.toml"
    path.write_text(config_to_toml(dataclasses.replace(config, env=dataclasses.replace(config.env,
                                                                                        max_steps=max_steps))))
    return path, f"env.max_steps = {config.env.max_steps!r} -> {max_steps!r}"


def refusal(run_dir, change):
    return (f"l2run train: error: {run_dir} was trained on another env than the config describes ({change}); "
            f"resume with --config {run_dir / 'config.toml'}, or train the new env in another --run-dir")


@pytest.fixture
def edited_copy(trained, tmp_path):
    """(run dir: a copy of the trained run, its files, a config whose env differs, the change it names)."""
    config_path, original = trained
    run_dir = tmp_path / "run"
    shutil.copytree(original, run_dir)
    return (run_dir, run_files(run_dir), *with_max_steps(config_path, tmp_path, 50))


def test_the_launcher_refuses_another_env_or_network_in_one_line(edited_copy, tmp_path):
    run_dir, before, edited, change = edited_copy
    refused = l2run("train", "--config", edited, "--ranks", 2, "--run-dir", run_dir, "--resume", "--iterations", 2,
                    "--quiet", timeout=120)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert error_lines(refused.stderr) == [refusal(run_dir, change)]
    wider = l2run("train", "--config", pendulum_toml(tmp_path, hidden_sizes=[32]), "--ranks", 2, "--run-dir",
                  run_dir, "--resume", "--iterations", 2, "--quiet", timeout=120)
    assert wider.returncode == 2, wider.stderr[-3000:]
    [line] = error_lines(wider.stderr)
    assert "hidden_sizes = [16], but this run has hidden_sizes = [32]" in line
    assert run_files(run_dir) == before


@pytest.mark.mpi
def test_ranks_started_by_mpirun_directly_refuse_another_env(edited_copy):
    """No launcher, no preflight: the trainer's own check ends both ranks alike."""
    run_dir, before, edited, change = edited_copy
    direct = subprocess.run(
        [str(MPIRUN), "-np", "2", "--oversubscribe", sys.executable, "-m", "experiments.cli", "train", "--config",
         str(edited), "--run-dir", str(run_dir), "--resume", "--iterations", "2", "--quiet"],
        env=mpi_env(), capture_output=True, text=True, timeout=240, cwd=REPO)
    assert direct.returncode == 2, direct.stderr[-3000:]
    assert refusal(run_dir, change) in direct.stderr.splitlines()
    assert "Traceback" not in direct.stderr
    assert run_files(run_dir) == before
