"""Is one policy better than another, or within noise? Paired by course.

Judging a lever (issue 15: "judge a lever at equal simulator steps ... on
held-out seeds") means comparing two runners' ``l2run evaluate`` reports. The
scores of one runner vary by about 5 m from course to course, far more than
the two runners differ, so the unpaired means say little: the same course
is hard for both. Pairing each course's two scores and looking at the
differences removes that shared part; their mean and its standard error say
whether a gap is larger than the noise of the courses.

The reports of one policy (as ``evaluate`` names it) are merged, so a comparison
can grow: ``--seed 100 --episodes 16`` now and ``--seed 116`` later. A policy
scored with ``--act sample`` (or another mode than its own) is another player,
named with its actions: its sampled and deterministic scores pair like two
runners. All reports must share the grader's settings (difficulty, obstacles,
integrator, accuracy, episode length, feet friction): a score at another accuracy
is another score.

Beside the score, each policy's pace (metres per second over the courses'
simulated time) splits a gap into its two causes: a runner can score the same
by running faster and falling more often, which the round-2 line did from 10M
to 21.7M steps (1.53 to 1.66 m/s, 19 to 24 falls in 32 courses).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from l2run.constants import STEP_SECONDS

from .evaluation import FELL

#: The settings that make two scores of one course comparable.
SCORED_SETTINGS = ("difficulty", "max_obstacles", "integrator", "integrator_accuracy", "max_steps",
                   "friction_transition_velocity")
#: A gap larger than this many standard errors is reported as a difference.
NOISE_STANDARD_ERRORS = 2.0


class ComparisonError(ValueError):
    """Reports that cannot be compared: printed as one line."""


@dataclasses.dataclass
class PolicyScores:
    """Every scored course of one policy, merged over its reports."""

    policy: str
    scores: Dict[int, float]
    fell: Dict[int, bool]
    act: Optional[str] = None
    """How it acted when it was scored other than in its own mode ("sample": drawn as in training)."""
    steps: Optional[int] = None
    """Simulator steps the policy had trained when it was scored (from the report's
    ``training``; None in a report written before reports recorded it)."""
    settings: Optional[Dict[str, object]] = None
    """The grader's settings it was scored at (``SCORED_SETTINGS``)."""
    seconds: Dict[int, float] = dataclasses.field(default_factory=dict)
    """Simulated seconds of each course's episode (empty when not given)."""
    averaged: int = 0
    """How many policies' weights it averages (``l2run average``); 0 for a policy of one iteration."""
    source: Optional[str] = None
    """The policy as its reports name it (a path or spec), without the labels ``policy`` gets."""
    sha256: Optional[str] = None
    """The SHA-256 of the file its reports scored (None: reports written before they recorded it)."""
    iteration: Optional[int] = None
    """The training iteration of the file scored (from the report's ``training``)."""
    reports: List[str] = dataclasses.field(default_factory=list)
    """The report files its courses come from."""


@dataclasses.dataclass(frozen=True)
class Paired:
    """``policy`` against the reference on the courses both were scored on."""

    policy: str
    courses: int
    mean: float
    reference_mean: float
    difference: float
    """Mean over courses of (policy - reference), metres."""
    standard_error: float
    median: float
    better: int
    worse: int
    falls: int
    reference_falls: int
    pace: Optional[float] = None
    """Metres per simulated second over the common courses (None without episode lengths)."""
    reference_pace: Optional[float] = None

    @property
    def within_noise(self) -> bool:
        return abs(self.difference) <= NOISE_STANDARD_ERRORS * self.standard_error


def load_reports(paths: Sequence[Path], at_least: int = 2) -> List[PolicyScores]:
    """The reports' policies in order of first appearance, each with its courses
    merged; ComparisonError naming a report that cannot be used, or when fewer
    than ``at_least`` policies are scored.

    A policy is its path (or spec) and the sha256 of the file the report scored:
    a path such as ``pretrained/round2/policy.npz`` holds another runner once a
    new one is shipped, and its old reports must not merge with the new ones.
    Names shared by several files get the sha256's first 8 digits appended."""
    policies: Dict[tuple, PolicyScores] = {}
    settings_of_first = None
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
            policy, env, episodes, act = report["policy"], report["env"], report["episodes"], report.get("act")
            if act:
                policy = f"{policy} ({act} actions)"
            training = report.get("training") or {}
            timesteps, averaged = training.get("timesteps"), int(training.get("averaged") or 0)
            steps = None if timesteps is None else int(timesteps) * int(env.get("frame_skip") or 1)
            settings = {key: env.get(key) for key in SCORED_SETTINGS}
            courses = [(int(e["seed"]), float(e["score"]), e["end"] == FELL,
                        None if e.get("steps") is None else int(e["steps"]) * STEP_SECONDS) for e in episodes]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ComparisonError(f"{path}: not a report of `l2run evaluate --out` ({type(err).__name__}: "
                                  f"{err})") from None
        if settings_of_first is None:
            settings_of_first = (path, settings)
        elif settings != settings_of_first[1]:
            changed = [f"{key} {settings_of_first[1][key]!r} in {settings_of_first[0]} but {settings[key]!r}"
                       for key in SCORED_SETTINGS if settings[key] != settings_of_first[1][key]]
            raise ComparisonError(f"{path} was scored under other settings: {'; '.join(changed)}; compare "
                                  "reports of the same evaluation settings")
        key = (policy, report.get("policy_sha256"))
        scores = policies.setdefault(key, PolicyScores(policy, {}, {}, act or None, steps, settings,
                                                       averaged=averaged, source=report["policy"],
                                                       sha256=report.get("policy_sha256")))
        if scores.steps is None:
            scores.steps = steps
        if scores.iteration is None and training.get("iteration") is not None:
            scores.iteration = int(training["iteration"])
        scores.reports.append(str(path))
        for seed, score, fell, seconds in courses:
            if seed in scores.scores and not math.isclose(scores.scores[seed], score, abs_tol=1e-9):
                raise ComparisonError(f"{path}: course {seed} of {policy} scored {score:.3f} m here and "
                                      f"{scores.scores[seed]:.3f} m in another report; expected one score per course")
            scores.scores[seed], scores.fell[seed] = score, fell
            if seconds is not None:
                scores.seconds[seed] = seconds
    names = [name for name, _ in policies]
    for (name, digest), scores in policies.items():
        if names.count(name) > 1:
            scores.policy = f"{name} [sha256 {digest[:8] if digest else 'not recorded'}]"
    if len(policies) < at_least:
        raise ComparisonError(f"the reports score {len(policies)} policy ({', '.join(names)}); expected at "
                              f"least {at_least} policies to compare")
    return list(policies.values())


def standard_error(values) -> float:
    """The standard error of the mean of ``values``; nan for fewer than two."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def pace(scores: PolicyScores, seeds: Sequence[int]) -> Optional[float]:
    """Metres per simulated second over ``seeds``: the distance of all their
    episodes over their time, so a long episode weighs as much as its length."""
    if not all(seed in scores.seconds for seed in seeds):
        return None
    seconds = sum(scores.seconds[s] for s in seeds)
    return sum(scores.scores[s] for s in seeds) / seconds if seconds > 0 else None


def paired(reference: PolicyScores, other: PolicyScores) -> Paired:
    """``other`` against ``reference`` on their common courses; ComparisonError
    when fewer than two are common (no standard error)."""
    seeds = sorted(set(reference.scores) & set(other.scores))
    if len(seeds) < 2:
        raise ComparisonError(f"{other.policy} and {reference.policy} share {len(seeds)} scored course(s); "
                              "expected at least 2: evaluate both with the same --seed and --episodes")
    mine = np.array([other.scores[s] for s in seeds])
    theirs = np.array([reference.scores[s] for s in seeds])
    differences = mine - theirs
    return Paired(
        policy=other.policy, courses=len(seeds), mean=float(mine.mean()), reference_mean=float(theirs.mean()),
        difference=float(differences.mean()),
        standard_error=standard_error(differences),
        median=float(np.median(differences)), better=int(np.sum(differences > 0)),
        worse=int(np.sum(differences < 0)), falls=sum(other.fell[s] for s in seeds),
        reference_falls=sum(reference.fell[s] for s in seeds),
        pace=pace(other, seeds), reference_pace=pace(reference, seeds))


def compare(paths: Sequence[Path]) -> Tuple[str, List[Paired]]:
    """(the reference policy, every later policy against it, paired by course)."""
    return compare_policies(load_reports(paths))


def compare_policies(policies: Sequence[PolicyScores]) -> Tuple[str, List[Paired]]:
    """:func:`compare` of policies already loaded (:func:`load_reports`)."""
    return policies[0].policy, [paired(policies[0], other) for other in policies[1:]]


def common_scores(policies: Sequence[PolicyScores], seeds: Optional[Sequence[int]] = None) -> Optional[np.ndarray]:
    """``scores[policy, course]`` on ``seeds`` or on the courses every policy was
    scored on (for :func:`experiments.spread.spread`); None when fewer than two."""
    if seeds is None:
        seeds = sorted(set.intersection(*(set(p.scores) for p in policies))) if policies else []
    if len(seeds) < 2:
        return None
    return np.array([[p.scores[s] for s in seeds] for p in policies])


def format_comparison(reference: str, results: Sequence[Paired]) -> str:
    lines = [f"reference: {reference}",
             "  paired by course: difference = policy - reference, its mean over the common courses and the "
             f"standard error of that mean; within noise when |difference| <= {NOISE_STANDARD_ERRORS:g} s.e.; "
             "m/s: metres per simulated second, reference->policy",
             f"  {'policy':48s} {'courses':>7s} {'ref m':>6s} {'mean m':>6s} {'falls':>9s} {'diff m':>7s} "
             f"{'s.e.':>5s} {'median':>6s} {'+/-':>7s} {'m/s':>9s}  verdict"]
    for r in results:
        if r.within_noise:
            verdict = "within noise"
        else:
            verdict = "better" if r.difference > 0 else "worse"
        name = r.policy if len(r.policy) <= 48 else "..." + r.policy[-45:]
        lines.append(f"  {name:48s} {r.courses:7d} {r.reference_mean:6.2f} {r.mean:6.2f} "
                     f"{f'{r.reference_falls}->{r.falls}':>9s} {r.difference:+7.2f} {r.standard_error:5.2f} "
                     f"{r.median:+6.2f} {f'{r.better}/{r.worse}':>7s} {_pace_change(r):>9s}  {verdict}")
    return "\n".join(lines)


def _pace_change(result: Paired) -> str:
    if result.pace is None or result.reference_pace is None:
        return "-"
    return f"{result.reference_pace:.2f}->{result.pace:.2f}"
