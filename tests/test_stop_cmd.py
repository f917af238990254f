"""`l2run stop`: a job started without a terminal (nohup) is stopped from another
shell through its run directory's lock, saves, and resumes; holders it must not
signal are refused in one line."""
import subprocess
import sys
import time

import pytest

from baselines_ppo.checkpoint import latest_checkpoint
from baselines_ppo.run_lock import holder_of
from mpi_cases import REPO, mpi_env
from test_checkpoint import lock_held_elsewhere
from test_train_cli import L2RUN, l2run, rows_of, tiny_quick_config, wait_for_rows


@pytest.mark.slow
@pytest.mark.mpi
def test_a_nohup_job_on_the_real_env_is_stopped_saved_and_resumes(tmp_path):
    config_path = tiny_quick_config(tmp_path, checkpoint_every=1000)  # only the stop saves
    run_dir, idle = tmp_path / "run", tmp_path / "idle"
    idle.mkdir()
    # as under nohup ... &: its own session, no terminal to send Ctrl-C from
    job = subprocess.Popen([str(L2RUN), "train", "--config", str(config_path), "--ranks", "2", "--run-dir",
                            str(run_dir), "--quiet"], env=mpi_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    try:
        wait_for_rows(run_dir, 2, job, timeout=180)
        rank0 = holder_of(run_dir)
        assert rank0 is not None and rank0.pid != job.pid  # the lock names rank 0, not the launcher
        first = l2run("stop", "--no-wait", run_dir, idle, timeout=30)
        # the same request again, as a user who is not sure it arrived: still a stop, never an abort
        second = l2run("stop", run_dir, timeout=300)
        out, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert first.returncode == 0, first.stderr
    assert f"{run_dir}: asked the job (rank 0, pid {rank0.pid}) to stop after its current iteration" in first.stderr
    assert f"{idle}: no training job is running there" in first.stderr
    assert second.returncode == 0, second.stderr
    assert job.returncode == 0, err[-3000:]
    assert "stopped after iteration" in err
    last = int(rows_of(run_dir)[-1]["time/iteration"])
    assert latest_checkpoint(run_dir).name == f"ckpt-{last:08d}"
    assert last >= 2
    if "asked the job" in second.stderr:  # the second request reached the job before it exited
        assert (f"{run_dir}: stopped. The last good checkpoint in {run_dir} is ckpt-{last:08d} "
                f"(iteration {last}): continue with --resume") in second.stderr
    else:
        assert f"{run_dir}: no training job is running there" in second.stderr

    again = l2run("stop", run_dir, timeout=30)
    assert again.returncode == 0 and f"{run_dir}: no training job is running there" in again.stderr
    resumed = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--resume",
                    "--iterations", last + 1, "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert latest_checkpoint(run_dir).name == f"ckpt-{last + 1:08d}"


def test_a_lock_holder_that_the_signal_would_kill_is_not_signalled(tmp_path):
    run_dir = tmp_path / "run"
    with lock_held_elsewhere(run_dir) as pid:
        refused = l2run("stop", run_dir, timeout=30)
        time.sleep(0.5)
        assert holder_of(run_dir).pid == pid  # still alive, still holding the lock
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"l2run stop: {run_dir}: pid {pid} holds the lock but does not catch "
                                      "SIGUSR1 (not an l2run training job?); not signalled")


def test_a_job_on_another_host_is_named_not_signalled(tmp_path):
    run_dir = tmp_path / "run"
    # a rank 0 on node7 of a cluster, its lock file on a shared disk: the lock and what it says
    code = ("import signal, sys; from baselines_ppo.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "signal.signal(signal.SIGUSR1, lambda *a: None); "
            "open(sys.argv[1] + '/.lock', 'w').write('pid 4242 on node7 since 2026-12-02 10:00:00\\n'); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=mpi_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = l2run("stop", run_dir, timeout=30)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"l2run stop: {run_dir}: the job's rank 0 (pid 4242) runs on node7: "
                                      "run l2run stop there")


def test_a_missing_run_dir_is_one_line(tmp_path):
    missing = l2run("stop", tmp_path / "nowhere", timeout=30)
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[-1] == (f"l2run stop: error: argument RUN_DIR: expected a run directory, "
                                               f"got '{tmp_path / 'nowhere'}' (no such directory)")
