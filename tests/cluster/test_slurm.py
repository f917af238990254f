"""train_slurm.sbatch on a real one-node Slurm: preempted after 2 iterations, requeued, resumed.

What this proves: the job runs 2 ranks as 2 Slurm tasks (srun --mpi=pmix with
the pip Open MPI), the stop signal Slurm sends before preempting or at the time
limit (here sent by hand with `scancel --batch --signal=USR1`, as
`--signal=B:USR1@N` would) makes the ranks finish the iteration and checkpoint,
the job requeues itself and the requeued job resumes from that checkpoint; and
progress.csv runs 1..N with no gap and no iteration twice.
"""
import subprocess
import time

from cluster_support import (REPO, assert_contiguous, checkpoint_iterations, iterations, read_text, wait_for)

ITERATIONS = 6


def squeue_state(env, job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True)
    return out.stdout.strip()


def test_preempted_job_checkpoints_requeues_and_continues(slurm, tmp_path):
    env = slurm
    run_dir = tmp_path / "run"
    # the command documented in docs/cluster.md
    submit = subprocess.run(["sbatch", "--parsable", "--ntasks=2", "experiments/scripts/train_slurm.sbatch",
                             str(run_dir), "quick", "--iterations", str(ITERATIONS)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    job = submit.stdout.strip().split(";")[0]
    log = run_dir / f"slurm-{job}.log"
    try:
        started = time.monotonic()
        wait_for(lambda: len(iterations(run_dir)) >= 2, 600, "2 iterations in progress.csv", interval=0.5)
        to_two = time.monotonic() - started

        # preempt: the signal Slurm sends before a preemption or the time limit
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], env=env, check=True, timeout=30)
        signalled = time.monotonic()
        wait_for(lambda: "requeueing" in read_text(log), 300, "the job to checkpoint and requeue itself")
        stop_s = time.monotonic() - signalled

        stopped_at = iterations(run_dir)[-1]
        assert 2 <= stopped_at < ITERATIONS
        assert checkpoint_iterations(run_dir)[-1] == stopped_at, "the checkpoint is the last logged iteration"
        assert (run_dir / "checkpoints" / "latest").exists()
        assert_contiguous(run_dir, stopped_at)
        assert f"stopped at iteration {stopped_at}" in read_text(log)

        wait_for(lambda: squeue_state(env, job) == "", 900, "the requeued job to run and finish", interval=2)
        total_s = time.monotonic() - started
    finally:
        subprocess.run(["scancel", job], env=env, timeout=30)
        print(read_text(log)[-4000:])

    text = read_text(log)
    assert "start (restart 0)" in text and "start (restart 1)" in text, "one job id, run twice"
    assert "via srun" in text
    assert f"ckpt-{stopped_at:08d} at iteration {stopped_at}" in text, "the requeued job resumed from the checkpoint"
    assert f"done at iteration {ITERATIONS}" in text
    assert_contiguous(run_dir, ITERATIONS)
    print(f"2 iterations after {to_two:.0f} s; checkpoint at iteration {stopped_at} {stop_s:.0f} s after the "
          f"signal; whole job {total_s:.0f} s")


def test_bad_arguments_are_one_line(slurm, tmp_path):
    env = slurm
    outside = subprocess.run(["experiments/scripts/train_slurm.sbatch", str(tmp_path / "run")], cwd=REPO,
                             capture_output=True, text=True, timeout=30, env={**env, "SLURM_JOB_ID": ""})
    assert outside.returncode == 2
    assert outside.stderr.strip().count("\n") == 0 and "not inside a Slurm job" in outside.stderr

    submit = subprocess.run(["sbatch", "--parsable", "--ntasks=1", f"--output={tmp_path}/job-%j.out",
                             "experiments/scripts/train_slurm.sbatch", str(tmp_path / "run"), "no-such-config"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    job = submit.stdout.strip().split(";")[0]
    wait_for(lambda: squeue_state(env, job) == "", 120, "the job to fail", interval=1)
    out = read_text(tmp_path / f"job-{job}.out").strip()
    assert out.count("\n") == 0 and "no config 'no-such-config'" in out and "quick" in out, out
    assert not (tmp_path / "run").exists()


def test_resuming_on_another_env_is_refused_by_the_ranks_srun_starts(slurm, tmp_path):
    """srun starts the ranks directly, without `l2run train`'s preflight: the trainer's own
    resume check (baselines_ppo.compatibility) refuses a checkpoint trained on another env,
    in one line, with the checkpoint untouched and no requeue."""
    import dataclasses

    from experiments.config import config_from_dict, config_to_toml

    env = slurm
    run_dir, trained, edited = tmp_path / "run", tmp_path / "pendulum.toml", tmp_path / "edited.toml"
    config = config_from_dict({"name": "pendulum", "gym_id": "Pendulum-v1",
                               "ppo": {"steps_per_rank": 256, "minibatch_size": 64, "epochs": 1, "hidden_sizes": [8]}})
    trained.write_text(config_to_toml(config))
    edited.write_text(config_to_toml(dataclasses.replace(config, env=dataclasses.replace(config.env, max_steps=50))))
    first = subprocess.run([str(REPO / ".venv" / "bin" / "l2run"), "train", "--config", str(trained), "--run-dir",
                            str(run_dir), "--iterations", "1", "--quiet"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoints = {p: p.read_bytes() for p in (run_dir / "checkpoints").rglob("*") if p.is_file()}

    submit = subprocess.run(["sbatch", "--parsable", "--ntasks=2", "experiments/scripts/train_slurm.sbatch",
                             str(run_dir), str(edited), "--iterations", "2"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    job = submit.stdout.strip().split(";")[0]
    wait_for(lambda: squeue_state(env, job) == "", 300, "the job to end", interval=1)
    text = read_text(run_dir / f"slurm-{job}.log")
    assert "via srun" in text and "training step exited with status 2" in text, text[-3000:]
    assert (f"l2run train: error: {run_dir} was trained on another env than the config describes "
            f"(env.max_steps = {config.env.max_steps!r} -> 50)") in text
    assert "Traceback" not in text and "requeueing" not in text
    assert {p: p.read_bytes() for p in (run_dir / "checkpoints").rglob("*") if p.is_file()} == checkpoints
