"""`experiments/scripts/ship_pretrained.sh` packages a real run: best policy by default,
or the policy named by POLICY (one picked on held-out seeds, say)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpi_cases import REPO, mpi_env
from test_train_cli import l2run, tiny_quick_config

SHIP = REPO / "experiments" / "scripts" / "ship_pretrained.sh"
SAVE_LINE = REPO / "experiments" / "scripts" / "save_line.sh"
KEEP_LINE = REPO / "experiments" / "scripts" / "keep_line.sh"


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
