"""`l2run plot`: curves of several runs in one PNG; clear errors for non-runs."""

import json
from pathlib import Path

import numpy as np
import pytest

from baselines_ppo.logger import Logger
from experiments.cli import main
from experiments.plot_cmd import line_wall_time, load_progress, panels_for


def fake_run(run_dir, scale, with_distance):
    logger = Logger(run_dir, total_timesteps=1000, progress="none", tensorboard=False)
    for iteration in range(1, 6):
        logger.store("time/iteration", iteration)
        logger.store("time/timesteps", 100 * iteration)
        logger.store("rollout/ep_return", [] if iteration == 1 else [scale * iteration])
        logger.store("rollout/ep_length", [] if iteration == 1 else [10 * iteration])
        logger.store("losses/policy", -0.01 * iteration)
        logger.store("losses/value", 1.0 / iteration)
        logger.store("train/approx_kl", 0.01)
        logger.store("train/entropy", 1.0 - 0.1 * iteration)
        logger.store("train/clipfrac", 0.1)
        logger.store("train/explained_var", 0.2 * iteration)
        logger.store("train/lr", 3e-4 * (1 - iteration / 10))
        if with_distance:
            logger.store("rollout/distance", [0.5 * iteration])
            logger.store("rollout/distance_max", [iteration], reduce="max")
            logger.store("reward/velocity", [0.3 * iteration])
        logger.dump()
    logger.close()
    return run_dir


def test_plot_overlays_runs(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    b = fake_run(tmp_path / "b", 2.0, with_distance=False)
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    titles = [title for title, _ in panels_for([load_progress(a), load_progress(b)])]
    assert titles == ["episode return", "distance (m)", "episode length (simulator steps)", "policy loss", "value loss",
                      "approx. KL", "entropy", "clip fraction", "explained variance", "learning rate",
                      "reward term: velocity"]


def test_plot_errors_for_directories_without_progress(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 2
    assert "has no progress.csv" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "progress.csv").write_text("a,b\n1,2\n")
    assert main(["plot", str(tmp_path / "other"), "--out", str(tmp_path / "x.png")]) == 2
    assert "no time/timesteps column" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_frame_skip_runs_are_plotted_in_simulator_steps(tmp_path):
    """x and episode length count 10 ms simulator steps, so a frame-skip run
    compares with a plain one at equal simulation cost."""
    import json

    from experiments.plot_cmd import X_COLUMN, load_progress

    run = tmp_path / "fs4"
    run.mkdir()
    (run / "progress.csv").write_text("time/timesteps,rollout/ep_length\n1024,30\n2048,40\n")
    (run / "config.json").write_text(json.dumps({"metadata": {"env": {"frame_skip": 4}}}))
    data = load_progress(run)
    assert data[X_COLUMN].tolist() == [4096, 8192] and data["rollout/ep_length"].tolist() == [120, 160]


def test_at_prints_runs_side_by_side_at_equal_simulator_steps(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    b = fake_run(tmp_path / "b", 2.0, with_distance=False)
    out = tmp_path / "curves.png"
    assert main(["plot", str(a), str(b), "--out", str(out), "--at", "300", "0.5k", "1k"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:8]}
    # Mean of the last 5 iterations up to the mark; return is logged from iteration 2 on.
    assert table[("300", "a")][:3] == ["1.00", "2.50", "25"]
    assert table[("500", "b")][:3] == ["-", "7.00", "35"]  # b logs no distance
    assert table[("1k", "a")] == ["-"] * 5  # a stopped at 500 steps: not reached


def test_over_averages_the_steps_before_each_mark(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 1.0, with_distance=True)  # distance 0.5 per 100 steps
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--at", "500", "--over", "250"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "at equal simulator steps (mean of the 250 steps before each mark):"
    assert lines[2].split()[:3] == ["500", "a", "2.00"]  # iterations at 300, 400, 500 steps: 1.5, 2, 2.5
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--at", "500", "--over", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[2] == "2.50"  # the mark's own iteration
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--over", "1M"]) == 2
    assert "--over 1M averages the --at table; give --at STEPS as well" in capsys.readouterr().err


def test_at_rejects_what_is_not_a_step_count(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--at", "lots"]) == 2
    assert "--at 'lots' is not a positive number of steps" in capsys.readouterr().err


def test_at_follows_a_run_whose_batch_grew_on_resume(tmp_path, capsys):
    logger = Logger(tmp_path / "grown", total_timesteps=10_000, progress="none", tensorboard=False)
    for iteration, steps in enumerate((100, 200, 600, 1000), start=1):  # 100-step, then 400-step batches
        logger.store("time/iteration", iteration)
        logger.store("time/timesteps", steps)
        logger.store("rollout/distance", [steps / 100])
        logger.dump()
    logger.close()
    assert main(["plot", str(tmp_path / "grown"), "--out", str(tmp_path / "x.png"), "--at", "900", "1200", "1500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:3] == ["900", "grown", "3.00"]  # the mean of the 3 iterations up to 900
    assert lines[3].split()[2] == "4.75"  # 1200: within one (400-step) iteration of its end at 1000
    assert lines[4].split()[2] == "-"  # 1500 is more than one iteration past the end


def test_until_draws_only_the_first_steps_of_each_run(tmp_path, capsys):
    from experiments.plot_cmd import X_COLUMN, within

    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    cropped = within(load_progress(a), until=300)
    assert cropped[X_COLUMN].tolist() == [100, 200, 300]
    assert cropped["rollout/distance"].tolist() == [0.5, 1.0, 1.5]
    out = tmp_path / "early.png"
    assert main(["plot", str(a), "--out", str(out), "--until", "0.3k"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--until", "50"]) == 2
    assert "--until 50: no run has an iteration at or before 50 simulator steps" in capsys.readouterr().err
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--until", "0"]) == 2
    assert "--until '0' is not a positive number of steps" in capsys.readouterr().err


def test_from_and_smooth_draw_a_branch_window_readably(tmp_path, capsys):
    """--from crops the start as --until crops the end; --smooth N draws trailing
    means over N iterations, which never look ahead of the iteration they are drawn at."""
    from experiments.plot_cmd import X_COLUMN, trailing_mean, within

    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    window = within(load_progress(a), since=200, until=400)
    assert window[X_COLUMN].tolist() == [200, 300, 400]
    assert window["rollout/distance"].tolist() == [1.0, 1.5, 2.0]
    assert trailing_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert trailing_mean(np.array([1.0, 3.0, 5.0]), 1).tolist() == [1.0, 3.0, 5.0]
    assert trailing_mean(np.array([]), 5).tolist() == []

    out = tmp_path / "window.png"
    assert main(["plot", str(a), "--out", str(out), "--from", "200", "--until", "0.4k", "--smooth", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--from", "1k"]) == 2
    assert "--from 1k: no run has an iteration at or after 1000 simulator steps" in capsys.readouterr().err
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--from", "400", "--until", "300"]) == 2
    assert "--from 400 is not before --until 300: nothing to draw" in capsys.readouterr().err


def score_report(path, policy, timesteps, scores, act=None, accuracy=1e-3, frame_skip=1, averaged=0):
    """A report as `l2run evaluate --out` writes it (the fields `plot --scores` reads)."""
    env = {"difficulty": 2, "max_obstacles": 10, "integrator": "runge_kutta_merson",
           "integrator_accuracy": accuracy, "max_steps": 1000, "friction_transition_velocity": None,
           "frame_skip": frame_skip}
    report = {"policy": policy, "env": env, "seed": 100,
              "episodes": [{"seed": 100 + i, "score": score, "end": "fell" if score < 10 else "time limit"}
                           for i, score in enumerate(scores)]}
    if timesteps is not None:
        report["training"] = {"iteration": timesteps // 100, "timesteps": timesteps}
        if averaged:
            report["training"]["averaged"] = averaged
    if act:
        report["act"] = act
    path.write_text(json.dumps(report))
    return str(path)


def test_scores_put_graded_policies_on_the_curve(tmp_path, capsys):
    """--scores draws evaluate reports at the simulator steps their policies had
    trained, merged per policy as `compare` merges them, and prints them."""
    from experiments.score_points import load_points, mean_and_error, series

    a = fake_run(tmp_path / "a", 1.0, with_distance=True)
    early = score_report(tmp_path / "early.json", "snap-200.npz", 200, [4.0, 12.0], frame_skip=2)
    late = score_report(tmp_path / "late.json", "snap-300.npz", 300, [6.0, 8.0])
    more = score_report(tmp_path / "more.json", "snap-300.npz", 300, [10.0])  # course 100 again: merged
    more_report = json.loads(Path(more).read_text())
    more_report["episodes"][0]["seed"] = 102
    Path(more).write_text(json.dumps(more_report))
    sampled = score_report(tmp_path / "sampled.json", "snap-300.npz", 300, [5.0, 7.0], act="sample")
    mean = score_report(tmp_path / "mean.json", "mean-200-300.npz", 300, [9.0], averaged=2)

    points = load_points([Path(p) for p in (late, sampled, early, more)])
    assert [(p.policy, p.steps, len(p.scores)) for p in points] == [
        ("snap-300.npz", 300, 3), ("snap-300.npz (sample actions)", 300, 2), ("snap-200.npz", 400, 2)]
    assert mean_and_error(points[0]) == pytest.approx((8.0, 2.0 / np.sqrt(3)))
    assert list(series(points)) == ["grader score", "grader score, sample actions"]
    with_mean = series(load_points([Path(p) for p in (late, mean, early)]))
    assert {label: [p.policy for p in members] for label, members in with_mean.items()} == {
        "grader score": ["snap-300.npz", "snap-200.npz"], "grader score, weight averages": ["mean-200-300.npz"]}

    out = tmp_path / "scored.png"
    assert main(["plot", str(a), "--out", str(out), "--scores", early, late, more, sampled]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split() for line in printed.splitlines() if "snap-" in line]
    assert rows == [["300", "snap-300.npz", "3", "8.00", "1.15", "2"],
                    ["300", "snap-300.npz", "(sample", "actions)", "2", "6.00", "1.00", "2"],
                    ["400", "snap-200.npz", "2", "8.00", "4.00", "1"]]

    untrained = score_report(tmp_path / "zero.json", "zero", None, [1.0, 2.0])
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--scores", late, untrained]) == 2
    assert capsys.readouterr().err.strip() == (
        "l2run plot: error: the report of zero does not say how many steps its policy had trained (a built-in "
        "policy, or a report written before reports recorded it): score the policy again with "
        "`l2run evaluate --policy NPZ --out`")
    other = score_report(tmp_path / "other.json", "snap-400.npz", 400, [1.0], accuracy=3e-2)
    assert main(["plot", str(a), "--out", str(tmp_path / "x.png"), "--scores", late, other]) == 2
    assert "scored under other settings: integrator_accuracy 0.001" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_wall_time_adds_up_along_a_line_of_runs():
    """A branch's parent curve holds its grandparent's rows, then its parent's, each
    run's clock starting at zero: the line's wall time adds them up."""
    elapsed = np.array([10.0, 20.0, 5.0, np.nan, 15.0, 3.0, 4.0])  # runs of 20 s, 15 s, then the branch
    np.testing.assert_array_equal(line_wall_time(elapsed), [10, 20, 25, np.nan, 35, 38, 39])


def test_symmetry_panels_appear_only_for_runs_that_log_them():
    run = {"time/timesteps": np.array([100.0, 200.0]), "losses/symmetry": np.array([5.3, 5.2]),
           "train/mirror_logp_gap": np.array([np.nan, np.nan])}
    titles = [title for title, _ in panels_for([run])]
    assert titles == ["symmetry loss (ppo.symmetry_coef)"]  # the gap column holds no number
