"""What the body does in the second before a runner falls, against steady running.

A runner's score is lost to falls: the shipped round-2 runner falls in every one
of the grader's ten episodes, and upright it would cover 15-17 m. Which lever
to pull (gamma, a fall penalty, a feature, a reward term) depends on what goes
wrong first: the trunk pitching forward, a foot catching an obstacle, a knee
giving way. This module runs graded episodes, keeps every step's 82 features
and 18 excitations, and lines up the steps before each fall:

* **steady** statistics: every step from ``skip_start`` on, except the last
  ``horizon`` steps of an episode that fell (the start-up transient and the falls
  themselves would blur what normal running looks like);
* the **fall profile**: for each of the ``horizon`` steps before a fall, the mean
  over falls of each signal in steady standard deviations (z);
* the **onset** of a signal: how many steps before the fall its mean z left
  [-threshold, threshold] for good. The signals that leave first point at the cause;
  the ones that leave last are the collapse itself.

Episodes come from ``evaluation.run_split`` (the grader's integrator, one course
per seed, split over MPI ranks), so the same seeds give the same falls as
``l2run evaluate``. A policy trained with frame skip is held for its k steps on
a 10 ms env (``policies.HeldPolicy``): the profile sees every state.
"""
from __future__ import annotations

import dataclasses
import re
from functools import partial
from typing import List, Optional, Sequence

import numpy as np

from .envs import EnvConfig
from .evaluation import FELL, TIME_LIMIT, EpisodeResult, run_episode, run_split

#: |mean z| beyond which a signal counts as having left steady running.
ONSET_THRESHOLD = 1.0


def signal_names() -> tuple:
    """The 82 feature names, then ``excitation <muscle>`` for the 18 muscles."""
    from l2run.constants import MUSCLE_NAMES
    from observation import FEATURE_NAMES

    return tuple(FEATURE_NAMES) + tuple(f"excitation {m}" for m in MUSCLE_NAMES)


def signal_units() -> tuple:
    from l2run.constants import MUSCLE_NAMES
    from observation import FEATURES

    return tuple(f.unit for f in FEATURES) + ("1",) * len(MUSCLE_NAMES)


@dataclasses.dataclass
class Trace:
    """One graded episode, step by step."""

    result: EpisodeResult
    signals: np.ndarray
    """(steps, 100): before each action, the 82 features in physical units
    (``observation.denormalise``), then the 18 excitations the policy chose."""

    @property
    def score(self) -> float:
        return self.result.score


def trace_episode(env, policy, seed: int, episode: int, repeat: int = 1) -> Trace:
    """``evaluation.run_episode`` keeping every step; ``repeat``: the policy's frame skip."""
    from observation import denormalise

    from .policies import HeldPolicy

    steps: list = []
    result = run_episode(env, HeldPolicy(policy, repeat), seed, episode, trace=steps)
    features = np.array([obs for obs, _ in steps], dtype=np.float64).reshape(len(steps), -1)
    excitations = np.array([action for _, action in steps], dtype=np.float64).reshape(len(steps), -1)
    return Trace(result, np.hstack([denormalise(features), excitations]))


def trace_episodes(policy_spec: str, episodes: int, env_config: EnvConfig, seed: int,
                   progress: bool = True) -> Optional[List[Trace]]:
    """Traces of ``episodes`` graded episodes (course ``seed + i``), split over the
    MPI ranks; on rank 0, None elsewhere. ``env_config`` must observe the 82
    features; its frame skip is replayed by holding actions on a 10 ms env."""
    if not env_config.features:
        raise ValueError("the policy observes the raw 41 floats; l2run falls profiles the 82 features, "
                         "so it needs a policy trained on them (env.features = true)")
    every_step = dataclasses.replace(env_config, frame_skip=1)
    run = partial(trace_episode, repeat=env_config.frame_skip)
    return run_split(policy_spec, episodes, every_step, seed, run, progress, "falls")


@dataclasses.dataclass
class FallProfile:
    """Signals before the falls, measured against steady running (see the module docstring)."""

    horizon: int
    """Steps before a fall that are profiled (10 ms each)."""
    steady_mean: np.ndarray
    """(100,) physical units."""
    steady_std: np.ndarray
    """(100,); exactly 0 for a signal constant in steady running."""
    steady_steps: int
    windows: np.ndarray
    """(falls, horizon, 100): the last ``horizon`` steps of each fallen episode; row
    ``horizon - k`` is k steps before the fall; NaN before an episode's first step."""
    falls: List[EpisodeResult]

    def z(self) -> np.ndarray:
        """(horizon, 100): the mean over falls of each signal, in steady standard
        deviations from the steady mean; 0 for a signal constant in steady running."""
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (self.windows - self.steady_mean) / self.steady_std
        scaled[:, :, self.steady_std == 0] = 0.0
        counts = np.sum(~np.isnan(scaled), axis=0)
        total = np.nansum(scaled, axis=0)
        return np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)

    def onset(self, threshold: float = ONSET_THRESHOLD) -> np.ndarray:
        """(100,) ints: for how many steps before the fall each signal's mean z
        has stayed beyond +-``threshold`` (0: not at the last step either)."""
        outside = np.abs(self.z()) >= threshold  # (horizon, 100), last row = 1 step before
        inside_from_end = ~outside[::-1]
        return np.where(inside_from_end.any(axis=0), inside_from_end.argmax(axis=0), self.horizon)

    def ranking(self, threshold: float = ONSET_THRESHOLD) -> np.ndarray:
        """Signal indices, earliest onset first; ties by |z| one step before the fall."""
        onset, last = self.onset(threshold), np.abs(self.z()[-1])
        return np.lexsort((-last, -onset))


def profile(traces: Sequence[Trace], horizon: int, skip_start: int) -> FallProfile:
    """The fall profile of ``traces`` (see the module docstring); ValueError when
    there is no fall or no steady step to compare with."""
    falls = [t for t in traces if t.result.end == FELL]
    if not falls:
        ends = sorted({t.result.end for t in traces})
        raise ValueError(f"no episode ended in a fall ({len(traces)} ended by: {', '.join(ends)}); "
                         "nothing to profile")
    pieces = [t.signals[skip_start:len(t.signals) - (0 if t.result.end == TIME_LIMIT else horizon)]
              for t in traces]
    pieces = [piece for piece in pieces if len(piece)]
    if not pieces:
        raise ValueError(f"no steady step: every episode ended within {skip_start} + {horizon} steps of its "
                         "start; lower --skip-start or --horizon")
    width = falls[0].signals.shape[1]
    windows = np.full((len(falls), horizon, width), np.nan)
    for row, trace in zip(windows, falls):
        last = trace.signals[-horizon:]
        row[horizon - len(last):] = last
    steady = np.concatenate(pieces, axis=0)
    mean, std = steady.mean(axis=0), steady.std(axis=0)
    std[std <= 1e-9 * np.maximum(1.0, np.abs(mean))] = 0.0  # rounding noise of a constant (a course's psoas)
    return FallProfile(horizon, mean, std, len(steady), windows, [t.result for t in falls])


def gait_asymmetry(fall_profile: FallProfile) -> list:
    """[(right signal, left signal, difference of their steady means in pooled
    stds)], largest first. A gait that leads with one leg falls when that leg
    fails; a lever such as mirrored data (``ppo.mirror_augmentation``) would
    show here first. Signals pair by their ``_r``/``_l`` names (``observation.mirror``)."""
    from observation.mirror import mirror_permutation

    names = signal_names()
    mean, std = fall_profile.steady_mean, fall_profile.steady_std
    pairs = []
    for right, left in enumerate(mirror_permutation(names)):
        if re.search(r"_r(_|$)", names[right]):
            pooled = np.sqrt((std[right] ** 2 + std[left] ** 2) / 2)
            pairs.append((right, int(left), float((mean[right] - mean[left]) / pooled) if pooled > 0 else 0.0))
    return sorted(pairs, key=lambda pair: -abs(pair[2]))
