"""Grader scores on a line's training curve: ``l2run plot --scores REPORT...``.

The training distance is what the line optimises, measured with sampled actions
at the training integrator; the 2017 score is deterministic, at Runge-Kutta-Merson
1e-3, on fixed courses. The two can part: on the runner's line the training
distance rose 2.2 m from 9.9M to 18.79M steps while the grader score of every
checkpoint stayed near 10 m (docs/reproducing-2017.md, "The pretrained runner").
Drawing each scored policy's ``l2run evaluate`` report at the steps it had trained,
with the standard error of its mean over the courses, on the distance panel makes
that visible on the curve itself, instead of in a table beside it.

A report knows how far its policy had trained from the policy's metadata
(``training`` in the report, :func:`experiments.evaluation.training_of`). Reports
are read and merged as ``l2run compare`` reads them
(:func:`experiments.comparison.load_reports`): one point per policy and way of
acting, all scored at the same settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .comparison import ComparisonError, PolicyScores, load_reports, standard_error


def load_points(paths: Sequence[Path]) -> List[PolicyScores]:
    """The reports' policies, each with its merged courses and training steps,
    oldest policy first; ComparisonError naming a policy whose report does not say
    how far it had trained."""
    points = load_reports(paths, at_least=1)
    for point in points:
        if point.steps is None:
            raise ComparisonError(f"the report of {point.policy} does not say how many steps its policy had "
                                  "trained (a built-in policy, or a report written before reports recorded "
                                  "it): score the policy again with `l2run evaluate --policy NPZ --out`")
    return sorted(points, key=lambda point: point.steps)


def series(points: Sequence[PolicyScores]) -> Dict[str, List[PolicyScores]]:
    """The points by how they acted, the grader's deterministic score first:
    sampled actions, and weight averages (``l2run average``), are lines of their
    own on the plot, apart from the line's checkpoints."""
    grouped: Dict[str, List[PolicyScores]] = {}
    for point in sorted(points, key=lambda p: (p.act is not None, p.averaged > 0)):
        grouped.setdefault(_series_label(point), []).append(point)
    return grouped


def _series_label(point: PolicyScores) -> str:
    """"grader score" at the grader's settings, else the integrator it was scored with."""
    from l2run import GRADER_ACCURACY
    from l2run.simulator import GRADER_INTEGRATOR

    settings = point.settings or {}
    if (settings.get("integrator"), settings.get("integrator_accuracy")) == (GRADER_INTEGRATOR, GRADER_ACCURACY):
        label = "grader score"
    else:
        label = f"score at {settings.get('integrator')} {settings.get('integrator_accuracy'):g}"
    return label + (f", {point.act} actions" if point.act else "") + (", weight averages" if point.averaged else "")


def mean_and_error(point: PolicyScores) -> Tuple[float, float]:
    """The mean score over the point's courses and its standard error (0 for one course)."""
    scores = np.array(list(point.scores.values()))
    error = standard_error(scores)
    return float(scores.mean()), (0.0 if np.isnan(error) else error)


def draw(ax, points: Sequence[PolicyScores], since: Optional[int] = None, until: Optional[int] = None) -> None:
    """Each series as points with +-1 s.e. bars, joined in step order, on ``ax``
    (the distance panel), within the plot's --from/--until window."""
    markers = ("o", "s", "^", "D")
    for k, (label, members) in enumerate(series(points).items()):
        members = [p for p in members if (since is None or p.steps >= since) and (until is None or p.steps <= until)]
        if not members:
            continue
        x = [p.steps for p in members]
        means, errors = zip(*(mean_and_error(p) for p in members))
        courses = sorted({len(p.scores) for p in members})
        ax.errorbar(x, means, yerr=errors, color="black", alpha=0.8 if k == 0 else 0.45, marker=markers[k % 4],
                    markersize=4, linestyle=":", linewidth=1, capsize=3,
                    label=f"{label}, {'/'.join(map(str, courses))} courses, +-1 s.e.")


def format_points(points: Sequence[PolicyScores]) -> str:
    """The points as a table: what the plot draws, in numbers."""
    width = max(len(p.policy) for p in points)
    lines = ["scores on the curve (mean over the courses, its standard error):",
             f"  {'steps':>11s}  {'policy':{width}s} {'courses':>7s} {'mean m':>7s} {'s.e.':>5s} {'falls':>6s}"]
    for point in points:
        mean, error = mean_and_error(point)
        falls = sum(point.fell.values())
        lines.append(f"  {point.steps:11,d}  {point.policy:{width}s} {len(point.scores):7d} {mean:7.2f} "
                     f"{error:5.2f} {falls:6d}")
    return "\n".join(lines)
