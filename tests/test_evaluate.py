"""l2run evaluate on the real simulator, with 1 rank and under mpirun -np 2."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from baselines_ppo import export

from experiments.cli import main

EVAL_ARGS = ["--episodes", "2", "--difficulty", "1", "--max-obstacles", "3", "--accuracy", "3e-2", "--quiet"]


def test_evaluate_random_policy_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate", "--policy", "random", *EVAL_ARGS, "--seed", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [e["seed"] for e in report["episodes"]] == [4, 5]
    for episode in report["episodes"]:
        assert episode["end"] == "fell"  # random excitations collapse the model within ~1.2 s
        assert 50 < episode["steps"] < 1000
        assert -2 < episode["score"] < 2
        # difficulty 1: 3 obstacles from about 1 m on; a random policy falls near the start
        assert episode["since_obstacle"] is None and 0 < episode["to_obstacle"] < 6
    summary = report["summary"]
    scores = [e["score"] for e in report["episodes"]]
    assert summary["mean"] == pytest.approx(sum(scores) / 2)
    assert summary["min"] == min(scores) and summary["max"] == max(scores)
    assert summary["ends"] == {"fell": 2, "time limit": 0, "simulator error": 0}
    assert report["env"]["integrator_accuracy"] == 3e-2
    assert "training" not in report  # a built-in policy has trained no steps
    printed = capsys.readouterr().out
    assert "score: mean" in printed and "fell (" in printed and "m before the next)" in printed


def test_evaluate_time_limit(tmp_path):
    out = tmp_path / "report.json"
    assert main(["evaluate", "--policy", "zero", *EVAL_ARGS, "--max-steps", "20", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [e["end"] for e in report["episodes"]] == ["time limit", "time limit"]
    assert all(e["steps"] == 20 for e in report["episodes"])
    assert main(["evaluate", "--policy", "zero", *EVAL_ARGS, "--difficulty", "0", "--max-steps", "5",
                 "--out", str(out)]) == 0
    assert [(e["since_obstacle"], e["to_obstacle"]) for e in json.loads(out.read_text())["episodes"]] == \
        [(None, None)] * 2  # flat ground


@pytest.mark.mpi
def test_evaluate_over_two_ranks_matches_one_rank(tmp_path):
    """``--ranks 2`` re-launches under mpirun; the episodes split over the ranks
    score exactly as on one."""
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    main(["evaluate", "--policy", "random", *EVAL_ARGS, "--episodes", "3", "--out", str(one)])
    l2run = Path(sys.executable).parent / "l2run"
    result = subprocess.run([str(l2run), "evaluate", "--policy", "random", *EVAL_ARGS, "--episodes", "3",
                             "--out", str(two), "--ranks", "2"], timeout=300, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    single, parallel = json.loads(one.read_text()), json.loads(two.read_text())
    assert parallel["ranks"] == 2 and single["ranks"] == 1
    assert [(e["seed"], e["score"], e["steps"]) for e in parallel["episodes"]] == \
        [(e["seed"], e["score"], e["steps"]) for e in single["episodes"]]
    assert f"report written to {two}" in result.stdout


@pytest.mark.parametrize(
    "policy_file, message",
    [
        ("text", "not a readable policy file"),
        ("missing", "neither 'random', 'zero'"),
        ("wrong size", "observation size 41"),
    ],
)
def test_bad_policy_files(tmp_path, policy_file, message):
    path = tmp_path / "policy.npz"
    if policy_file == "text":
        path.write_text("not a policy at all")
    elif policy_file == "wrong size":  # a real exported policy for a 10-float observation
        rng = np.random.default_rng(0)
        actor = [(rng.normal(size=(10, 8)), np.zeros(8)), (rng.normal(size=(8, 18)), np.zeros(18))]
        export.export_policy(path, actor, np.zeros(18), "tanh", np.zeros(10), np.ones(10), np.inf,
                             np.zeros(18), np.ones(18), metadata={"env": {"features": False}})
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--policy", str(path), *EVAL_ARGS])
    assert message in str(exit_info.value) and str(path) in str(exit_info.value)


def test_bad_out_directory(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--policy", "random", *EVAL_ARGS, "--out", str(tmp_path / "no" / "r.json")])
    assert exit_info.value.code == 2  # argparse, before any episode (experiments.cli_types)
    assert "does not exist" in capsys.readouterr().err.splitlines()[-1]


def test_evaluation_uses_the_graders_integrator_and_contact_whatever_the_policy_trained_with(tmp_path):
    from experiments.evaluation import policy_env_config

    path = tmp_path / "policy.npz"
    rng = np.random.default_rng(0)
    actor = [(rng.normal(size=(41, 8)), np.zeros(8)), (rng.normal(size=(8, 18)), np.zeros(18))]
    trained_env = {"features": False, "frame_skip": 2, "integrator": "semi_explicit_euler2",
                   "friction_transition_velocity": 0.3}
    export.export_policy(path, actor, np.zeros(18), "tanh", np.zeros(41), np.ones(41), np.inf,
                         np.zeros(18), np.ones(18),
                         metadata={"env": trained_env, "training": {"iteration": 7, "timesteps": 700}})
    config = policy_env_config(str(path), integrator_accuracy=1e-3)
    assert config.integrator == "runge_kutta_merson" and config.frame_skip == 2
    assert config.friction_transition_velocity is None  # the model's own 0.1 m/s, the grader's
    assert policy_env_config(str(path), integrator="semi_explicit_euler2").integrator == "semi_explicit_euler2"
    out = tmp_path / "report.json"
    assert main(["evaluate", "--policy", str(path), *EVAL_ARGS, "--episodes", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["env"]["integrator"] == "runge_kutta_merson" and report["env"]["friction_transition_velocity"] is None
    assert report["training"] == {"iteration": 7, "timesteps": 700}  # where `l2run plot --scores` puts it
    assert report["policy_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the bytes scored


def test_act_sample_draws_as_training_did_seeded_by_course(tmp_path, capsys):
    """--act sample scores the policy as it acted in training: the same per seed on
    every run, not the deterministic score; the report says how it acted."""
    path = tmp_path / "policy.npz"
    rng = np.random.default_rng(0)
    actor = [(rng.normal(size=(41, 8)), np.zeros(8)), (rng.normal(size=(8, 18)), np.full(18, 0.5))]
    export.export_policy(path, actor, np.full(18, -1.0), "tanh", np.zeros(41), np.ones(41), np.inf,
                         np.zeros(18), np.ones(18), metadata={"env": {"features": False}})
    reports = {}
    for name, act in (("sample", ["--act", "sample"]), ("again", ["--act", "sample"]), ("expected", [])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--policy", str(path), *EVAL_ARGS, "--max-steps", "40", *act,
                     "--out", str(out)]) == 0
        reports[name] = json.loads(out.read_text())
    scores = {name: [(e["seed"], e["score"]) for e in r["episodes"]] for name, r in reports.items()}
    assert scores["sample"] == scores["again"]
    assert scores["sample"] != scores["expected"]
    assert reports["sample"]["act"] == "sample" and "act" not in reports["expected"]
    assert "actions: sample" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--act sample applies to an exported policy, not to the built-in 'zero'"):
        main(["evaluate", "--policy", "zero", *EVAL_ARGS, "--act", "sample"])
