"""Tier b: the trainer as a real `mpirun -np 2` job -- what every rank returns."""
import subprocess
import sys

import pytest

from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
from mpi_cases import MPIRUN, REPO, mpi_env

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
    script = tmp_path / "train_and_report.py"
    script.write_text(TRAIN_AND_REPORT)
    run_dir = tmp_path / "run"
    done = subprocess.run([str(MPIRUN), "-np", "2", "--oversubscribe", sys.executable, "-m", "mpi4py", str(script),
                           str(run_dir)], env=mpi_env(), capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    saved = load_checkpoint(latest_checkpoint(run_dir)).best_score
    assert saved is not None  # 200-step Pendulum episodes end within each rank's 256 steps
    assert reports == [f"rank {rank}: best_score {saved!r} iterations 2" for rank in (0, 1)]
