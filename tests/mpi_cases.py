"""Programs the MPI tests run as real ``mpirun -np 2`` jobs (not collected by pytest).

    python -m mpi4py tests/mpi_cases.py CASE [ARGS...]

Each case asserts on every rank and prints "OK <case>" on rank 0 at the end;
:func:`run_mpi` starts one with a timeout so a hang fails the test instead of
blocking the suite.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
MPIRUN = PYTHON.parent / "mpirun"


def mpi_env() -> dict:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", TF_CPP_MIN_LOG_LEVEL="2",
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    for name in list(env):  # a test run under mpirun must not make the child think it is a rank
        if name.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_")):
            del env[name]
    return env


def run_mpi(case: str, *args: str, ranks: int = 2, timeout: float = 120, abort_on_error: bool = True):
    """Run ``case`` as an mpirun job; returns the CompletedProcess (stdout+stderr as text).

    abort_on_error: start the ranks with ``python -m mpi4py`` (an uncaught
    exception aborts the job), as ``l2run train`` does.
    """
    python = [str(PYTHON), "-m", "mpi4py"] if abort_on_error else [str(PYTHON)]
    command = [str(MPIRUN), "-np", str(ranks), "--oversubscribe", *python, __file__, case, *args]
    return subprocess.run(command, env=mpi_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def run_script_on_two_ranks(script: Path, text: str, run_dir: Path, timeout: float = 240):
    """Write ``text`` to ``script`` and run it under ``mpirun -np 2 python -m mpi4py``
    with ``run_dir`` as its argument; returns (CompletedProcess, the stdout lines
    starting with "rank ", sorted): each rank reports one line of its own."""
    script.write_text(text)
    done = subprocess.run([str(MPIRUN), "-np", "2", "--oversubscribe", str(PYTHON), "-m", "mpi4py", str(script),
                           str(run_dir)], env=mpi_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    return done, sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))


# --- cases ---------------------------------------------------------------------------


def case_collectives():
    from baselines_ppo import mpi
    from baselines_ppo.buffer import RolloutBuffer
    from baselines_ppo.normalizers import RunningMeanStd

    rank, size = mpi.rank(), mpi.size()
    assert size == 2
    x = np.array([rank + 1.0, 10.0 * rank])
    np.testing.assert_allclose(mpi.allreduce_mean(x), [1.5, 5.0])
    np.testing.assert_allclose(mpi.allreduce_sum(x), [3.0, 10.0])
    np.testing.assert_allclose(mpi.allreduce_max(x), [2.0, 10.0])
    assert mpi.allreduce_sum(rank + 1).shape == ()  # scalars stay scalars
    assert mpi.any_rank(rank == 1) and not mpi.any_rank(False)
    np.testing.assert_array_equal(mpi.broadcast(np.arange(3.0) + rank), np.arange(3.0))
    assert mpi.broadcast({"rank": rank}) == {"rank": 0}
    gathered = mpi.gather(rank * 7)
    assert gathered == ([0, 7] if rank == 0 else None)
    assert mpi.allgather(rank) == [0, 1]

    # moments over ranks holding different numbers of rows = numpy on the concatenation
    data = [np.random.default_rng(1).normal(3, 2, (5, 4)), np.random.default_rng(2).normal(-1, 1, (9, 4))]
    mean, std, count = mpi.moments(data[rank])
    everything = np.concatenate(data)
    assert count == 14
    np.testing.assert_allclose(mean, everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, everything.std(0), rtol=1e-12)
    rms = RunningMeanStd((4,))
    rms.update_from_moments(mean, std ** 2, count)
    np.testing.assert_allclose(rms.mean, everything.mean(0), rtol=1e-4)  # count starts at 1e-4
    same = mpi.allgather(rms.mean.tobytes() + rms.var.tobytes())
    assert same[0] == same[1], "normaliser statistics differ between ranks"

    # advantage normalisation uses the statistics of all ranks, not each rank's own
    buffer = RolloutBuffer(6, 1, 1)
    for t in range(6):
        buffer.add([0.0], [0.0], 0.0, 0.0, reward=float(rank * 10 + t), terminated=True, truncated=False)
    batch = buffer.finish(0.0, 0.99, 0.95, normalize_advantages=True)
    pooled = np.concatenate(mpi.allgather(batch.advantages))
    assert abs(pooled.mean()) < 1e-5 and abs(pooled.std() - 1) < 1e-3
    assert abs(batch.advantages.mean()) > 0.5, "each rank normalised on its own"
    if rank == 0:
        print("OK collectives", flush=True)


def case_sync():
    """Different data per rank, several averaged Adam steps: parameters stay bit-identical."""
    from baselines_ppo.threads import limit_threads

    limit_threads()
    import tensorflow as tf

    from baselines_ppo import mpi
    from baselines_ppo.mpi_adam import MpiAdam
    from baselines_ppo.policy import ActorCritic
    from baselines_ppo.tf_util import FlatParameters, broadcast_parameters, check_synced, parameter_checksum

    rank = mpi.rank()
    rng = np.random.default_rng(100 + rank)  # different initial weights on purpose
    model = ActorCritic(5, 3, (16, 16), "tanh", 0.0, rng)
    flat = FlatParameters(model.parameters)
    assert len(set(mpi.allgather(parameter_checksum(flat.get())))) == 2
    broadcast_parameters(flat)
    initial = flat.get()
    assert len(set(mpi.allgather(parameter_checksum(initial)))) == 1
    adam = MpiAdam(flat.size)
    params = initial
    coefficients = [tf.constant(v, tf.float32) for v in (0.2, 0.01, 1.0)]
    for _ in range(5):
        obs = rng.normal(size=(32, 5)).astype(np.float32)
        actions = rng.normal(size=(32, 3)).astype(np.float32)
        old_logp = model.log_prob(obs, actions).numpy()
        grad, _ = model.loss_and_gradient(obs, actions, old_logp, rng.normal(size=32).astype(np.float32),
                                          rng.normal(size=32).astype(np.float32), *coefficients)
        local = grad.numpy()
        assert len(set(mpi.allgather(parameter_checksum(local)))) == 2  # rank-local gradients differ
        params, _ = adam.step(params, local, 1e-2)
        flat.set(params)
    final = flat.get()
    assert not np.array_equal(final, initial)
    digests = mpi.allgather(parameter_checksum(final))
    assert digests[0] == digests[1], f"parameters diverged: {digests}"
    check_synced(final)
    if rank == 0:
        print("OK sync", flush=True)


def case_desync():
    """check_synced must abort the job when one rank's parameters differ."""
    from baselines_ppo import mpi
    from baselines_ppo.tf_util import check_synced

    params = np.ones(10, dtype=np.float32)
    if mpi.rank() == 1:
        params[3] += 1e-6
    check_synced(params, context="in the desync test")
    print("check_synced did not abort", flush=True)


def case_raise():
    """Rank 1 raises while rank 0 waits in a collective: the job must end, not hang."""
    from baselines_ppo import mpi

    mpi.allgather(mpi.rank())  # both ranks are up
    if mpi.rank() == 1:
        raise RuntimeError("boom on rank 1")
    mpi.allreduce_sum(np.ones(3))  # never completes: rank 1 is gone
    print("rank 0 passed the collective", flush=True)


def case_raise_plain():
    """As case_raise without ``python -m mpi4py``: the trainer's entry point aborts itself."""
    from baselines_ppo import mpi

    try:
        case_raise()
    except RuntimeError as err:
        mpi.abort_on_exception(err)


def case_pendulum(run_dir: str, total_timesteps: str):
    """PPO on Pendulum-v1 with 2 ranks; the test evaluates the exported policy."""
    import gymnasium as gym

    from baselines_ppo import mpi
    from baselines_ppo import train

    config = pendulum_config(ranks=mpi.size(), total_timesteps=int(total_timesteps))
    result = train(lambda seed: gym.make("Pendulum-v1"), config, run_dir, progress="none", tensorboard=False)
    if mpi.is_root():
        print(f"OK pendulum {result.iterations} iterations", flush=True)


def pendulum_config(ranks: int, total_timesteps: int = 204_800, seed: int = 0):
    """Pendulum settings that learn in ~200k steps: a short horizon (gamma 0.9),
    a larger constant-ish step (1e-3, linear decay), 2048 samples per iteration."""
    from baselines_ppo.config import PPOConfig

    return PPOConfig(steps_per_rank=2048 // ranks, minibatch_size=256 // ranks, epochs=10, gamma=0.9, lam=0.95,
                     learning_rate=1e-3, total_timesteps=total_timesteps, checkpoint_every=1000, seed=seed)


def evaluate_pendulum(policy_path, episodes: int = 10) -> float:
    """Mean return of the exported (deterministic) policy over fixed seeds."""
    import gymnasium as gym

    from baselines_ppo.export import load_policy

    policy = load_policy(policy_path)
    env = gym.make("Pendulum-v1")
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs).astype(np.float32))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


if __name__ == "__main__":
    name, *case_args = sys.argv[1:]
    globals()[f"case_{name}"](*case_args)
