"""The benchmark commands run end to end and print their ratios (no timing asserted)."""
import re

import pytest

from experiments.cli import main


def test_bench_env_prints_ratios_against_the_floor(capsys):
    assert main(["bench", "env", "--episodes", "1", "--accuracies", "3e-2"]) == 0
    out = capsys.readouterr().out
    floor = re.search(r"floor \(bare OpenSim\)\s+\d+\s+[\d.]+\s+1\.000\s+-\s+([\d.]+)\s+([\d.]+)", out)
    assert floor, out
    for variant in ("floor + 10 spheres, 2017 contact", "floor + 10 spheres, l2run contact", "env difficulty 0",
                    "env difficulty 1 (3 obstacles)", "env difficulty 2 (10 obstacles)"):
        row = re.search(re.escape(variant) + r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+|-)\s+([\d.]+)\s+([\d.]+)", out)
        assert row, out
        steps, rate, ratio, reset_ms, evaluations, us_per_evaluation = row.groups()
        assert int(steps) > 50 and float(rate) > 0 and float(ratio) > 0
        assert (reset_ms == "-") == variant.startswith("floor")  # only the env resets, timed apart
        # Same random excitations, same falls: the integrator does about the floor's work.
        assert float(evaluations) == pytest.approx(float(floor.group(1)), rel=0.2)
        assert float(us_per_evaluation) > 0


def test_bench_memory_reports_growth(capsys):
    assert main(["bench", "memory", "--episodes", "20", "--difficulty", "1", "--max-obstacles", "3"]) == 0
    out = capsys.readouterr().out
    assert "after episode   20" in out
    assert re.search(r"growth from episode 20 to 20: [+-][\d.]+ MB", out)


@pytest.mark.slow
@pytest.mark.mpi
def test_bench_scaling_compares_rank_counts(capsys):
    args = ["bench", "scaling", "--config", "quick", "--ranks", "1", "2", "--iterations", "2",
            "--steps-per-rank", "128"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+1\s+[\d.]+\s+1\.00x", out, re.M), out
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+x", out, re.M), out
    assert "2 ranks vs 1:" in out


def test_bench_integrators_compares_against_the_grader(capsys):
    args = ["bench", "integrators", "--episodes", "1", "--max-steps", "60",
            "--candidates", "semi_explicit_euler2:3e-2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"runge_kutta_merson\s+0\.001\s+[\d.]+\s+1\.00\s+0\.0000", out), out
    assert re.search(r"semi_explicit_euler2\s+0\.03\s+[\d.]+\s+[\d.]+\s+[\d.]+", out), out
    with pytest.raises(SystemExit, match="INTEGRATOR:ACCURACY"):
        main(["bench", "integrators", "--candidates", "euler:0.1"])


def test_bench_min_excitation_compares_floors_on_the_same_actions(capsys):
    args = ["bench", "min-excitation", "--floors", "0", "0.05", "--episodes", "1", "--max-steps", "40"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no_floor_954k/policy.npz" in out  # the default: a policy trained without a floor
    assert re.search(r"^\s+0\s+(\d+)\s+[\d.]+\s+1\.00\s+-?[\d.]+$", out, re.M), out
    assert main(args + ["--policy", "random"]) == 0
    out = capsys.readouterr().out
    assert "relaxed random excitations held 5 steps" in out
    assert re.search(r"^\s+0\s+(\d+)\s+[\d.]+\s+1\.00\s+-?[\d.]+$", out, re.M), out
    assert re.search(r"^\s+0\.05\s+(\d+)\s+[\d.]+\s+[\d.]+\s+-?[\d.]+$", out, re.M), out


def test_bench_min_excitation_rejects_a_floor_outside_the_excitation_range(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "min-excitation", "--floors", "0", "1.5"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("argument --floors: expected a number in [0, 1), got '1.5'")


def test_bench_policy_compares_variants_of_a_trained_policy(capsys):
    args = ["bench", "policy", "--episodes", "1", "--max-steps", "15",
            "--variants", "sampled", "deterministic", "sampled+floor=0.15+max_step=2e-3", "sampled+hipknee=0.15",
            "sampled+transition=0.4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pretrained/round2/policy.npz" in out  # the default: the shipped policy, in its training env
    assert "semi_explicit_euler2 at 0.03, floor 0.05" in out
    number = (r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)%\s+(\d+)%\s+(\d+)\s+(-?[\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)%"
              r"\s+([\d.]+)")
    rows = {}
    for variant in ("sampled", "deterministic", "sampled+floor=0.15+max_step=2e-3", "sampled+hipknee=0.15",
                    "sampled+transition=0.4"):
        row = re.search(r"^\s+" + re.escape(variant) + number, out, re.M)
        assert row, out
        rows[variant] = row.groups()
    steps, _, ratio, _, _, length, _, taken, tried, _, early = rows["sampled"]
    assert int(steps) == 15 and float(ratio) == 1.0 and int(length) == 15
    assert 1 <= float(taken) <= float(tried)  # the integrator's internal steps per 10 ms step
    assert early == taken  # episodes shorter than EARLY_STEPS: the early window is the whole episode
    floored = rows["sampled+floor=0.15+max_step=2e-3"]
    assert int(floored[3]) >= int(rows["sampled"][3])  # raising to 0.15 only adds excitations at the lower bound
    assert float(floored[7]) >= 5  # a maximum step of 2 ms: at least 5 internal steps per 10 ms
    hip_knee = rows["sampled+hipknee=0.15"]
    assert int(hip_knee[3]) >= int(rows["sampled"][3])  # raising 12 of the 18 muscles adds excitations at the bound


def test_bench_policy_rejects_bad_variants():
    with pytest.raises(SystemExit, match="actions must be one of"):
        main(["bench", "policy", "--variants", "greedy"])
    with pytest.raises(SystemExit, match=r"floor must lie in \[0, 1\)"):
        main(["bench", "policy", "--variants", "sampled+floor=1.5"])
    with pytest.raises(SystemExit, match=r"hipknee must lie in \[0, 1\)"):
        main(["bench", "policy", "--variants", "sampled+hipknee=-0.1"])
    with pytest.raises(SystemExit, match=r"transition must lie in \(0, 10\], got 0"):
        main(["bench", "policy", "--variants", "sampled+transition=0"])
    with pytest.raises(SystemExit, match="options are floor="):
        main(["bench", "policy", "--variants", "sampled+speed=2"])
    with pytest.raises(SystemExit, match="exported policy or a run directory"):
        main(["bench", "policy", "--policy", "random"])
