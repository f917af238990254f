"""`l2run select --reports`: the choice among evaluate reports of the real
simulator, the winner found by its sha256 and run on report seeds over 2 ranks."""
import hashlib
import json
import shutil

import numpy as np
import pytest

from baselines_ppo.export import load_policy
from experiments.cli import main
from mpi_cases import REPO
from test_train_cli import l2run

RUNNERS = REPO / "pretrained" / "round2"
EVAL_ARGS = ["--difficulty", "1", "--max-obstacles", "3", "--accuracy", "3e-2", "--max-steps", "40", "--quiet"]


def evaluate(policy, seed, episodes, out, *extra):
    assert main(["evaluate", "--policy", str(policy), "--seed", str(seed), "--episodes", str(episodes), *EVAL_ARGS,
                 *extra, "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Two real runners (iterations 800 and 1640) scored on courses 100-101, one
    of them also with sampled actions and on course 102."""
    folder = tmp_path_factory.mktemp("select_reports")
    policies = folder / "policies"
    policies.mkdir()
    shutil.copyfile(RUNNERS / "reports" / "runner-800.npz", policies / "older.npz")
    shutil.copyfile(RUNNERS / "policy.npz", policies / "newer.npz")
    for name in ("older", "newer"):
        evaluate(policies / f"{name}.npz", 100, 2, folder / f"{name}.json")
    evaluate(policies / "older.npz", 100, 2, folder / "older-sample.json", "--act", "sample")
    evaluate(policies / "newer.npz", 102, 1, folder / "newer-102.json")
    return folder


def mean_of(report):
    return float(np.mean([e["score"] for e in report["episodes"]]))


def select(*args):
    return main(["select", *map(str, args), "--quiet"])


@pytest.mark.slow
@pytest.mark.mpi
def test_the_best_report_wins_and_only_it_runs_on_the_report_seeds(scored, tmp_path):
    reports = {name: json.loads((scored / f"{name}.json").read_text()) for name in ("older", "newer")}
    best = max(reports, key=lambda name: (mean_of(reports[name]), name == "newer"))  # a tie: the later
    out, shipped = tmp_path / "selection.json", tmp_path / "shipped.npz"
    done = l2run("select", "--reports", scored / "older.json", scored / "older-sample.json", scored / "newer.json",
                 "--report-seeds", "0-1", "--ranks", 2, "--out", out, "--ship", shipped, "--quiet", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [row["candidate"] for row in result["candidates"]] == [reports["older"]["policy"],
                                                                  reports["newer"]["policy"]]
    assert result["winner"]["candidate"] == reports[best]["policy"]
    assert result["winner"]["mean"] == pytest.approx(mean_of(reports[best]))
    assert result["selection_seeds"] == [100, 101] and result["ranks"] == 2
    assert "left out: " in done.stdout and "(sample actions)" in done.stdout and "<- winner" in done.stdout
    assert result["env"]["integrator_accuracy"] == 3e-2 and result["env"]["max_steps"] == 40
    assert (result["spread"]["policies"], result["spread"]["courses"]) == (2, 2)
    assert result["spread"]["lead"] == pytest.approx(abs(mean_of(reports["older"]) - mean_of(reports["newer"])) / 2)
    assert "2 policies on their 2 common courses" in done.stdout

    # the report seeds' scores are the winner's own: evaluate gives the same, course by course
    again = evaluate(reports[best]["policy"], 0, 2, tmp_path / "again.json")
    assert [e["seed"] for e in result["report"]["episodes"]] == [0, 1]
    assert [e["score"] for e in result["report"]["episodes"]] == [e["score"] for e in again["episodes"]]

    winner_file = load_policy(reports[best]["policy"])
    policy = load_policy(shipped)
    assert policy.default_mode == result["winner"]["mode"] == winner_file.default_mode
    assert policy.metadata["selection"]["seeds"] == [100, 101]
    assert policy.metadata["selection"]["report_mean"] == pytest.approx(result["report"]["summary"]["mean"])
    for (weights, bias), (weights0, bias0) in zip(policy.actor, winner_file.actor):
        assert np.array_equal(weights, weights0) and np.array_equal(bias, bias0)


def test_the_winner_runs_only_from_the_bytes_its_reports_scored(scored, tmp_path, capsys):
    """A report written on another machine names a path that is gone here, or that
    holds another runner since: the winner is found by its sha256, or refused."""
    newer = json.loads((scored / "newer.json").read_text())
    older = json.loads((scored / "older.json").read_text())
    winner, loser = (newer, older) if mean_of(newer) >= mean_of(older) else (older, newer)
    moved = dict(winner, policy=str(tmp_path / "elsewhere" / "policy.npz"))
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    (tmp_path / "loser.json").write_text(json.dumps(loser))
    reports = ["--reports", tmp_path / "loser.json", tmp_path / "moved.json", "--report-seeds", "none"]
    shipped = tmp_path / "shipped.npz"

    capsys.readouterr()
    assert select(*reports, "--ship", shipped) == 2
    assert capsys.readouterr().err.strip() == (
        f"l2run select: error: the winner {moved['policy']} was scored from a file with sha256 "
        f"{winner['policy_sha256'][:12]}...; {moved['policy']} is gone: give the file it scored with "
        "--policy-files NPZ|DIR")
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(loser["policy"], moved["policy"])  # the path holds another runner now
    assert select(*reports, "--ship", shipped) == 2
    loser_digest = hashlib.sha256((tmp_path / "elsewhere" / "policy.npz").read_bytes()).hexdigest()
    assert f"holds another file now (sha256 {loser_digest[:12]}...)" in capsys.readouterr().err
    assert not shipped.exists() and not (tmp_path / "selection.json").exists()

    assert select(*reports, "--ship", shipped, "--policy-files", scored / "policies") == 0
    printed = capsys.readouterr().out
    assert f"the winner's file: {winner['policy']}" in printed
    assert load_policy(shipped).metadata["selection"]["candidate"] == moved["policy"]
    assert json.loads((tmp_path / "selection.json").read_text())["winner"]["file"] == winner["policy"]

    unrecorded = {key: value for key, value in winner.items() if key != "policy_sha256"}
    (tmp_path / "unrecorded.json").write_text(json.dumps(unrecorded))
    assert select("--reports", tmp_path / "loser.json", tmp_path / "unrecorded.json", "--report-seeds", "0") == 2
    assert "do not record the sha256 of an exported policy file" in capsys.readouterr().err


def test_reports_that_cannot_make_an_honest_choice_get_one_line(scored, tmp_path, capsys):
    older, newer, newer_102 = (scored / f"{name}.json" for name in ("older", "newer", "newer-102"))
    cases = [
        (["--reports", older, newer, "--seeds", "100-101", "--report-seeds", "101-102"],
         "--seeds and --report-seeds share seed(s) 101"),
        (["--reports", older, newer, newer_102, "--report-seeds", "none"],
         "the reports score their policies on different courses ("),
        (["--reports", older, newer, newer_102, "--seeds", "100-102", "--report-seeds", "none"],
         "was not scored on course(s) 102 of --seeds 100-102"),
        (["--reports", older, newer, "--accuracy", "1e-3"],
         "--accuracy 0.001: the reports were scored at 0.03; with --reports the winner is reported at the "
         "settings it was chosen at (leave --accuracy out)"),
        (["--reports", older, newer, "--include", older], "--include works with a run directory"),
        (["--reports", scored / "older-sample.json"], "the reports score only sampled actions"),
        (["--reports", older, newer, "--policy-files", tmp_path / "gone"],
         f"--policy-files {tmp_path / 'gone'}: no such file or directory"),
        ([tmp_path, "--reports", older], "give a run directory or --reports REPORT..., not both"),
        ([], "give a run directory to score its policies, or --reports REPORT..."),
        ([tmp_path], "a run directory's selection needs --seeds"),
        ([tmp_path, "--seeds", "1", "--policy-files", older], "--policy-files works with --reports"),
    ]
    capsys.readouterr()
    for args, message in cases:
        assert select(*args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("l2run select: error: ") and message in err and err.count("\n") == 1, (args, err)
    other = json.loads(newer.read_text())
    other["env"]["max_steps"] = 1000
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert select("--reports", older, tmp_path / "other.json") == 2
    assert "scored under other settings: max_steps 40" in capsys.readouterr().err
    assert not (scored / "selection.json").exists()  # nothing written by a refused selection

    assert select("--reports", older, newer, newer_102, "--seeds", "100-101", "--report-seeds", "none",
                  "--out", tmp_path / "chosen.json") == 0  # course 102 is left aside
    assert json.loads((tmp_path / "chosen.json").read_text())["selection_seeds"] == [100, 101]
