"""``l2run plot``: training curves of one or more runs as a PNG grid.

    l2run plot runs/a [runs/b ...] [--out curves.png]

One panel per metric of progress.csv, runs overlaid with the run directory's
name in the legend. x is simulator steps: the agent's timesteps times the run's
``env.frame_skip`` (from its config.json), so runs with different frame skips
compare at equal simulation cost. Panels whose metric no run logged are left
out; reward terms (``reward/<term>``) get one panel each.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: Panels in display order: (title, [(column, line label suffix)]).
PANELS: Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], ...] = (
    ("episode return", (("rollout/ep_return", ""),)),
    ("distance (m)", (("rollout/distance", " mean"), ("rollout/distance_max", " max"))),
    ("episode length (simulator steps)", (("rollout/ep_length", ""),)),
    ("policy loss", (("losses/policy", ""),)),
    ("value loss", (("losses/value", ""),)),
    ("approx. KL", (("train/approx_kl", ""),)),
    ("entropy", (("train/entropy", ""),)),
    ("clip fraction", (("train/clipfrac", ""),)),
    ("explained variance", (("train/explained_var", ""),)),
)
X_COLUMN = "time/timesteps"
LENGTH_COLUMN = "rollout/ep_length"


class PlotError(Exception):
    pass


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("plot", help="plot training curves of runs to a PNG",
                                   description="Training curves (progress.csv) of one or more runs, overlaid.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (each holding progress.csv)")
    parser.add_argument("--out", type=Path, default=Path("curves.png"), help="output PNG (default: curves.png)")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        path = plot_runs(args.runs, args.out)
    except PlotError as err:
        print(f"l2run plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def load_progress(run_dir: Path) -> Dict[str, np.ndarray]:
    """Columns of ``run_dir/progress.csv`` as float arrays (NaN where empty)."""
    from baselines_ppo.progress import PROGRESS_CSV, read_progress

    path = Path(run_dir) / PROGRESS_CSV
    if not Path(run_dir).is_dir():
        raise PlotError(f"{run_dir} is not a directory")
    if not path.is_file():
        raise PlotError(f"{run_dir} has no {PROGRESS_CSV} (is it a training run directory?)")
    header, rows = read_progress(path)
    if X_COLUMN not in header:
        raise PlotError(f"{path} has no {X_COLUMN} column: not written by l2run train")
    data = {key: np.array([_number(row.get(key)) for row in rows]) for key in header}
    skip = frame_skip_of(Path(run_dir))
    data[X_COLUMN] = data[X_COLUMN] * skip
    if LENGTH_COLUMN in data:  # agent steps -> simulator steps, like x
        data[LENGTH_COLUMN] = data[LENGTH_COLUMN] * skip
    return data


def frame_skip_of(run_dir: Path) -> int:
    """Simulator steps per agent step of a run (1 unless its env repeats actions)."""
    import json

    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return 1
    env = (config.get("metadata") or {}).get("env") or {}
    return int(env.get("frame_skip") or 1)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def panels_for(runs: Sequence[Dict[str, np.ndarray]]) -> List[Tuple[str, Tuple[Tuple[str, str], ...]]]:
    """The panels with data in at least one run, reward terms appended."""
    present = set().union(*(set(k for k, v in r.items() if np.isfinite(v).any()) for r in runs))
    panels = [(title, lines) for title, lines in PANELS if any(col in present for col, _ in lines)]
    terms = sorted(k for k in present if k.startswith("reward/"))
    panels += [(f"reward term: {k.split('/', 1)[1]}", ((k, ""),)) for k in terms]
    return panels


def plot_runs(run_dirs: Sequence[Path], out: Path) -> Path:
    """Write the grid of curves to ``out``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [load_progress(d) for d in run_dirs]
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
            for j, (column, suffix) in enumerate(lines):
                if column not in data:
                    continue
                y = data[column]
                keep = np.isfinite(x) & np.isfinite(y)
                ax.plot(x[keep], y[keep], color=colors[i % len(colors)], linestyle=("-", "--", ":")[j % 3],
                        label=f"{name}{suffix}", linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("simulator steps")
        ax.grid(alpha=0.3)
        if len(runs) > 1 or len(lines) > 1:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _labels(run_dirs: Sequence[Path]) -> List[str]:
    """Run directory names; parent/name where two runs share a name."""
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{Path(d).resolve().parent.name}/{Path(d).resolve().name}" for d in run_dirs]
    return names
