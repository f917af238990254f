"""``l2run plot``: training curves of one or more runs as a PNG grid.

    l2run plot runs/a [runs/b ...] [--out curves.png] [--at 250k 500k 1M] [--from 16.35M] [--until 17.35M] [--smooth 10]
        [--scores REPORT.json ...]

One panel per metric of progress.csv, runs overlaid with the run directory's
name in the legend. x is simulator steps: the agent's timesteps times the run's
``env.frame_skip`` (from its config.json), so runs with different frame skips
compare at equal simulation cost. Panels whose metric no run logged are left
out; reward terms (``reward/<term>``) get one panel each.

``--at`` also prints the runs side by side at equal simulator steps (the way a
lever is judged against the plain run): training distance, return and episode
length averaged over the last few iterations before each mark, and the wall
time the run took to get there. ``--until`` draws only the first steps of every
run, so that levers branched early stay readable beside a long main run;
``--from`` starts the picture later, so that a branch's 1M-step window beside its
line is not a sliver at the right of a 17M-step axis. ``--smooth N`` draws each
curve as the mean of its last N iterations over the raw one, faint: a million steps
are some 60 iterations of noisy episode means, and a lever's gap is read off the
trend, not off single iterations. ``--scores`` draws ``l2run evaluate`` reports
of the line's policies on the distance panel, each at the steps its policy had
trained, with the standard error over its courses (:mod:`experiments.score_points`),
and prints them as a table: the grader's score of the line beside the training
distance it optimises.

A run started with ``l2run train --init-from`` carries its parent's curve
(``parent_progress.csv``, rows up to the branch point): it is drawn before the
run's own, fainter, on the same step axis (the counters go on from the
parent's), and ``--at`` and the wall time count the whole line. ``--no-parent``
draws the run's own iterations only. A run that continues a line from its
checkpoint with no setting changed (``lineage.json``: a line carried to another
machine) is that line: the rows since the line began are drawn as the run's own.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .cli_types import int_in, output_file

DISTANCE_PANEL = "distance (m)"
#: Panels in display order: (title, [(column, line label suffix)]).
PANELS: Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], ...] = (
    ("episode return", (("rollout/ep_return", ""),)),
    (DISTANCE_PANEL, (("rollout/distance", " mean"), ("rollout/distance_max", " max"))),
    ("episode length (simulator steps)", (("rollout/ep_length", ""),)),
    ("policy loss", (("losses/policy", ""),)),
    ("value loss", (("losses/value", ""),)),
    ("approx. KL", (("train/approx_kl", ""),)),
    ("entropy", (("train/entropy", ""),)),
    ("clip fraction", (("train/clipfrac", ""),)),
    ("explained variance", (("train/explained_var", ""),)),
    ("learning rate", (("train/lr", ""),)),
    ("symmetry loss (ppo.symmetry_coef)", (("losses/symmetry", ""),)),
    ("mirrored actions: log-prob gap (nats)", (("train/mirror_logp_gap", ""),)),
    ("throughput (simulator steps/s)", (("perf/steps_per_s", ""),)),
)
X_COLUMN = "time/timesteps"
PARENT_COLUMN = "_parent"  # 1.0 on rows taken from the parent's curve
LENGTH_COLUMN = "rollout/ep_length"
SIM_STEP_COLUMNS = (LENGTH_COLUMN, "perf/steps_per_s")  # agent steps -> simulator steps, like x
AT_WINDOW = 5  # iterations averaged before each --at mark: one iteration's mean is noisy


class PlotError(Exception):
    pass


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("plot", help="plot training curves of runs to a PNG",
                                   description="Training curves (progress.csv) of one or more runs, overlaid.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (each holding progress.csv)")
    # A str default goes through type= too: an unwritable directory fails before any drawing.
    parser.add_argument("--out", type=output_file(".png", make_parents=True), default="curves.png",
                        help="output PNG (default: curves.png)")
    parser.add_argument("--at", nargs="+", default=None, metavar="STEPS",
                        help="also print the runs side by side at these simulator steps (e.g. 250k 1M)")
    parser.add_argument("--over", default=None, metavar="STEPS",
                        help=f"with --at, average over the STEPS simulator steps before each mark (e.g. 1M: "
                             f"a long line's slope) instead of the last {AT_WINDOW} iterations")
    parser.add_argument("--from", dest="since", default=None, metavar="STEPS",
                        help="plot only from this many simulator steps on (e.g. 16.35M: a branch's window "
                             "beside its line)")
    parser.add_argument("--until", default=None, metavar="STEPS",
                        help="plot only up to this many simulator steps (e.g. 1.5M)")
    parser.add_argument("--smooth", type=int_in(1), default=1, metavar="N",
                        help="draw each curve as the mean of its last N iterations, the raw curve faint "
                             "behind it (default 1: raw)")
    parser.add_argument("--scores", nargs="+", type=Path, default=[], metavar="REPORT",
                        help="`l2run evaluate --out` reports of the runs' policies, drawn on the distance panel "
                             "at the steps each policy had trained (e.g. pretrained/round2/reports/*-seeds100-131.json)")
    parser.add_argument("--no-parent", dest="parent", action="store_false",
                        help="leave out the parent's curve of a run started with --init-from (a line "
                             "continued with no setting changed keeps its own earlier rows)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .comparison import ComparisonError
    from .score_points import format_points, load_points

    try:
        points = load_points(args.scores) if args.scores else []
        marks = [parse_steps(text) for text in args.at] if args.at else []
        until = parse_steps(args.until, "--until") if args.until is not None else None
        since = parse_steps(args.since, "--from") if args.since is not None else None
        if since is not None and until is not None and since >= until:
            raise PlotError(f"--from {args.since} is not before --until {args.until}: nothing to draw")
        over = parse_steps(args.over, "--over") if args.over is not None else None
        if over is not None and not marks:
            raise PlotError(f"--over {args.over} averages the --at table; give --at STEPS as well")
        path = plot_runs(args.runs, args.out, until, parent=args.parent, since=since, smooth=args.smooth,
                         scores=points)
        if marks:
            print(compare_at(args.runs, marks, parent=args.parent, over=over))
        if points:
            print(format_points(points))
    except (PlotError, ComparisonError) as err:
        print(f"l2run plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def parse_steps(text: str, option: str = "--at") -> int:
    """'250000', '250k' or '1.5M' -> simulator steps (``option`` names the flag in errors)."""
    scale = {"k": 1_000, "m": 1_000_000}.get(str(text)[-1:].lower(), 1)
    number = str(text)[:-1] if scale > 1 else str(text)
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:
        raise PlotError(f"{option} {text!r} is not a positive number of steps (like 250000, 250k or 1.5M)")
    return int(value)


def compare_at(run_dirs: Sequence[Path], marks: Sequence[int], window: int = AT_WINDOW, parent: bool = True,
               over: Optional[int] = None) -> str:
    """A table of each run at each mark, each value the mean of the last ``window``
    iterations up to the mark, or with ``over`` of the iterations within ``over``
    simulator steps before it; runs that have not reached a mark show '-'.
    Simulator steps/s compare runs that shared the machine with equal load (two
    lines trained side by side): a setting's training throughput."""
    runs = [load_progress(d, parent) for d in run_dirs]
    names = _labels(run_dirs)
    columns = (("rollout/distance", "distance m", "{:.2f}"), ("rollout/ep_return", "return", "{:.2f}"),
               (LENGTH_COLUMN, "length", "{:.0f}"), ("perf/steps_per_s", "steps/s", "{:.0f}"),
               ("time/elapsed_s", "wall h", "{:.2f}"))
    width = max(len(n) for n in names)
    averaged = f"the last {window} iterations" if over is None else f"the {_short(over)} steps"
    lines = [f"at equal simulator steps (mean of {averaged} before each mark):",
             f"  {'steps':>8s}  {'run':{width}s} " + " ".join(f"{title:>10s}" for _, title, _ in columns)]
    for mark in marks:
        for data, name in zip(runs, names):
            x = data[X_COLUMN]
            before = np.flatnonzero(x <= mark)
            reached = before.size > 0 and _reached(x, before[-1], mark)
            rows = before[-window:] if over is None else before[x[before] > mark - over]
            values = []
            for column, _, fmt in columns:
                if not reached or column not in data or rows.size == 0:
                    values.append("-")
                    continue
                value = data[column][rows[-1]] / 3600 if column == "time/elapsed_s" else np.nanmean(data[column][rows])
                values.append(fmt.format(value) if np.isfinite(value) else "-")
            lines.append(f"  {_short(mark):>8s}  {name:{width}s} " + " ".join(f"{v:>10s}" for v in values))
    return "\n".join(lines)


def _reached(x: np.ndarray, last: int, mark: int) -> bool:
    """Whether the run got to ``mark``: it went past it, or its last iteration
    before it ended within one iteration's steps of it (batches may change size
    when a run resumes with other PPO settings)."""
    if np.nanmax(x) >= mark:
        return True
    step = x[last] - x[last - 1] if last > 0 else x[last]
    return mark - x[last] <= step


def _short(steps: int) -> str:
    if steps % 1_000_000 == 0:
        return f"{steps // 1_000_000}M"
    if steps >= 1_000_000:
        return f"{steps / 1e6:g}M"
    return f"{steps / 1e3:g}k" if steps % 1000 == 0 else str(steps)


def load_progress(run_dir: Path, parent: bool = False) -> Dict[str, np.ndarray]:
    """Columns of ``run_dir/progress.csv`` as float arrays (NaN where empty).

    The rows of parent_progress.csv after the line's start (:func:`line_start`:
    a run continued from its own checkpoint, on another machine say, goes on
    the same line) are the run's own. parent=True: the parent's curve before
    that comes first (``PARENT_COLUMN`` marks its rows), and in any case the
    wall time goes on from the earlier runs'.
    """
    from baselines_ppo.init_from import PARENT_PROGRESS_FILE, line_start
    from baselines_ppo.progress import PROGRESS_CSV, as_float, read_progress

    path = Path(run_dir) / PROGRESS_CSV
    if not Path(run_dir).is_dir():
        raise PlotError(f"{run_dir} is not a directory")
    if not path.is_file():
        raise PlotError(f"{run_dir} has no {PROGRESS_CSV} (is it a training run directory?)")
    header, rows = read_progress(path)
    if X_COLUMN not in header:
        raise PlotError(f"{path} has no {X_COLUMN} column: not written by l2run train")
    parent_rows: List[Dict[str, str]] = []
    if (Path(run_dir) / PARENT_PROGRESS_FILE).is_file():
        parent_header, earlier = read_progress(Path(run_dir) / PARENT_PROGRESS_FILE)
        start = line_start(run_dir)
        parent_rows = [row for row in earlier if as_float(row.get("time/iteration")) <= start]
        rows = [row for row in earlier if as_float(row.get("time/iteration")) > start] + rows
        header = header + [key for key in parent_header if key not in header]
        if not parent:
            parent_rows = []
    data = {key: np.array([as_float(row.get(key)) for row in parent_rows + rows]) for key in header}
    data[PARENT_COLUMN] = np.array([1.0] * len(parent_rows) + [0.0] * len(rows))
    if "time/elapsed_s" in data:
        data["time/elapsed_s"] = line_wall_time(data["time/elapsed_s"])
    skip = frame_skip_of(Path(run_dir))
    data[X_COLUMN] = data[X_COLUMN] * skip
    for column in SIM_STEP_COLUMNS:
        if column in data:
            data[column] = data[column] * skip
    return data


def line_wall_time(elapsed: np.ndarray) -> np.ndarray:
    """Each run's clock starts at zero, so along a line of runs (grandparents'
    rows, parents' rows, the run's own) the logged wall time falls back wherever
    a new run begins: there, add up what the earlier runs took."""
    total = np.array(elapsed, dtype=float)
    offset, last = 0.0, -np.inf
    for i, value in enumerate(elapsed):
        if not np.isfinite(value):
            continue
        if value < last:  # a new run of the line starts here
            offset += last
        last = value
        total[i] = value + offset
    return total


def frame_skip_of(run_dir: Path) -> int:
    """Simulator steps per agent step of a run (1 unless its env repeats actions)."""
    import json

    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return 1
    env = (config.get("metadata") or {}).get("env") or {}
    return int(env.get("frame_skip") or 1)


def panels_for(runs: Sequence[Dict[str, np.ndarray]]) -> List[Tuple[str, Tuple[Tuple[str, str], ...]]]:
    """The panels with data in at least one run, reward terms appended."""
    present = set().union(*(set(k for k, v in r.items() if k != PARENT_COLUMN and np.isfinite(v).any())
                            for r in runs))
    panels = [(title, lines) for title, lines in PANELS if any(col in present for col, _ in lines)]
    terms = sorted(k for k in present if k.startswith("reward/"))
    panels += [(f"reward term: {k.split('/', 1)[1]}", ((k, ""),)) for k in terms]
    return panels


def within(data: Dict[str, np.ndarray], since: Optional[int] = None,
           until: Optional[int] = None) -> Dict[str, np.ndarray]:
    """The iterations of a run from ``since`` to ``until`` simulator steps (either end open)."""
    x = data[X_COLUMN]
    keep = np.ones(len(x), dtype=bool)
    if since is not None:
        keep &= x >= since
    if until is not None:
        keep &= x <= until
    return {column: values[keep] for column, values in data.items()}


def trailing_mean(y: np.ndarray, n: int) -> np.ndarray:
    """Each value replaced by the mean of it and the ``n - 1`` before it (fewer at
    the start): a trend that never looks ahead of the iteration it is drawn at."""
    if n <= 1 or len(y) == 0:
        return np.asarray(y, dtype=float)
    total = np.concatenate([[0.0], np.cumsum(y, dtype=float)])
    end = np.arange(1, len(y) + 1)
    start = np.maximum(end - n, 0)
    return (total[end] - total[start]) / (end - start)


def _empty_window(since: Optional[int], until: Optional[int]) -> str:
    """The error line for a --from/--until window that holds no run's iteration."""
    if since is not None and until is not None:
        where = f"--from {_short(since)} --until {_short(until)}: no run has an iteration from {since} to {until}"
    elif since is not None:
        where = f"--from {_short(since)}: no run has an iteration at or after {since}"
    else:
        where = f"--until {_short(until)}: no run has an iteration at or before {until}"
    return f"{where} simulator steps"


def plot_runs(run_dirs: Sequence[Path], out: Path, until: Optional[int] = None, parent: bool = True,
              since: Optional[int] = None, smooth: int = 1, scores: Sequence = ()) -> Path:
    """Write the grid of curves to ``out``; returns its path. With ``since`` and
    ``until``, only each run's iterations within those simulator steps are drawn;
    with ``parent``, the parent's curve of a run started from another is drawn
    first, fainter; with ``smooth`` > 1, each curve is its trailing mean over that
    many iterations, the raw one faint behind it; ``scores`` (scored policies,
    :func:`experiments.score_points.load_points`) go on the distance panel."""
    from . import score_points

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [load_progress(d, parent) for d in run_dirs]
    if since is not None or until is not None:
        runs = [within(data, since, until) for data in runs]
        if not any(len(data[X_COLUMN]) for data in runs):
            raise PlotError(_empty_window(since, until))
    names = _labels(run_dirs)
    panels = panels_for(runs)
    if not panels:
        raise PlotError("none of the runs has logged any metric yet")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, lines) in zip(axes.flat, panels):
        for i, (data, name) in enumerate(zip(runs, names)):
            x = data[X_COLUMN]
            inherited = data[PARENT_COLUMN] > 0
            for j, (column, suffix) in enumerate(lines):
                if column not in data:
                    continue
                y = data[column]
                keep = np.isfinite(x) & np.isfinite(y)
                style = dict(color=colors[i % len(colors)], linestyle=("-", "--", ":")[j % 3], linewidth=1.2)
                for part, alpha, label in ((keep & inherited, 0.35, f"{name}{suffix} (parent)"),
                                           (keep & ~inherited, 1.0, f"{name}{suffix}")):
                    if not part.any():
                        continue
                    if smooth > 1:
                        ax.plot(x[part], y[part], alpha=0.15 * alpha, **style)
                    ax.plot(x[part], trailing_mean(y[part], smooth), alpha=alpha, label=label, **style)
        scored_here = bool(scores) and title == DISTANCE_PANEL
        if scored_here:
            score_points.draw(ax, scores, since, until)
        ax.set_title(title)
        ax.set_xlabel("simulator steps")
        ax.grid(alpha=0.3)
        if scored_here:  # below the axes: the points and curves fill the panel
            ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        elif len(runs) > 1 or len(lines) > 1 or any((data[PARENT_COLUMN] > 0).any() for data in runs):
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    _to_palette(out)
    return out


def _to_palette(path: Path, colors: int = 64) -> None:
    """Rewrite the PNG with a 64-colour palette: line plots lose nothing visible
    and the file shrinks ~3x, which matters for curves committed with a runner."""
    from PIL import Image

    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    palette.save(path, optimize=True)


def _labels(run_dirs: Sequence[Path]) -> List[str]:
    """Run directory names; parent/name where two runs share a name."""
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{Path(d).resolve().parent.name}/{Path(d).resolve().name}" for d in run_dirs]
    return names
