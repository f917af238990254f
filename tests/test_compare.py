"""l2run compare: evaluation reports of the real simulator, paired by course."""
import json

import pytest

from experiments.cli import main
from experiments.comparison import ComparisonError, PolicyScores, compare, format_comparison, paired

EVAL_ARGS = ["--difficulty", "1", "--max-obstacles", "3", "--accuracy", "3e-2", "--quiet"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Real reports: the zero policy on courses 0-2 in two reports (0-1, then 2), random on 0-2."""
    folder = tmp_path_factory.mktemp("reports")
    runs = {"zero-a": ("zero", 0, 2), "zero-b": ("zero", 2, 1), "random": ("random", 0, 3)}
    for name, (policy, seed, episodes) in runs.items():
        assert main(["evaluate", "--policy", policy, "--seed", str(seed), "--episodes", str(episodes), *EVAL_ARGS,
                     "--max-steps", "60", "--out", str(folder / f"{name}.json")]) == 0
    return folder


def test_compare_pairs_merged_reports_by_course(reports, capsys):
    capsys.readouterr()
    assert main(["compare", str(reports / "zero-a.json"), str(reports / "random.json"),
                 str(reports / "zero-b.json")]) == 0
    printed = capsys.readouterr().out
    reference, [result] = compare([reports / "zero-a.json", reports / "random.json", reports / "zero-b.json"])
    assert reference == "zero" and result.policy == "random" and result.courses == 3  # zero's two reports merged
    zero = [e["score"] for name in ("zero-a", "zero-b") for e in json.loads((reports / f"{name}.json").read_text())["episodes"]]
    rand = [e["score"] for e in json.loads((reports / "random.json").read_text())["episodes"]]
    assert result.difference == pytest.approx(sum(r - z for r, z in zip(rand, zero)) / 3)
    assert result.reference_mean == pytest.approx(sum(zero) / 3)
    pairs = list(zip(rand, zero))
    assert (result.better, result.worse) == (sum(r > z for r, z in pairs), sum(r < z for r, z in pairs))
    assert "reference: zero" in printed and "random" in printed and f"{result.difference:+7.2f}" in printed
    random_seconds = sum(e["steps"] for e in json.loads((reports / "random.json").read_text())["episodes"]) * 0.01
    assert result.pace == pytest.approx(sum(rand) / random_seconds)  # metres per simulated second, 10 ms a step
    assert f"{result.reference_pace:.2f}->{result.pace:.2f}" in printed


def test_three_policies_or_more_are_asked_whether_they_differ_at_all(reports, tmp_path, capsys):
    third = json.loads((reports / "random.json").read_text())
    third["policy"] = "random-again"
    (tmp_path / "third.json").write_text(json.dumps(third))
    capsys.readouterr()
    assert main(["compare", str(reports / "zero-a.json"), str(reports / "random.json")]) == 0
    assert "policies on their" not in capsys.readouterr().out  # two policies: the paired line says it
    assert main(["compare", str(reports / "zero-a.json"), str(reports / "zero-b.json"), str(reports / "random.json"),
                 str(tmp_path / "third.json")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("3 policies on their 3 common courses: the variance of their means is ")
    assert "shuffles within courses" in last and "by luck alone the best of 3 would lead by" in last


def test_paired_statistics_and_verdict():
    reference = PolicyScores("a", {1: 10.0, 2: 4.0, 3: 7.0, 4: 1.0}, {1: False, 2: True, 3: True, 4: True})
    same_gap = PolicyScores("b", {1: 11.0, 2: 5.0, 3: 8.0, 4: 2.0, 9: 50.0}, {s: True for s in (1, 2, 3, 4, 9)})
    result = paired(reference, same_gap)  # course 9 has no pair: ignored
    assert (result.courses, result.difference, result.standard_error) == (4, 1.0, 0.0)
    assert (result.better, result.worse, result.falls, result.reference_falls) == (4, 0, 4, 3)
    assert not result.within_noise  # a constant gain is no noise
    assert result.pace is None  # no episode lengths given
    assert format_comparison("a", [result]).endswith("       -  better")  # no pace to print
    reference.seconds, same_gap.seconds = {1: 10.0, 2: 4.0, 3: 5.0, 4: 1.0}, {1: 5.0, 2: 5.0, 3: 5.0, 4: 5.0, 9: 1.0}
    result = paired(reference, same_gap)
    assert (result.reference_pace, result.pace) == (22.0 / 20.0, 26.0 / 20.0)  # total metres over total seconds
    noisy = PolicyScores("c", {1: 14.0, 2: 1.0, 3: 9.0, 4: 0.0}, {s: True for s in (1, 2, 3, 4)})
    result = paired(reference, noisy)
    assert result.difference == pytest.approx(0.5) and result.within_noise


def test_compare_refuses_what_it_cannot_pair(reports, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"expected at least 2 policies to compare"):
        main(["compare", str(reports / "zero-a.json"), str(reports / "zero-b.json")])
    other = json.loads((reports / "random.json").read_text())
    other["env"]["integrator_accuracy"] = 1e-3
    (tmp_path / "grader.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match=r"scored under other settings: integrator_accuracy 0.03 .* but 0.001"):
        main(["compare", str(reports / "zero-a.json"), str(tmp_path / "grader.json")])
    changed = json.loads((reports / "zero-a.json").read_text())
    changed["episodes"][0]["score"] += 1.0
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    with pytest.raises(SystemExit, match=r"course 0 of zero scored .* expected one score per course"):
        main(["compare", str(reports / "zero-a.json"), str(tmp_path / "changed.json"), str(reports / "random.json")])
    (tmp_path / "bad.json").write_text("{\"policy\": 1}")
    with pytest.raises(SystemExit, match=r"bad.json: not a report of `l2run evaluate --out`"):
        main(["compare", str(reports / "zero-a.json"), str(tmp_path / "bad.json")])
    with pytest.raises(ComparisonError, match=r"share 0 scored course"):
        paired(PolicyScores("a", {1: 1.0}, {1: True}), PolicyScores("b", {2: 1.0}, {2: True}))
    with pytest.raises(SystemExit) as err:  # argparse: one usage line, status 2
        main(["compare", str(tmp_path / "missing.json")])
    assert err.value.code == 2 and "expected an existing .json file" in capsys.readouterr().err


def test_a_policy_scored_with_other_actions_is_another_player(reports, tmp_path):
    """The same policy's sampled report (evaluate --act sample) pairs against its
    deterministic one instead of clashing with it course by course."""
    report = json.loads((reports / "zero-a.json").read_text())
    report["act"] = "sample"
    for episode in report["episodes"]:
        episode["score"] += 1.0
    sampled = tmp_path / "zero-sampled.json"
    sampled.write_text(json.dumps(report))
    reference, [result] = compare([reports / "zero-a.json", sampled])
    assert reference == "zero" and result.policy == "zero (sample actions)"
    assert result.courses == 2 and result.difference == pytest.approx(1.0)


def test_a_path_that_holds_another_runner_since_is_another_policy(tmp_path, capsys):
    """pretrained/round2/policy.npz names whichever runner is shipped: reports of the
    file before and after a new runner replaced it pair as two policies (told apart by
    the sha256 each report records), not one policy scored twice on the same course."""
    import hashlib
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "pretrained" / "round2"
    runner = tmp_path / "policy.npz"
    digests = []
    for name, source in (("before", shipped / "reports" / "runner-800.npz"), ("after", shipped / "policy.npz")):
        shutil.copyfile(source, runner)
        digests.append(hashlib.sha256(runner.read_bytes()).hexdigest())
        assert main(["evaluate", "--policy", str(runner), "--seed", "0", "--episodes", "2", *EVAL_ARGS,
                     "--max-steps", "40", "--out", str(tmp_path / f"{name}.json")]) == 0
    assert digests[0] != digests[1]
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "before.json"), str(tmp_path / "after.json")]) == 0
    printed = capsys.readouterr().out
    reference, [result] = compare([tmp_path / "before.json", tmp_path / "after.json"])
    assert reference == f"{runner} [sha256 {digests[0][:8]}]"
    assert result.policy == f"{runner} [sha256 {digests[1][:8]}]" and result.courses == 2
    assert f"[sha256 {digests[1][:8]}]" in printed
