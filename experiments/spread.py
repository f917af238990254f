"""Do several policies differ at all, beyond the noise of the courses?

``l2run compare`` pairs each policy with a reference; with many policies (a
line's checkpoints, a selection's candidates) that asks many questions, and
one of them comes out "better" by luck sooner or later. This asks one question
of all of them together, on the courses every one was scored on: is the spread
of their mean scores larger than the courses' noise alone would make it?

The statistic is the two-way analysis of variance's ratio (policies x courses,
one episode each): the variance of the policies' means against the variance
left once each course's and each policy's mean is taken out, the noise of how
a policy fares on a given course. Its null distribution comes from shuffling
the scores among the policies within each course, many times: scores of
falls and full runs are far from normal, and the shuffle assumes nothing about
them, only that under "no difference" the policies are interchangeable on a
course.

The same shuffles give the **luck of the best**: how far the best of these
policies would lead their mean if none were better than another. A selection
that picks the best of fourteen on 32 courses gets that lead for free, which
is why the winner is reported on other seeds (``l2run select``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

#: Shuffles of the courses' scores; the p-value's resolution is about 1 / this.
PERMUTATIONS = 10000
#: Shuffles drawn at a time (memory: this x policies x courses floats).
_BATCH = 500


@dataclasses.dataclass(frozen=True)
class Spread:
    """Several policies' scores on the same courses: do they differ, and what would luck give the best?"""

    policies: int
    courses: int
    ratio: float
    """Variance of the policies' means over what the course noise gives it (1: none beyond noise)."""
    p_value: float
    """The share of shuffles whose ratio is at least this one: small, the policies differ."""
    lead: float
    """Metres the best policy's mean is above the mean of all."""
    luck: float
    """Metres the best would lead by on average if no policy were better than another."""
    permutations: int


def spread(scores: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0) -> Optional[Spread]:
    """``scores[policy, course]`` (one score each) -> Spread; None with fewer than
    two policies or two courses. Deterministic: the shuffles come from ``seed``."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 2 or scores.shape[1] < 2:
        return None
    observed = _ratio(scores[None])[0]
    rng = np.random.default_rng(seed)
    at_least, leads = 0, []
    for start in range(0, permutations, _BATCH):
        count = min(_BATCH, permutations - start)
        # each (shuffle, course) column is permuted on its own: policies swap within a course
        shuffled = rng.permuted(np.broadcast_to(scores, (count, *scores.shape)), axis=1)
        at_least += int(np.sum(_ratio(shuffled) >= observed * (1 - 1e-12)))
        means = shuffled.mean(axis=2)
        leads.append(means.max(axis=1) - means.mean(axis=1))
    means = scores.mean(axis=1)
    return Spread(policies=scores.shape[0], courses=scores.shape[1], ratio=float(observed),
                  p_value=(1 + at_least) / (1 + permutations), lead=float(means.max() - means.mean()),
                  luck=float(np.concatenate(leads).mean()), permutations=permutations)


def _ratio(batch: np.ndarray) -> np.ndarray:
    """The F ratio of each ``batch[k]`` (policies x courses): mean square of the
    policies over the mean square of the interaction (the noise)."""
    policies, courses = batch.shape[1:]
    policy_means = batch.mean(axis=2, keepdims=True)
    course_means = batch.mean(axis=1, keepdims=True)
    grand = batch.mean(axis=(1, 2), keepdims=True)
    between = courses * np.sum((policy_means - grand) ** 2, axis=(1, 2)) / (policies - 1)
    noise = np.sum((batch - policy_means - course_means + grand) ** 2, axis=(1, 2)) / ((policies - 1) * (courses - 1))
    # sums of squares at rounding level are zero: identical policies spread 1x, not 0/0
    tiny = 1e-12 * np.mean(batch ** 2, axis=(1, 2)) + 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > tiny, between / noise, np.where(between > tiny, np.inf, 1.0))


def format_spread(result: Spread) -> str:
    verdict = "they differ beyond it" if result.p_value < 0.05 else "no difference beyond it"
    return (f"{result.policies} policies on their {result.courses} common courses: the variance of their means "
            f"is {result.ratio:.2f}x what the courses' noise alone gives (p = {result.p_value:.2g} from "
            f"{result.permutations} shuffles within courses): {verdict}. The best leads the mean of all by "
            f"{result.lead:.2f} m; by luck alone the best of {result.policies} would lead by {result.luck:.2f} m.")
