"""Issue 13: every user error of a command ends in one clear line, never a traceback.

A careless user's values (negative, zero, non-numeric, nan/inf, huge, missing
or unwritable paths, a file where a directory is expected) for every command
but ``train`` (tests/test_train_cli.py). Single values fail in argparse
(``experiments.cli_types``): usage, then one ``error: argument --x: expected
..., got '...'`` line, exit 2, before OpenSim or TensorFlow load. Values that
depend on each other or on a file's contents fail in the command: one line,
exit 1. Either way the line names the value.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main

L2RUN = Path(sys.executable).parent / "l2run"
#: /proc refuses new files even to root (a read-only directory would not stop root).
UNWRITABLE = "/proc/l2run-test"


def run_in_process(argv, capsys):
    """(exit status, non-empty stderr lines) as the shell would see them:
    ``SystemExit("message")`` prints the message and exits 1."""
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if isinstance(code, str):
        lines.append(code)
        code = 1
    return code, lines


def assert_one_clear_line(code, lines, value):
    assert code not in (0, None), lines
    assert lines and not any("Traceback" in line for line in lines), lines
    if code == 2 and lines[0].startswith("usage:"):  # argparse: usage, then the one error line
        assert ": error: argument " in lines[-1], lines
    else:
        assert len(lines) == 1, lines
    assert value in lines[-1], lines


@pytest.fixture
def paths(tmp_path):
    """{tmp}: a directory; {file}: a plain file; {run}: a run directory with a progress.csv."""
    (tmp_path / "file.txt").write_text("not a directory")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "progress.csv").write_text("time/timesteps,rollout/distance\n100,1.0\n")
    return {"{tmp}": str(tmp_path), "{file}": str(tmp_path / "file.txt"), "{run}": str(tmp_path / "run")}


def expand(items, paths):
    out = []
    for item in items:
        for key, value in paths.items():
            item = item.replace(key, value)
        out.append(item)
    return out


EVALUATE = ["evaluate", "--policy", "random", "--episodes", "1", "--max-steps", "2", "--quiet"]
RENDER = ["render", "--policy", "random", "--out", "{tmp}/gait.gif", "--max-steps", "2", "--quiet"]
OBS_STATS = ["obs-stats", "--out", "{tmp}/stats", "--steps", "10"]
PLOT = ["plot", "{run}", "--out", "{tmp}/curves.png"]
FALLS = ["falls", "--policy", "zero", "--episodes", "1", "--out", "{tmp}/falls", "--quiet"]

# (command line, the value the error line must name)
CASES = [
    (EVALUATE + ["--seed", "-1"], "'-1'"),  # was gymnasium's "expected non-negative integer"
    (EVALUATE + ["--seed", "abc"], "'abc'"),
    (EVALUATE + ["--episodes", "0"], "'0'"),
    (EVALUATE + ["--episodes", "1.5"], "'1.5'"),
    (EVALUATE + ["--accuracy", "nan"], "'nan'"),
    (EVALUATE + ["--accuracy", "inf"], "'inf'"),
    (EVALUATE + ["--max-obstacles", "1000000"], "'1000000'"),  # would build a million spheres
    (EVALUATE + ["--max-steps", "-5"], "'-5'"),
    (EVALUATE + ["--ranks", "0"], "'0'"),
    (EVALUATE + ["--ranks", "3"], "--ranks 3"),  # more ranks than episodes
    (EVALUATE + ["--out", UNWRITABLE + ".json"], UNWRITABLE),  # was a traceback after the episodes
    (EVALUATE + ["--out", "{tmp}"], "{tmp}"),  # a directory: was a traceback after the episodes
    (EVALUATE + ["--out", "{file}/report.json"], "{file}"),
    (EVALUATE + ["--out", ""], "''"),
    (EVALUATE + ["--policy", "{tmp}/nowhere.npz"], "nowhere.npz"),
    (RENDER + ["--seed", "-1"], "'-1'"),
    (RENDER + ["--every", "0"], "'0'"),
    (RENDER + ["--width", "0"], "'0'"),  # was taken as "the default size"
    (RENDER + ["--fps", "nan"], "got nan"),
    (RENDER + ["--frame", "-1"], "'-1'"),
    (RENDER + ["--out", UNWRITABLE + ".gif"], UNWRITABLE),  # was a traceback after the episode
    (RENDER + ["--out", "{file}/gait.gif"], "{file}"),
    (OBS_STATS + ["--steps", "0"], "'0'"),
    (OBS_STATS + ["--seeds", "0", "-1"], "'-1'"),  # was gymnasium's traceback
    (OBS_STATS + ["--accuracy", "0"], "'0'"),  # was L2RunEnv's traceback
    (OBS_STATS + ["--max-obstacles", "-1"], "'-1'"),
    (OBS_STATS + ["--model", "{tmp}/nowhere.osim"], "nowhere.osim"),
    (OBS_STATS + ["--out", UNWRITABLE], UNWRITABLE),
    (OBS_STATS + ["--out", "{file}"], "{file}"),  # was FileExistsError
    (OBS_STATS + ["--policy", "nowhere"], "'nowhere'"),  # was a traceback
    (OBS_STATS[:-1] + ["10000000000000"], "10000000000000"),  # 3 PiB of features: was a MemoryError traceback
    (FALLS + ["--horizon", "0"], "'0'"),
    (FALLS + ["--skip-start", "-1"], "'-1'"),
    (FALLS + ["--ranks", "2"], "--ranks 2"),  # more ranks than episodes
    (FALLS + ["--out", UNWRITABLE], UNWRITABLE),
    (FALLS + ["--policy", "nowhere"], "'nowhere'"),
    (["stop", "{tmp}/nowhere"], "nowhere"),
    (["stop", "{file}"], "{file}"),  # a file, not a run directory
    (["bench", "env", "--seed", "-1"], "'-1'"),
    (["bench", "env", "--accuracies", "0.03", "0"], "'0'"),
    (["bench", "memory", "--max-obstacles", "-1"], "'-1'"),
    (["bench", "memory", "--model", "{tmp}"], "{tmp}"),
    (["bench", "integrators", "--max-steps", "0"], "'0'"),  # was "zero-size array" traceback
    (["bench", "integrators", "--hold", "0"], "'0'"),  # was ZeroDivisionError
    (["bench", "min-excitation", "--floors", "nan"], "'nan'"),
    (["bench", "min-excitation", "--policy", "nowhere"], "'nowhere'"),  # was a traceback
    (["bench", "policy", "--policy", "{tmp}"], "{tmp}"),  # no policy in it: was a traceback
    (["bench", "scaling", "--iterations", "1"], "'1'"),
    (["bench", "scaling", "--config", "nowhere"], "nowhere"),  # was a traceback
    (PLOT + ["--at", "inf"], "'inf'"),  # was OverflowError
    (PLOT + ["--until", "-1"], "'-1'"),
    (PLOT + ["--from", "soon"], "'soon'"),
    (PLOT + ["--smooth", "0"], "'0'"),
    (PLOT[:2] + ["--out", UNWRITABLE + ".png"], UNWRITABLE),  # was a traceback after drawing
    (PLOT[:2] + ["--out", "{tmp}/curves.txt"], "curves.txt"),  # was matplotlib's traceback
    (["plot", "{tmp}/nowhere"], "nowhere"),
    (["compare", "{tmp}/nowhere.json"], "nowhere.json"),
    (["compare", "{file}", "{file}"], "{file}"),  # not a .json report
    (["average", "{tmp}/nowhere.npz", "--out", "{tmp}/mean.npz"], "nowhere.npz"),
    (["average", "{file}", "--out", "{tmp}/mean.npz"], "{file}"),  # not a .npz policy
]


@pytest.mark.parametrize("argv, value", CASES, ids=[" ".join(argv[:1] + argv[-2:]) for argv, _ in CASES])
def test_a_bad_value_ends_in_one_line_naming_it(argv, value, paths, capsys):
    code, lines = run_in_process(expand(argv, paths), capsys)
    assert_one_clear_line(code, lines, expand([value], paths)[0])


@pytest.mark.parametrize("argv, value", [
    (EVALUATE + ["--seed", "-1"], "'-1'"),
    (RENDER + ["--out", UNWRITABLE + ".gif"], UNWRITABLE),
    (OBS_STATS + ["--policy", "nowhere"], "'nowhere'"),
    (["bench", "integrators", "--hold", "0"], "'0'"),
])
def test_the_installed_command_prints_no_traceback(argv, value, paths):
    """The same through the real ``l2run`` entry point, as a user sees it."""
    result = subprocess.run([str(L2RUN), *expand(argv, paths)], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert_one_clear_line(result.returncode, lines, value)
    assert result.stdout == ""


def test_unwritable_output_fails_before_any_episode(capsys):
    """A report that cannot be written fails at once, not after 1000 episodes."""
    code, lines = run_in_process(EVALUATE[:3] + ["--episodes", "1000", "--out", UNWRITABLE + ".json"], capsys)
    assert code == 2 and "cannot write" in lines[-1]


def test_output_checks_leave_nothing_behind(tmp_path):
    from experiments.cli_types import output_dir, output_file

    assert output_file(".png")(str(tmp_path / "curves.png")) == tmp_path / "curves.png"
    assert output_dir(str(tmp_path / "new" / "stats")) == tmp_path / "new" / "stats"
    assert list(tmp_path.iterdir()) == []  # the write probe is deleted, no directory is made
