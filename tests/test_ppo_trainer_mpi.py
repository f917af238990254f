"""Tier b: the trainer as a real `mpirun -np 2` job -- what every rank returns."""

import pytest

from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
from mpi_cases import run_script_on_two_ranks

TRAIN_AND_REPORT = """
import sys

import gymnasium as gym

from baselines_ppo import mpi
from baselines_ppo.config import PPOConfig
from baselines_ppo import train

config = PPOConfig(steps_per_rank=256, minibatch_size=64, epochs=1, hidden_sizes=(8,), checkpoint_every=1)
result = train(lambda seed: gym.make("Pendulum-v1"), config, sys.argv[1], iterations=2, progress="none",
               tensorboard=False)
print(f"rank {mpi.rank()}: best_score {result.best_score!r} iterations {result.iterations}", flush=True)
"""


@pytest.mark.mpi
def test_best_score_is_the_same_on_every_rank(tmp_path):
    run_dir = tmp_path / "run"
    done, reports = run_script_on_two_ranks(tmp_path / "train_and_report.py", TRAIN_AND_REPORT, run_dir, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = load_checkpoint(latest_checkpoint(run_dir)).best_score
    assert saved is not None  # 200-step Pendulum episodes end within each rank's 256 steps
    assert reports == [f"rank {rank}: best_score {saved!r} iterations 2" for rank in (0, 1)]
