"""`experiments/scripts/ship_pretrained.sh` packages a real run: best policy by default,
or the policy named by POLICY (one picked on held-out seeds, say)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpi_cases import REPO, mpi_env
from test_train_cli import l2run, tiny_quick_config

SHIP = REPO / "experiments" / "scripts" / "ship_pretrained.sh"
SAVE_LINE = REPO / "experiments" / "scripts" / "save_line.sh"
KEEP_LINE = REPO / "experiments" / "scripts" / "keep_line.sh"
CONTINUE_LINE = REPO / "experiments" / "scripts" / "continue_line.sh"


def environment(**env):
    return dict(mpi_env(), VENV=str(Path(sys.executable).parent.parent), **env)


def script(path, *args, **env):
    return subprocess.run(["bash", str(path), *map(str, args)], env=environment(**env), capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def ship(run_dir, out, episodes, **env):
    return script(SHIP, run_dir, out, episodes, **env)


@pytest.mark.slow
@pytest.mark.mpi
def test_ship_packages_the_best_policy_or_the_one_named_by_POLICY(tmp_path):
    config_path = tiny_quick_config(tmp_path, max_steps=40, steps_per_rank=64, minibatch_size=32)
    run_dir = tmp_path / "run"
    trained = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 1, "--run-dir", run_dir,
                    "--quiet", timeout=120)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # the two candidates differ (best_policy.npz records its score), so the byte checks below tell them apart
    assert (run_dir / "policy.npz").read_bytes() != (run_dir / "best_policy.npz").read_bytes()

    missing = ship(run_dir, tmp_path / "nowhere", 2, POLICY=str(tmp_path / "absent.npz"))
    assert missing.returncode == 2
    assert f"no policy file {tmp_path / 'absent.npz'}" in missing.stderr
    assert not (tmp_path / "nowhere").exists()

    out = tmp_path / "shipped"
    shipped = ship(run_dir, out, 2, POLICY=str(run_dir / "policy.npz"))
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    for name in ("policy.npz", "config.toml", "progress.csv", "curves.png", "gait.gif", "evaluation.json"):
        assert (out / name).is_file(), name
    assert (out / "policy.npz").read_bytes() == (run_dir / "policy.npz").read_bytes()
    report = json.loads((out / "evaluation.json").read_text())
    assert [episode["seed"] for episode in report["episodes"]] == [0, 1]
    assert report["env"]["integrator_accuracy"] == 1e-3 and report["env"]["difficulty"] == 2
    assert os.path.getsize(out / "gait.gif") > 0
    # the GIF shows the median episode of the evaluation, not seed 0 by default
    scores = sorted((episode["score"], episode["seed"]) for episode in report["episodes"])
    assert int((out / "gait_seed.txt").read_text()) == scores[0][1]  # of two, the lower middle one
    # the line's checkpoint travels with the runner, and --init-from OUT continues it
    assert (out / "checkpoints" / "latest").read_text().strip() == "ckpt-00000001"
    shipped_ckpt = out / "checkpoints" / "ckpt-00000001"
    assert sum(f.stat().st_size for f in shipped_ckpt.iterdir()) < 1_000_000
    # with the policy exported at that checkpoint (what evaluating a saved line scores)
    assert (shipped_ckpt / "policy.npz").read_bytes() == (run_dir / "policy.npz").read_bytes()
    continued = l2run("train", "--config", out / "config.toml", "--ranks", 2, "--iterations", 2,
                      "--run-dir", tmp_path / "continued", "--init-from", out, "--quiet", timeout=120)
    assert continued.returncode == 0, continued.stderr[-3000:]
    lineage = json.loads((tmp_path / "continued" / "lineage.json").read_text())
    assert lineage["kind"] == "checkpoint" and lineage["iteration"] == 1
    assert lineage["init_from"] == str(shipped_ckpt)
    progress = (tmp_path / "continued" / "progress.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in progress[1:]] == ["2"]
    assert len((tmp_path / "continued" / "parent_progress.csv").read_text().splitlines()) == 2  # header + row 1

    # grader scores kept beside the line (reports/*-seeds*.json) go on its curve when it is saved
    drawn = (out / "curves.png").read_bytes()
    assert script(SAVE_LINE, run_dir, out).returncode == 0
    assert (out / "curves.png").read_bytes() == drawn  # the same picture again: no report yet
    assert report["training"] == {"iteration": 1, "timesteps": 128}
    (out / "reports").mkdir()
    (out / "reports" / "shipped-seeds0-1.json").write_text(json.dumps(report))
    saved = script(SAVE_LINE, run_dir, out)
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert (out / "curves.png").read_bytes() != drawn

    default = ship(run_dir, tmp_path / "default", 1)
    assert default.returncode == 0, default.stderr[-3000:]
    assert (tmp_path / "default" / "policy.npz").read_bytes() == (run_dir / "best_policy.npz").read_bytes()


@pytest.mark.slow
@pytest.mark.mpi
def test_keep_line_saves_a_live_run_at_its_checkpoints_and_stops_with_it(tmp_path):
    config_path = tiny_quick_config(tmp_path, max_steps=40, steps_per_rank=64, minibatch_size=32, checkpoint_every=1)
    run_dir, out = tmp_path / "run", tmp_path / "line"
    # started before the trainer, as after a reboot: it waits for the run to take its lock
    keeper = subprocess.Popen(["bash", str(KEEP_LINE), str(run_dir), str(out)], env=environment(POLL="1", WAIT="120"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        trained = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 3, "--run-dir", run_dir,
                        "--quiet", timeout=180)
        assert trained.returncode == 0, trained.stderr[-3000:]
        stdout, stderr = keeper.communicate(timeout=120)  # it exits by itself once the trainer has
    finally:
        keeper.kill()
    assert keeper.returncode == 0, stderr[-3000:]
    assert f"{run_dir} is training" in stdout and f"the trainer of {run_dir} has exited" in stdout
    assert stdout.rstrip().endswith(f"{out} holds ckpt-00000003 of {run_dir}")
    assert (out / "checkpoints" / "latest").read_text().strip() == "ckpt-00000003"
    assert (out / "checkpoints" / "ckpt-00000003" / "policy.npz").read_bytes() == (run_dir / "policy.npz").read_bytes()
    assert (out / "progress.csv").read_bytes() == (run_dir / "progress.csv").read_bytes()
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == ["ckpt-00000003", "latest"]

    # on a run nobody trains it waits WAIT seconds, then leaves a line already saved as it is
    drawn = (out / "curves.png").read_bytes()
    again = script(KEEP_LINE, run_dir, out, POLL="1", WAIT="0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines() == [f"keep_line: no training job holds {run_dir}; saving what it has",
                                         f"keep_line: {out} holds ckpt-00000003 of {run_dir}"]
    assert (out / "curves.png").read_bytes() == drawn
    nothing = script(KEEP_LINE, tmp_path / "empty", tmp_path / "nowhere", POLL="1", WAIT="0")
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == f"keep_line: {tmp_path / 'empty'} has no checkpoint: nothing saved"
    assert not (tmp_path / "nowhere").exists()


def wait_for_line(log: Path, line: str, timeout: float = 240) -> str:
    """The keep_line log once it ends with ``line`` (the watcher's last word), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.rstrip().endswith(line):
            return text
        time.sleep(1)
    pytest.fail(f"{log} did not end with {line!r}:\n{text[-2000:]}")


@pytest.mark.slow
@pytest.mark.mpi
def test_continue_line_resumes_or_starts_from_the_saved_line_and_keeps_it_saved(tmp_path):
    from baselines_ppo.run_lock import RunLock

    config_path = tiny_quick_config(tmp_path, max_steps=40, steps_per_rank=64, minibatch_size=32, checkpoint_every=1)
    origin, line = tmp_path / "origin", tmp_path / "line"
    trained = l2run("train", "--config", config_path, "--ranks", 2, "--iterations", 2, "--run-dir", origin,
                    "--quiet", timeout=180)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert script(SAVE_LINE, origin, line).returncode == 0
    origin_progress = (origin / "progress.csv").read_bytes()

    nothing = script(CONTINUE_LINE, tmp_path / "empty", tmp_path / "run")
    assert nothing.returncode == 2
    assert nothing.stderr.startswith(f"continue_line: {tmp_path / 'empty'} holds no complete checkpoint")
    with RunLock(tmp_path / "run"):
        busy = script(CONTINUE_LINE, line, tmp_path / "run")
    assert busy.returncode == 1
    assert busy.stderr.strip() == f"continue_line: {tmp_path / 'run'} is already training " \
                                  f"(stop it with: l2run stop {tmp_path / 'run'})"
    (tmp_path / "run").rename(tmp_path / "locked-once")

    # no run directory on this machine: the line goes on from its saved checkpoint, on the line's 2 ranks
    run_dir = tmp_path / "run"
    started = script(CONTINUE_LINE, line, run_dir, ITERATIONS="3", POLL="1", WAIT="30")
    assert started.returncode == 0, started.stderr[-3000:]
    assert f"continue_line: {run_dir} continues {line} from iteration 2" in started.stdout
    wait_for_line(Path(f"{run_dir}.keep_line.log"), f"keep_line: {line} holds ckpt-00000003 of {run_dir}")
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert lineage["kind"] == "checkpoint" and lineage["iteration"] == 2 and lineage["changes"] == []
    assert (line / "checkpoints" / "latest").read_text().strip() == "ckpt-00000003"

    # the run directory is as far as the line: it is resumed
    resumed = script(CONTINUE_LINE, line, run_dir, ITERATIONS="4", POLL="1", WAIT="30")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"continue_line: {run_dir} resumes its iteration 3" in resumed.stdout
    wait_for_line(Path(f"{run_dir}.keep_line.log"), f"keep_line: {line} holds ckpt-00000004 of {run_dir}")
    assert [row.split(",")[0] for row in (run_dir / "progress.csv").read_text().splitlines()[1:]] == ["3", "4"]

    # a run directory behind the line (runs/ left from an earlier period) is left as it is
    stale = script(CONTINUE_LINE, line, origin, ITERATIONS="5", POLL="1", WAIT="30")
    assert stale.returncode == 0, stale.stderr[-3000:]
    assert stale.stdout.startswith(f"continue_line: {origin} is at iteration 2, behind {line} (iteration 4): "
                                   "left as it is\n")
    fresh = tmp_path / "origin-4"
    assert f"continue_line: {fresh} continues {line} from iteration 4" in stale.stdout
    wait_for_line(Path(f"{fresh}.keep_line.log"), f"keep_line: {line} holds ckpt-00000005 of {fresh}")
    assert (origin / "progress.csv").read_bytes() == origin_progress
    assert (origin / "checkpoints" / "latest").read_text().strip() == "ckpt-00000002"
