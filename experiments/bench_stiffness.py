"""``l2run bench stiffness``: which states set the integrator's step under a policy.

``l2run bench policy`` counts the integrator's internal steps; this says why
there are so many. It runs an exported policy closed loop in its own training
env (sampled or deterministic actions, the same variants as ``bench policy``)
and every ``every`` steps linearises the model's ODE at the visited state
(``l2run.stiffness``): the eigenvalue of largest magnitude bounds an explicit
integrator's stable step to about 2 / |lambda|, and its participation factors
name the states that make it. Printed per variant: the median and 90th
percentile of that |lambda|, the step it allows, which kind of state leads the
stiffest mode (speeds, fibre lengths, activations, coordinates) and the states
that lead it most often.

The analysis costs ~108 derivative evaluations per sample and does not depend
on the machine's load.
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np

from .bench_policy import Variant, policy_actions, run_variants

DEFAULT_VARIANTS = ("sampled", "sampled+transition=0.3")
KINDS = ("speeds", "fibre lengths", "activations", "coordinates")


@dataclasses.dataclass
class StiffnessTally:
    magnitudes: list = dataclasses.field(default_factory=list)
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    leaders: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def sample_episode(env, policy, variant: Variant, seed: int, noise_seed, tally: StiffnessTally, every: int) -> None:
    """One closed-loop episode; the stiffest mode every ``every`` steps into ``tally``."""
    from l2run.simulator import set_opensim_log_level
    from l2run.stiffness import short_name, state_jacobian, state_kind, stiffest_mode

    sim = env.unwrapped.sim
    names = [sim.model.getStateVariableNames().get(i) for i in range(sim.model.getNumStateVariables())]
    rng = np.random.default_rng(noise_seed)
    floors = variant.floors()
    obs, _ = env.reset(seed=seed)
    steps = 0
    while True:
        action = np.maximum(policy_actions(policy, obs, variant.actions, rng), floors).astype(np.float32)
        obs, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if steps % every == 0:
            # Setting every state variable touches the locked lumbar coordinate, which
            # OpenSim warns about on each call: keep that out of the table.
            set_opensim_log_level("error")
            try:
                mode = stiffest_mode(state_jacobian(sim.model, sim.state, names), names)
            finally:
                set_opensim_log_level("warn")
            tally.magnitudes.append(abs(mode.eigenvalue))
            tally.kinds[state_kind(mode.leader)] += 1
            tally.leaders[short_name(mode.leader)] += 1
        if terminated or truncated:
            break


def bench_stiffness(policy_spec: str, variants=DEFAULT_VARIANTS, episodes: int = 2, every: int = 25,
                    max_steps: int = 1000, seed: int = 0) -> dict:
    """Sample every variant's stiffest modes, interleaved; print and return the tallies."""
    config, parsed, tallies = run_variants("stiffness", policy_spec, variants, episodes, max_steps, seed,
                                           StiffnessTally, functools.partial(sample_episode, every=every))
    _print_table(policy_spec, config, parsed, tallies, episodes, every)
    return tallies


def _print_table(policy_spec, config, variants, tallies, episodes, every) -> None:
    from .bench_excitation import _shown

    velocity = config.friction_transition_velocity
    transition = "the model's" if velocity is None else f"{velocity:g} m/s"
    print(f"\nstiffest mode of the model's ODE every {every} steps, {episodes} episodes per variant, policy "
          f"{_shown(str(policy_spec))}, its training env: {config.integrator} at {config.integrator_accuracy:g}, "
          f"floor {config.min_excitation:g}, feet's friction transition {transition}; same courses and noise")
    print("  |lambda| = magnitude of the Jacobian's largest eigenvalue (1/s); 2/|lambda| = the largest step an "
          "explicit integrator keeps stable; 'led by' = the kind of state with the largest share of that mode")
    kinds = "".join(f" {kind:>13s}" for kind in KINDS)
    print(f"  {'variant':30s} {'samples':>7s} {'median':>8s} {'p90':>8s} {'2/median ms':>11s}  led by:{kinds}")
    for variant in variants:
        t = tallies[variant.spec]
        if not t.magnitudes:
            print(f"  {variant.spec:30s} {0:7d}  (episodes shorter than {every} steps)")
            continue
        median, p90 = np.median(t.magnitudes), np.percentile(t.magnitudes, 90)
        shares = "".join(f" {t.kinds[kind] / len(t.magnitudes):13.0%}" for kind in KINDS)
        print(f"  {variant.spec:30s} {len(t.magnitudes):7d} {median:8.0f} {p90:8.0f} {2e3 / median:11.2f}  "
              f"       {shares}")
    for variant in variants:
        leaders = ", ".join(f"{name} {count}" for name, count in tallies[variant.spec].leaders.most_common(4))
        print(f"  most often leading under {variant.spec}: {leaders}")
