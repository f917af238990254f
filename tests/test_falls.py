"""``l2run falls``: the steps before a fall against steady running.

The profile's arithmetic on constructed traces (steady statistics, alignment of
short episodes, z, onset, ranking), then the command end to end on the real
simulator, on one rank and under a real 2-rank mpirun.
"""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from experiments import cli
from experiments.evaluation import FELL, TIME_LIMIT, EpisodeResult
from experiments.falls import Trace, profile, signal_names
from experiments.policies import HeldPolicy


def trace(signals, end=FELL):
    signals = np.asarray(signals, dtype=np.float64)
    return Trace(EpisodeResult(0, 0, 1.0, len(signals), end), signals)


def steady_then(tail, steps=40, seed=0):
    """Two signals: noise with std ~1 around 0, then ``tail`` (rows) at the end."""
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(steps, 2))
    return np.vstack([body, tail])


def test_steady_statistics_leave_out_the_start_and_the_steps_before_a_fall():
    running = trace(np.arange(10.0)[:, None], end=TIME_LIMIT)  # all steps from skip_start on
    fallen = trace(np.arange(100.0, 110.0)[:, None])  # steps skip_start .. len - horizon
    p = profile([running, fallen], horizon=3, skip_start=2)
    steady = np.r_[np.arange(2.0, 10.0), np.arange(102.0, 107.0)]
    assert p.steady_steps == len(steady) == 13
    np.testing.assert_allclose(p.steady_mean, [steady.mean()])
    np.testing.assert_allclose(p.steady_std, [steady.std()])
    np.testing.assert_array_equal(p.windows[0, :, 0], [107.0, 108.0, 109.0])
    assert [r.end for r in p.falls] == [FELL]


def test_a_fall_shorter_than_the_horizon_is_aligned_on_its_last_step():
    long = trace(steady_then(np.zeros((0, 2))))
    short = trace([[1.0, 2.0], [3.0, 4.0]])
    p = profile([long, short], horizon=5, skip_start=0)
    assert p.windows.shape == (2, 5, 2)
    assert np.isnan(p.windows[1, :3]).all()
    np.testing.assert_array_equal(p.windows[1, 3:], [[1.0, 2.0], [3.0, 4.0]])
    assert np.isfinite(p.z()).all()  # the means skip the missing steps


def test_onset_counts_the_steps_a_signal_has_stayed_out_of_steady_running():
    # signal 0 is 5 stds off for the last 8 steps; signal 1 only for the last 3
    tail = np.column_stack([np.full(8, 5.0), np.r_[np.zeros(5), np.full(3, -4.0)]])
    traces = [trace(steady_then(tail, seed=s)) for s in range(3)]
    p = profile(traces, horizon=20, skip_start=0)
    onset = p.onset()
    assert onset[0] == 8 and onset[1] == 3
    assert list(p.ranking()) == [0, 1]  # the earlier one first
    z = p.z()
    assert z[-1, 0] > 3 and z[-1, 1] < -2.5


def test_a_signal_constant_in_steady_running_has_zero_z():
    constant = np.column_stack([np.full(50, 0.1), np.random.default_rng(0).normal(size=50)])
    p = profile([trace(constant)], horizon=10, skip_start=0)
    assert p.steady_std[0] == 0 and np.all(p.z()[:, 0] == 0) and np.all(p.onset()[:1] == 0)


def test_without_a_fall_or_a_steady_step_the_profile_says_why():
    with pytest.raises(ValueError, match=r"no episode ended in a fall \(1 ended by: time limit\)"):
        profile([trace(np.zeros((30, 2)), end=TIME_LIMIT)], horizon=10, skip_start=0)
    with pytest.raises(ValueError, match="no steady step.*within 5 \\+ 10 steps.*--skip-start or --horizon"):
        profile([trace(np.zeros((12, 2)))], horizon=10, skip_start=5)


def test_gait_asymmetry_pairs_each_right_signal_with_its_left():
    from experiments.falls import FallProfile, gait_asymmetry

    names = signal_names()
    mean, std = np.zeros(len(names)), np.ones(len(names))
    mean[names.index("hip_r")], mean[names.index("excitation soleus_l")] = 0.9, 0.6
    std[names.index("hip_l")] = 0.0  # pooled std sqrt((1 + 0) / 2)
    asymmetry = gait_asymmetry(FallProfile(1, mean, std, 10, np.zeros((1, 1, len(names))), []))
    assert len(asymmetry) == 33  # 24 leg pairs among the 82 features, 9 muscles
    right, left, difference = asymmetry[0]
    assert (names[right], names[left]) == ("hip_r", "hip_l") and difference == pytest.approx(0.9 / np.sqrt(0.5))
    right, left, difference = asymmetry[1]
    assert (names[right], names[left]) == ("excitation soleus_r", "excitation soleus_l") and difference == -0.6
    assert all(d == 0 for _, _, d in asymmetry[2:])


def test_held_policy_repeats_each_action_for_its_frame_skip():
    class Counter:
        calls = 0

        def act(self, obs):
            self.calls += 1
            return np.array([float(self.calls)])

    held = HeldPolicy(Counter(), 3)
    assert [held.act(None)[0] for _ in range(7)] == [1, 1, 1, 2, 2, 2, 3]


ZERO = ["falls", "--policy", "zero", "--episodes", "2", "--horizon", "20", "--skip-start", "5",
        "--accuracy", "3e-2", "--quiet"]


def read_profile(out):
    with open(out / "falls.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_falls_of_a_collapsing_skeleton_on_the_real_simulator(tmp_path, capsys):
    """The zero policy collapses within two seconds: the pelvis drops and the
    knees fold, so those signals must come out far below steady running."""
    out = tmp_path / "falls"
    assert cli.main(ZERO + ["--out", str(out)]) == 0
    rows = read_profile(out)
    assert [row["signal"] for row in sorted(rows, key=lambda r: int(r["index"]))] == list(signal_names())
    assert sorted(int(row["rank"]) for row in rows) == list(range(1, 101))
    by_name = {row["signal"]: row for row in rows}
    assert float(by_name["pelvis_y"]["z_at_minus_1"]) < -3
    assert float(by_name["pelvis_y"]["steady_mean"]) > 0.65  # steady: still above the fall height
    assert int(by_name["pelvis_y"]["onset_steps"]) >= 5
    assert float(by_name["excitation glut_max_r"]["steady_std"]) == 0  # the zero policy never excites
    report = json.loads((out / "falls.json").read_text())
    assert report["summary"]["ends"]["fell"] == 2 and report["seed"] == 100
    assert [e["seed"] for e in report["episodes"]] == [100, 101]
    image = Image.open(out / "falls.png")
    assert image.format == "PNG" and image.size[0] > image.size[1]
    printed = capsys.readouterr().out
    assert "the 12 signals that left steady running first" in printed and "pelvis_y" in printed
    assert "steady running, right leg against left" in printed


@pytest.mark.slow
@pytest.mark.mpi
def test_falls_over_two_ranks_match_one_rank(tmp_path):
    """A real 2-rank mpirun splits the episodes and gives the one-rank profile."""
    assert cli.main(ZERO + ["--out", str(tmp_path / "one")]) == 0
    assert cli.main(ZERO + ["--out", str(tmp_path / "two"), "--ranks", "2"]) == 0
    assert read_profile(tmp_path / "two") == read_profile(tmp_path / "one")
    assert json.loads((tmp_path / "two" / "falls.json").read_text())["ranks"] == 2


def test_a_policy_of_the_raw_floats_is_refused_in_one_line(tmp_path):
    from baselines_ppo.export import export_policy

    raw = export_policy(tmp_path / "raw41.npz", [(np.zeros((41, 18)), np.zeros(18))], np.zeros(18), "tanh",
                        np.zeros(41), np.ones(41), 5.0, np.zeros(18), np.ones(18),
                        metadata={"env": {"features": False}})
    with pytest.raises(SystemExit, match=r"raw 41 floats.*\(env.features = true\)"):
        cli.main(["falls", "--policy", str(raw), "--episodes", "1", "--out", str(tmp_path / "o"), "--quiet"])
