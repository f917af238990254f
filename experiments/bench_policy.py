"""``l2run bench policy``: where a trained policy's simulation time goes.

A mature policy simulates about half as fast as an early one: it holds most
muscles at the excitation floor, nearly relaxed Thelen muscles make the
dynamics stiff, and OpenSim's error-controlled integrator takes many small
steps and rejects many more (issue 18). This benchmark runs an exported
policy closed loop in its own training env (integrator, accuracy, floor and
features from the policy's metadata) under several *variants*, interleaved
(episode k of every variant on the same course and the same noise draws, then
episode k+1), and prints per variant: env steps/s and the ratio to the first
variant, the fraction of excitations at the lower bound (the policy's floor or
the variant's) and at 1, the mean episode length and distance, and the
integrator's internal steps taken and attempted per 10 ms env step (attempted
= taken + rejected by the error test; ``l2run.integrator_stats``).

A variant is ``ACTIONS[+KEY=VALUE...]``:

* ``sampled``: the mean plus N(0, std) noise, clipped to the policy's bounds,
  as the trainer acts (``baselines_ppo.rollout``); ``deterministic``: the
  clipped mean.
* ``floor=F``: every excitation raised to at least F (a trained policy was not
  trained for it: expect shorter episodes); ``hipknee=F``: only the hip and knee
  muscles (``l2run.constants.HIP_KNEE_MUSCLES``, the ones that slow the
  integrator; ``EnvConfig.muscle_floors`` trains with such a floor).
* ``accuracy=A``, ``integrator=NAME``, ``min_step=H``, ``max_step=H``: the
  simulator's settings instead of the training env's (step bounds in seconds;
  see ``Simulator.set_integrator_step_bounds``).
* ``transition=V``: the feet's friction transition velocity in m/s instead of
  the training env's (the model's 0.1 m/s unless the policy trained with
  another; ``Simulator.set_friction_transition_velocity``).

Step counts do not depend on the machine's load; steps/s do, so compare the
ratios of one run.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from baselines_ppo.numpy_policy import mlp_forward

ACTION_MODES = ("sampled", "deterministic")
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "pretrained" / "round2" / "policy.npz"
DEFAULT_VARIANTS = ("sampled", "deterministic", "sampled+floor=0.1", "sampled+floor=0.15", "sampled+hipknee=0.15")
#: Tolerance for "at a bound": actions pass through float32.
BOUND_TOLERANCE = 1e-6
#: The integrator's work per step rises as the runner speeds up (about 9 internal
#: steps per 10 ms in the first 50 steps of the shipped runner, 16 after 600), so
#: variants whose episodes end at different lengths are also compared over the
#: first this many steps of every episode.
EARLY_STEPS = 100


@dataclasses.dataclass(frozen=True)
class Variant:
    """How to act and simulate in one column of the comparison."""

    actions: str = "sampled"
    floor: float = 0.0
    hipknee: float = 0.0
    accuracy: Optional[float] = None
    integrator: Optional[str] = None
    min_step: Optional[float] = None
    max_step: Optional[float] = None
    transition: Optional[float] = None
    spec: str = "sampled"

    def simulator_key(self) -> tuple:
        """Variants with equal keys can share one env (every reset rebuilds the system)."""
        return (self.accuracy, self.integrator, self.min_step, self.max_step, self.transition)

    def floors(self) -> np.ndarray:
        """The lower bound this variant raises each of the 18 excitations to."""
        from l2run.constants import HIP_KNEE_MUSCLES, MUSCLE_NAMES

        hip_knee = np.array([muscle[:-2] in HIP_KNEE_MUSCLES for muscle in MUSCLE_NAMES])
        return np.where(hip_knee, max(self.floor, self.hipknee), self.floor)


def parse_variant(spec: str) -> Variant:
    """``"sampled+floor=0.1+max_step=1e-3"`` -> :class:`Variant`; ValueError naming the problem."""
    from l2run.constants import STEP_SECONDS
    from l2run.simulator import INTEGRATORS, MAX_TRANSITION_VELOCITY

    actions, *options = str(spec).split("+")
    if actions not in ACTION_MODES:
        raise ValueError(f"variant {spec!r}: actions must be one of {ACTION_MODES}, got {actions!r}")
    fields: dict = {"actions": actions, "spec": str(spec)}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("floor", "hipknee", "accuracy", "integrator", "min_step", "max_step",
                                  "transition"):
            raise ValueError(f"variant {spec!r}: options are floor=, hipknee=, accuracy=, integrator=, min_step=, "
                             f"max_step=, transition=; got {option!r}")
        if key in fields:
            raise ValueError(f"variant {spec!r}: {key} given twice")
        if key == "integrator":
            if value not in INTEGRATORS:
                raise ValueError(f"variant {spec!r}: integrator must be one of {sorted(INTEGRATORS)}")
            fields[key] = value
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"variant {spec!r}: {key} must be a number, got {value!r}") from None
        floors = ("floor", "hipknee")
        limits = {"floor": (0.0, 1.0), "hipknee": (0.0, 1.0), "accuracy": (0.0, 1.0),
                  "transition": (0.0, MAX_TRANSITION_VELOCITY)}
        low, high = limits.get(key, (0.0, STEP_SECONDS))
        closed_above = key in ("min_step", "max_step", "transition")
        inside = (low <= number < high) if key in floors else (low < number <= high if closed_above
                                                                 else low < number < high)
        if not inside:
            raise ValueError(f"variant {spec!r}: {key} must lie in {'[' if key in floors else '('}{low:g}, "
                             f"{high:g}{']' if closed_above else ')'}, got {number:g}")
        fields[key] = number
    return Variant(**fields)


def parse_variants(specs) -> list:
    """Variants (strings or :class:`Variant`) -> distinct :class:`Variant` objects;
    ValueError naming the problem."""
    parsed = [parse_variant(v) if isinstance(v, str) else v for v in specs]
    if not parsed:
        raise ValueError("at least one variant is needed")
    names = [variant.spec for variant in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"a variant is given twice in {names}")
    return parsed


@dataclasses.dataclass
class Tally:
    steps: int = 0
    seconds: float = 0.0
    lengths: list = dataclasses.field(default_factory=list)
    distances: list = dataclasses.field(default_factory=list)
    excitations: int = 0
    at_low: int = 0
    at_high: int = 0
    taken: Optional[int] = 0
    attempted: Optional[int] = 0
    early_taken: Optional[int] = 0
    early_steps: int = 0
    retries: int = 0
    sim_errors: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else float("nan")


def policy_actions(policy, obs: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """The trainer's sampled action (mean + N(0, std), clipped to the policy's
    bounds) or the clipped mean, float64."""
    mean = mlp_forward(policy.actor, policy.activation, policy.normalize(np.asarray(obs, np.float64)[None]))[0]
    if mode == "sampled":
        mean = mean + np.exp(policy.log_std) * rng.standard_normal(mean.shape)
    return np.clip(mean, policy.action_low, policy.action_high)


def run_episode(env, policy, variant: Variant, seed: int, noise_seed, tally: Tally) -> None:
    """One closed-loop episode on course ``seed``; adds its figures to ``tally``."""
    sim = env.unwrapped.sim
    rng = np.random.default_rng(noise_seed)
    obs, _ = env.reset(seed=seed)
    counts_before, retries_before = sim.integrator_counts(), sim.retries
    floors = variant.floors()
    low = np.maximum(policy.action_low, floors).astype(np.float32)
    high = policy.action_high.astype(np.float32)
    steps, seconds, distance = 0, 0.0, 0.0
    counts_early = None
    while True:
        action = np.maximum(policy_actions(policy, obs, variant.actions, rng), floors).astype(np.float32)
        tally.at_low += int(np.count_nonzero(action <= low + BOUND_TOLERANCE))
        tally.at_high += int(np.count_nonzero(action >= high - BOUND_TOLERANCE))
        tally.excitations += action.size
        start = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        seconds += time.perf_counter() - start
        steps += 1
        distance += float(info["distance"])
        if steps == EARLY_STEPS:
            counts_early = sim.integrator_counts()
        if terminated or truncated:
            break
    counts_after = sim.integrator_counts()
    if counts_before is None or counts_after is None or tally.taken is None:
        tally.taken = tally.attempted = tally.early_taken = None
    else:
        delta = counts_after - counts_before
        tally.taken += delta.taken
        tally.attempted += delta.attempted
        tally.early_taken += ((counts_early or counts_after) - counts_before).taken
        tally.early_steps += min(steps, EARLY_STEPS)
    tally.steps += steps
    tally.seconds += seconds
    tally.lengths.append(steps)
    tally.distances.append(distance)
    tally.retries += sim.retries - retries_before
    tally.sim_errors += int("sim_error" in info)


def training_env_config(policy_spec: str, max_steps: int):
    """The env the policy trained in: its metadata's integrator, accuracy, foot
    friction, floor, features and course (``policy_env_config`` defaults to the grader's integrator)."""
    from baselines_ppo import export

    from .evaluation import policy_env_config

    trained = export.load_policy(export.find_policy(policy_spec)).metadata.get("env") or {}
    overrides = {key: trained[key] for key in ("integrator", "integrator_accuracy", "friction_transition_velocity")
                 if key in trained}
    return policy_env_config(policy_spec, max_steps=max_steps, frame_skip=1, **overrides)


def variant_env(config, variant: Variant):
    """The policy's training env (``config``) with ``variant``'s simulator settings."""
    from .envs import make_env

    settings = {}
    if variant.accuracy is not None:
        settings["integrator_accuracy"] = variant.accuracy
    if variant.integrator is not None:
        settings["integrator"] = variant.integrator
    if variant.transition is not None:
        settings["friction_transition_velocity"] = variant.transition
    env = make_env(dataclasses.replace(config, **settings))
    env.unwrapped.sim.set_integrator_step_bounds(variant.min_step, variant.max_step)
    return env


def run_variants(kind: str, policy_spec: str, variants, episodes: int, max_steps: int, seed: int, new_tally,
                 run) -> tuple:
    """The loop ``bench policy`` and ``bench stiffness`` share: episode k of every
    variant on course ``seed + k`` with noise draws ``(seed, k)``, then episode
    k + 1, in the policy's training env with each variant's simulator settings
    (variants with equal settings share an env). ``run(env, policy, variant,
    course_seed, noise_seed, tally)`` plays one episode into ``tally``.
    Returns (training env config, parsed variants, {spec: tally})."""
    from baselines_ppo import export

    from .policies import load_exported_policy

    parsed = parse_variants(variants)
    specs = [variant.spec for variant in parsed]
    config = training_env_config(policy_spec, max_steps)
    envs = {}
    for variant in parsed:
        if variant.simulator_key() not in envs:
            envs[variant.simulator_key()] = variant_env(config, variant)
    first = next(iter(envs.values()))
    policy = load_exported_policy(export.find_policy(policy_spec), first.observation_space, first.action_space)
    tallies = {spec: new_tally() for spec in specs}
    bar = tqdm(total=episodes * len(parsed), desc=f"bench {kind}", unit="episode")
    for episode in range(episodes):
        for variant in parsed:
            run(envs[variant.simulator_key()], policy, variant, seed + episode, (seed, episode),
                tallies[variant.spec])
            bar.update()
    bar.close()
    for env in envs.values():
        env.close()
    return config, parsed, tallies


def bench_policy(policy_spec: str, variants=DEFAULT_VARIANTS, episodes: int = 3, max_steps: int = 1000,
                 seed: int = 0) -> dict:
    """Run every variant ``episodes`` times, interleaved; print and return the tallies."""
    config, parsed, tallies = run_variants("policy", policy_spec, variants, episodes, max_steps, seed, Tally,
                                           run_episode)
    _print_table(policy_spec, config, parsed, tallies, episodes)
    return tallies


def _print_table(policy_spec, config, variants, tallies, episodes) -> None:
    from .bench_excitation import _shown

    print(f"\n{episodes} episodes per variant, policy {_shown(str(policy_spec))}, its training env: difficulty "
          f"{config.difficulty}, {config.integrator} at {config.integrator_accuracy:g}, floor "
          f"{config.min_excitation:g}; interleaved, same courses and noise")
    print("  at low = excitations at the lower bound (policy's floor or the variant's); taken/tried = the "
          f"integrator's internal steps accepted/attempted per 10 ms step; early = taken over the first "
          f"{EARLY_STEPS} steps of each episode (comparable across episode lengths)")
    print(f"  {'variant':34s} {'steps':>6s} {'steps/s':>8s} {'x first':>7s} {'at low':>6s} {'at 1':>5s} "
          f"{'mean ep':>7s} {'dist m':>6s} {'taken':>6s} {'tried':>6s} {'reject':>6s} {'early':>6s} {'retries':>7s}")
    base = tallies[variants[0].spec].steps_per_s
    for variant in variants:
        t = tallies[variant.spec]
        if t.taken is None or not t.steps:
            counts = f"{'n/a':>6s} {'n/a':>6s} {'n/a':>6s} {'n/a':>6s}"
        else:
            rejected = 1 - t.taken / t.attempted if t.attempted else 0.0
            counts = (f"{t.taken / t.steps:6.1f} {t.attempted / t.steps:6.1f} {rejected:6.0%} "
                      f"{t.early_taken / t.early_steps:6.1f}")
        print(f"  {variant.spec:34s} {t.steps:6d} {t.steps_per_s:8.1f} {t.steps_per_s / base:7.2f} "
              f"{t.at_low / t.excitations:6.0%} {t.at_high / t.excitations:5.0%} {np.mean(t.lengths):7.0f} "
              f"{np.mean(t.distances):6.2f} {counts} {t.retries:7d}")
