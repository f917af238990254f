"""Issue 13: `l2run train` under a careless or unlucky user -- real `mpirun -np 2`,
real processes, real files. Each test is one row of docs/reliability.md's "What
survives what" table:

* an earlier run's files without a usable checkpoint are refused, never wiped
  (`--overwrite` moves them aside);
* one resume rule: the newest complete, readable checkpoint; newer unusable ones
  are named, moved aside, never deleted;
* a killed (or hung-up) launcher takes its ranks with it within seconds, and
  `--resume` continues;
* Ctrl-C during start-up stops cleanly with nothing to save;
* a failed job never claims a checkpoint that does not exist; an unwritable run
  dir, a bad number or an empty config is one line.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from baselines_ppo.checkpoint import latest_checkpoint, load_checkpoint
from mpi_cases import MPIRUN, REPO, mpi_env
from test_checkpoint import files_of
from test_train_cli import L2RUN, l2run, pendulum_toml, rank_pid, rows_of, wait_for_rows

pytestmark = pytest.mark.filterwarnings("ignore:TensorFlow was already running")


# --- helpers ---------------------------------------------------------------------------


def job_pids(run_dir, but=()):
    """Pids of live processes (mpirun and its ranks) whose command line names run_dir:
    only this test's own job, since every test has its own tmp run dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in but:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run_dir).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_job(run_dir):
    """Clean up after a failing test: SIGKILL this test's own job, nothing else."""
    for pid in job_pids(run_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_training(config_path, run_dir, *extra):
    command = [str(L2RUN), "train", "--config", str(config_path), "--ranks", "2", "--run-dir", str(run_dir),
               "--quiet", *map(str, extra)]
    return subprocess.Popen(command, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)


def wait_until_gone(run_dir, timeout, but=()):
    """Seconds until no process of the job is left; AssertionError after ``timeout``."""
    start = time.time()
    while job_pids(run_dir, but):
        if time.time() - start > timeout:
            raise AssertionError(f"ranks still alive {timeout} s later: {job_pids(run_dir, but)}")
        time.sleep(0.2)
    return time.time() - start


def run_files(run_dir):
    """Everything under run_dir but the lock file (rank 0 writes its pid there)."""
    return {name: data for name, data in files_of(run_dir).items() if name != ".lock"}


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


# --- one trained run, copied by the tests that damage it --------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(config, run dir) of 4 iterations on 2 ranks, a checkpoint after each; keeps ckpt 2, 3, 4."""
    root = tmp_path_factory.mktemp("trained")
    config_path = pendulum_toml(root, checkpoint_every=1)
    run_dir = root / "run"
    done = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--iterations", 4, "--quiet",
                 timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["ckpt-00000002", "ckpt-00000003", "ckpt-00000004", "latest"]
    return config_path, run_dir


def copy_of(trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained[1], run_dir)
    return run_dir


# --- 1. an earlier run that cannot be resumed is refused, never wiped ---------------------


def lose_arrays(run_dir):
    """A partial copy: arrays.npz missing from every checkpoint."""
    for ckpt in (run_dir / "checkpoints").glob("ckpt-*"):
        (ckpt / "arrays.npz").unlink()


@pytest.mark.mpi
@pytest.mark.parametrize("damage", ["checkpoints deleted", "arrays.npz missing from every checkpoint"])
def test_an_earlier_run_without_a_usable_checkpoint_is_refused_not_wiped(trained, tmp_path, damage):
    config_path, _ = trained
    run_dir = copy_of(trained, tmp_path)
    if damage == "checkpoints deleted":
        shutil.rmtree(run_dir / "checkpoints")
        listed = "(progress.csv, policy.npz, best_policy.npz, config.json, tb/)"
        unusable = ""
    else:
        lose_arrays(run_dir)
        listed = "(checkpoints/, progress.csv, policy.npz, best_policy.npz, config.json, tb/)"
        unusable = (" (unusable: ckpt-00000004: incomplete: arrays.npz missing; ckpt-00000003: incomplete: "
                    "arrays.npz missing; ckpt-00000002: incomplete: arrays.npz missing)")
    expected = (f"{run_dir} holds files of an earlier run {listed} but no complete checkpoint to resume{unusable}: "
                "choose another run directory (--run-dir), or pass overwrite=True (--overwrite) to move them into "
                f"{run_dir}/superseded-<time>/ and start a new run")
    before = run_files(run_dir)
    for resume in (["--resume"], []):  # the launcher's preflight answers before any rank starts
        refused = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--iterations", 6,
                        "--quiet", *resume, timeout=120)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert error_lines(refused.stderr) == [f"l2run train: error: {expected}"]
        assert run_files(run_dir) == before
    if damage == "checkpoints deleted":
        return
    # ranks that mpirun starts directly skip the preflight: the trainer's rank 0 refuses on every path
    direct = subprocess.run(
        [str(MPIRUN), "-np", "2", "--oversubscribe", sys.executable, "-m", "mpi4py", "-m", "experiments.cli",
         "train", "--config", str(config_path), "--ranks", "2", "--run-dir", str(run_dir), "--resume",
         "--iterations", "6", "--quiet"], env=mpi_env(), capture_output=True, text=True, timeout=240, cwd=REPO)
    assert direct.returncode == 2, direct.stderr[-3000:]
    assert f"l2run train: error: {expected}" in direct.stderr
    assert run_files(run_dir) == before


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_overwrite_moves_the_earlier_run_aside_and_starts_anew(trained, tmp_path, capsys):
    from experiments.cli import main

    config_path, _ = trained
    run_dir = copy_of(trained, tmp_path)
    lose_arrays(run_dir)
    before = run_files(run_dir)
    args = ["train", "--config", str(config_path), "--run-dir", str(run_dir), "--iterations", "1", "--quiet"]
    assert main(args + ["--overwrite", "--resume"]) == 2
    assert "--overwrite starts a new run and --resume continues one: pass one of them" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    err = capsys.readouterr().err
    [aside] = run_dir.glob("superseded-*")
    assert f"overwrite: the earlier run's files were moved into {aside}" in err
    assert files_of(aside) == before  # every byte, nothing deleted
    assert [r["time/iteration"] for r in rows_of(run_dir)] == ["1"]
    assert latest_checkpoint(run_dir).name == "ckpt-00000001"


# --- 2. one rule for damaged checkpoints: skip loudly, move aside, never delete -----------


@pytest.mark.mpi
def test_resume_skips_damaged_and_incomplete_checkpoints_loudly_and_keeps_them(trained, tmp_path):
    config_path, original = trained
    run_dir = copy_of(trained, tmp_path)
    checkpoints = run_dir / "checkpoints"
    arrays = checkpoints / "ckpt-00000004" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])  # the newest: truncated
    (checkpoints / "ckpt-00000003" / "state.json").unlink()  # the next: a file missing
    damaged = {name: data for name, data in files_of(checkpoints).items() if not name.startswith("ckpt-00000002")}
    progress_before = (run_dir / "progress.csv").read_bytes()

    resumed = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--resume",
                    "--iterations", 3, "--quiet", timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [aside] = run_dir.glob("superseded-*")
    err = resumed.stderr
    assert ("WARNING: skipped checkpoint ckpt-00000004: damaged (BadZipFile" in err
            and f"moved it into {aside}, with a copy of progress.csv and tb/ as they were" in err), err[-3000:]
    assert "WARNING: skipped checkpoint ckpt-00000003: incomplete: state.json missing; moved it into" in err
    assert f"resuming {checkpoints / 'ckpt-00000002'} at iteration 2" in err
    # nothing deleted: the skipped checkpoints, the rows and curves past the resume point are all kept aside
    assert {f"checkpoints/{name}": data for name, data in damaged.items() if name != "latest"} == \
        {name: data for name, data in files_of(aside).items() if name.startswith("checkpoints/")}
    assert (aside / "progress.csv").read_bytes() == progress_before
    assert (aside / "tb").is_dir()
    assert [r["time/iteration"] for r in rows_of(run_dir)] == ["1", "2", "3"]
    # and the resumed iteration 3 is bit for bit the one the damaged checkpoint held
    with np.load(original / "checkpoints" / "ckpt-00000003" / "arrays.npz") as a, \
            np.load(checkpoints / "ckpt-00000003" / "arrays.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[key], b[key]) for key in a.files)


# --- 3. the launcher dies: the ranks follow within seconds ------------------------------


@pytest.mark.mpi
def test_killing_the_launcher_ends_every_rank_and_resume_works(tmp_path):
    config_path = pendulum_toml(tmp_path, checkpoint_every=1)
    run_dir = tmp_path / "run"
    launcher = start_training(config_path, run_dir)
    try:
        wait_for_rows(run_dir, 2, launcher, timeout=150)
        launcher.kill()  # kill -9: no handler runs in the launcher
        launcher.wait()
        gone_after = wait_until_gone(run_dir, timeout=30)
        out, err = launcher.communicate(timeout=30)  # mpirun held the pipes: closed now
    finally:
        kill_job(run_dir)
    assert gone_after < 30
    # two paths may get there first: mpirun's parent-death signal (forwarded to the ranks as a stop)
    # or the ranks' own watch of the launcher's pid; either way the job stops and saves
    assert (f"the launcher (pid {launcher.pid}) is gone: stopping after this iteration" in out + err
            or "l2run train: stopped at iteration" in err), err[-3000:]
    last = load_checkpoint(latest_checkpoint(run_dir))
    assert last.iteration >= 2
    resumed = l2run("train", "--config", config_path, "--ranks", 2, "--run-dir", run_dir, "--resume", "--quiet",
                    "--iterations", last.iteration + 1, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at iteration {last.iteration}" in resumed.stderr
    assert rows_of(run_dir)[-1]["time/iteration"] == str(last.iteration + 1)


WATCHED_RANK = """
import sys, time
from baselines_ppo.stop import StopRequest
from experiments.train_cmd import LauncherWatch, process_start_time

launcher = int(sys.argv[1])
stop = StopRequest().__enter__()
LauncherWatch(stop, "host", launcher, process_start_time(launcher), grace=float(sys.argv[2]), interval=0.05).start()
print("watching", flush=True)
while True:  # an iteration far longer than the grace period
    time.sleep(0.05)
"""


def test_a_rank_abandons_an_iteration_that_outlives_the_launcher_by_the_grace_period():
    """The other half of the launcher-death rule: a long iteration (round2: minutes) is not
    waited for; the rank exits after the grace period, which ends an mpirun job."""
    launcher = subprocess.Popen(["sleep", "120"])
    rank = subprocess.Popen([sys.executable, "-c", WATCHED_RANK, str(launcher.pid), "0.5"], env=mpi_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert rank.stdout.readline().strip() == "watching"
        launcher.kill()  # not reaped yet: a zombie counts as gone
        start = time.time()
        _, err = rank.communicate(timeout=30)
        elapsed = time.time() - start
    finally:
        launcher.kill()
        launcher.wait()
        if rank.poll() is None:
            rank.kill()
    assert rank.returncode == 3 and elapsed < 10
    assert f"the launcher (pid {launcher.pid}) is gone: stopping after this iteration (saved), or abandoning " \
           "it in 0.5 s" in err
    assert "abandoning it; the last good checkpoint is intact" in err


@pytest.mark.mpi
def test_a_hangup_of_the_launcher_stops_and_saves(tmp_path):
    run_dir = tmp_path / "run"
    launcher = start_training(pendulum_toml(tmp_path), run_dir)
    try:
        wait_for_rows(run_dir, 2, launcher, timeout=150)
        launcher.send_signal(signal.SIGHUP)  # the terminal was closed
        out, err = launcher.communicate(timeout=120)
        wait_until_gone(run_dir, timeout=30)
    finally:
        kill_job(run_dir)
    assert launcher.returncode == 0, err[-3000:]
    assert "stopped after iteration" in err
    last = int(rows_of(run_dir)[-1]["time/iteration"])
    assert latest_checkpoint(run_dir).name == f"ckpt-{last:08d}"


# --- 5. Ctrl-C during start-up ---------------------------------------------------------------


@pytest.mark.mpi
def test_ctrl_c_during_start_up_stops_cleanly_with_nothing_to_save(tmp_path):
    run_dir = tmp_path / "run"
    launcher = start_training(pendulum_toml(tmp_path), run_dir)
    try:
        deadline = time.time() + 60
        while len(job_pids(run_dir, but=(launcher.pid,))) < 3:  # mpirun and both ranks exist: Ctrl-C now
            assert time.time() < deadline and launcher.poll() is None, launcher.communicate()[1][-3000:]
            time.sleep(0.02)
        launcher.send_signal(signal.SIGINT)
        out, err = launcher.communicate(timeout=120)
        wait_until_gone(run_dir, timeout=30)
    finally:
        kill_job(run_dir)
    assert launcher.returncode == 0, err[-3000:]
    assert "l2run train: stopped before the first iteration; nothing to save" in err
    assert "signal 10" not in err and "checkpoint follows" not in err
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # nothing written: still a fresh run dir


# --- 4. (the train part) failures say the truth, in one line ------------------------------


@pytest.mark.mpi
def test_a_job_that_dies_before_any_checkpoint_does_not_claim_one(tmp_path):
    run_dir = tmp_path / "run"
    launcher = start_training(pendulum_toml(tmp_path), run_dir)
    try:
        deadline = time.time() + 60
        while True:  # rank 1 dies as soon as it exists: long before any checkpoint
            try:
                os.kill(rank_pid(run_dir, rank=1), signal.SIGKILL)
                break
            except AssertionError:
                assert time.time() < deadline and launcher.poll() is None, launcher.communicate()[1][-3000:]
                time.sleep(0.02)
        out, err = launcher.communicate(timeout=120)
    finally:
        kill_job(run_dir)
    assert launcher.returncode != 0
    assert "mpirun exited with" in err and f"{run_dir} holds no checkpoint to resume: nothing was saved." in err
    assert "intact" not in err and "continue with --resume" not in err


def test_an_unwritable_run_dir_and_bad_numbers_are_one_line(tmp_path, capsys):
    from experiments.cli import main

    config_path = pendulum_toml(tmp_path)
    if os.geteuid() == 0:  # root passes every permission check, but not sysfs's
        read_only, reason = Path("/sys"), "Permission denied"
    else:
        read_only, reason = tmp_path / "read-only", "Permission denied"
        read_only.mkdir()
        read_only.chmod(0o555)
    for run_dir, ranks in ((read_only, "2"), (read_only / "l2run-test-run", "1")):
        done = subprocess.run([str(L2RUN), "train", "--config", str(config_path), "--ranks", ranks, "--run-dir",
                               str(run_dir), "--iterations", "1"], env=mpi_env(), capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert done.returncode == 2, done.stderr[-3000:]
        assert error_lines(done.stderr) == [
            f"l2run train: error: cannot write to run directory {run_dir} ({read_only} is not writable: {reason}); "
            "choose a writable --run-dir"]
        assert not (read_only / "l2run-test-run").exists()
    for flag, value, expected in (("--ranks", "0", "an integer >= 1"), ("--ranks", "-1", "an integer >= 1"),
                                  ("--ranks", "abc", "an integer >= 1"), ("--iterations", "0", "an integer >= 1"),
                                  ("--iterations", "-1", "an integer >= 1"), ("--iterations", "abc", "an integer >= 1")):
        with pytest.raises(SystemExit) as exited:
            main(["train", "--config", "quick", flag, value, "--run-dir", str(tmp_path)])
        assert exited.value.code == 2
        assert f"l2run train: error: argument {flag}: expected {expected}, got '{value}'" in capsys.readouterr().err


# --- 6. an empty config is an error; a partial one is completed and saved in full ----------


def test_an_empty_or_sectionless_config_is_an_error_listing_the_bundled_ones(tmp_path):
    for text, what in (("", "is empty"), ('name = "mine"\nseed = 3\n', "has no [env] or [ppo] section")):
        path = tmp_path / "mine.toml"
        path.write_text(text)
        done = subprocess.run([str(L2RUN), "train", "--config", str(path), "--run-dir", str(tmp_path / "run"),
                               "--iterations", "1"], env=mpi_env(), capture_output=True, text=True, timeout=60,
                              cwd=REPO)
        assert done.returncode == 2, done.stderr[-3000:]
        [line] = error_lines(done.stderr)
        assert line.startswith(f"l2run train: error: {path} {what}") and "quick, round1, round2" in line
        assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore:TensorFlow was already running")
def test_a_partial_config_takes_the_defaults_and_the_saved_config_shows_every_value(tmp_path):
    import dataclasses

    from baselines_ppo.config import PPOConfig
    from experiments.cli import main
    from experiments.config import load_config
    from experiments.envs import EnvConfig

    path = tmp_path / "partial.toml"
    path.write_text('gym_id = "Pendulum-v1"\n[ppo]\nsteps_per_rank = 128\nhidden_sizes = [8]\n')
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(path), "--run-dir", str(run_dir), "--iterations", "1", "--quiet"]) == 0
    saved_text = (run_dir / "config.toml").read_text()
    keys = {line.lstrip("# ").split(" = ")[0] for line in saved_text.splitlines() if " = " in line}
    for cls in (EnvConfig, PPOConfig):
        missing = {f.name for f in dataclasses.fields(cls)} - keys - {"seed"}
        assert not missing, f"config.toml leaves out {sorted(missing)}"
    assert "# target_kl = none (unset)" in saved_text.splitlines()
    saved = load_config(run_dir / "config.toml")
    assert saved == load_config(path)
    assert saved.ppo.minibatch_size == PPOConfig().minibatch_size and saved.ppo.steps_per_rank == 128
    assert rows_of(run_dir)[-1]["time/timesteps"] == "128"
