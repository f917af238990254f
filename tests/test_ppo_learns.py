"""PPO learns Pendulum-v1 (return above -400) with one rank and with `mpirun -np 2`.

Pendulum settings (tests/mpi_cases.pendulum_config): 2048 samples per iteration,
gamma 0.9, lr 1e-3 decayed linearly over 204800 steps (~100 iterations, ~20 s).
Random play scores about -1200; the score here is the exported, deterministic
policy's mean return over 10 fixed-seed episodes.
"""
import gymnasium as gym
import pytest

from mpi_cases import evaluate_pendulum, pendulum_config, run_mpi

TARGET = -400.0
TOTAL_TIMESTEPS = 204_800


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_pendulum_one_rank(tmp_path):
    from baselines_ppo import train

    result = train(lambda seed: gym.make("Pendulum-v1"), pendulum_config(1, TOTAL_TIMESTEPS), tmp_path,
                   progress="none", tensorboard=False)
    assert result.timesteps == TOTAL_TIMESTEPS
    score = evaluate_pendulum(tmp_path / "policy.npz")
    print(f"pendulum, 1 rank: mean return {score:.1f}")
    assert score > TARGET


@pytest.mark.mpi
def test_pendulum_two_ranks(tmp_path):
    result = run_mpi("pendulum", str(tmp_path), str(TOTAL_TIMESTEPS), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK pendulum 100 iterations" in result.stdout
    score = evaluate_pendulum(tmp_path / "policy.npz")
    print(f"pendulum, 2 ranks: mean return {score:.1f}")
    assert score > TARGET
