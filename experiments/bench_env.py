"""``l2run bench env`` and ``l2run bench memory``: what the env costs.

The simulator is the cost of this whole project, so the env is measured against
a *floor*: a bare OpenSim loop on the same model without obstacles that only
sets excitations, integrates 10 ms and reads the pelvis height. Variants run
interleaved with the same random excitations, step by step (one 10 ms step of
every variant, then the next), so that machine noise hits all of them alike
and the printed ratios are side-by-side measurements, not numbers from
different runs.

Each row also splits its speed into the integrator's work (derivative
evaluations per 10 ms step, which depend on the trajectory, not the machine)
and the time per evaluation (the model's cost, Python around it included):
a variant slower than the floor at equal evaluations per step pays in the
model, not in the integrator.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
from tqdm import tqdm

from l2run import L2RunEnv
from l2run.constants import ACTION_SIZE, PELVIS_FALL_HEIGHT, STEP_SECONDS
from l2run.course import generate_course
from l2run.integrator_stats import read_counts
from l2run.model_file import resolve_model_path
from l2run.simulator import (add_excitation_controller, add_obstacle_spheres, excitation_constants,
                             set_opensim_log_level)


def add_obstacles_2017(model, obstacles) -> list:
    """Spheres fixed to ground with one HuntCrossleyForce each against the four
    foot spheres, sphere and feet at stiffness 1e6 / radius: the 2017 env's
    contact (without its locked joints), which ``l2run.simulator.add_obstacle_spheres``
    merges into one force. Returns the forces, in the order of ``obstacles`` (x, y, radius)."""
    import opensim

    from l2run import simulator

    ground, forces = model.getGround(), []
    for i, (x, y, radius) in enumerate(obstacles):
        name = f"sphere_{i}"
        model.addContactGeometry(opensim.ContactSphere(float(radius), opensim.Vec3(x, y, 0), ground, name))
        force = opensim.HuntCrossleyForce()
        force.setName(f"{name}_contact")
        for geometry in (name,) + simulator.FOOT_SPHERES:
            force.addGeometry(geometry)
        force.setStiffness(simulator.OBSTACLE_STIFFNESS_TIMES_RADIUS / float(radius))
        force.setDissipation(simulator.OBSTACLE_DISSIPATION)
        force.setStaticFriction(0.0)
        force.setDynamicFriction(0.0)
        force.setViscousFriction(0.0)
        model.addForce(force)
        forces.append(force)
    return forces


class BareOpenSimLoop:
    """The floor: gait9dof18musc with a PrescribedController and nothing else;
    or, with ``obstacles`` ("2017" or "l2run"), plus the spheres of a
    difficulty-2 course (one course per loop) in that construction, to price
    the obstacles alone, apart from the env's Python."""

    def __init__(self, integrator_accuracy: float, model_path=None, obstacles: Optional[str] = None,
                 course_seed: int = 0):
        import opensim

        self._opensim = opensim
        set_opensim_log_level("warn")
        self.accuracy = integrator_accuracy
        self.model = opensim.Model(str(resolve_model_path(model_path)))
        controller = add_excitation_controller(self.model)
        if obstacles is not None:
            spheres = generate_course(2, 10, np.random.default_rng(course_seed)).obstacles
            {"2017": add_obstacles_2017, "l2run": add_obstacle_spheres}[obstacles](self.model, spheres)
        self.model.initSystem()
        self.constants = excitation_constants(controller)
        self.pelvis_y = self.model.getCoordinateSet().get("pelvis_ty")
        self.evaluations: Optional[int] = None

    def steps(self, actions: np.ndarray) -> Iterator[float]:
        """Yield the seconds of each 10 ms step until the pelvis falls or the
        actions run out; then :attr:`evaluations` holds the episode's derivative
        evaluations (None where the opensim build hides them)."""
        state = self.model.initializeState()
        self.model.equilibrateMuscles(state)
        manager = self._opensim.Manager(self.model)
        manager.setIntegratorAccuracy(self.accuracy)
        manager.initialize(state)
        for step, action in enumerate(actions, start=1):
            start = time.perf_counter()
            for constant, value in zip(self.constants, action):
                constant.setValue(float(value))
            state = manager.integrate(STEP_SECONDS * step)
            fell = self.pelvis_y.getValue(state) < PELVIS_FALL_HEIGHT
            yield time.perf_counter() - start
            if fell:
                break
        counts = read_counts(manager)
        self.evaluations = None if counts is None else counts.realizations


class EnvLoop:
    """L2RunEnv stepped with the same actions; reset timed apart."""

    def __init__(self, integrator_accuracy: float, difficulty: int, max_obstacles: int, model_path=None):
        self.env = L2RunEnv(difficulty, max_obstacles, integrator_accuracy, model_path=model_path)
        self.reset_seconds: list[float] = []
        self._episodes = 0
        self.evaluations: Optional[int] = None

    def steps(self, actions: np.ndarray) -> Iterator[float]:
        """As :meth:`BareOpenSimLoop.steps`, after a reset to the next course."""
        start = time.perf_counter()
        self.env.reset(seed=self._episodes)
        self.reset_seconds.append(time.perf_counter() - start)
        self._episodes += 1
        before = self.env.sim.integrator_counts()
        for action in actions:
            start = time.perf_counter()
            _, _, terminated, truncated, _ = self.env.step(action)
            yield time.perf_counter() - start
            if terminated or truncated:
                break
        after = self.env.sim.integrator_counts()
        self.evaluations = None if before is None or after is None else (after - before).realizations


def run_interleaved(loops: dict, actions: np.ndarray, tallies: dict) -> None:
    """One episode of every loop on the same ``actions``, advanced one 10 ms
    step each in turn: a slow second of the machine (another process, a
    frequency change) then costs every variant alike, which episode-by-episode
    interleaving does not guarantee."""
    steppers = {name: loop.steps(actions) for name, loop in loops.items()}
    steps = dict.fromkeys(loops, 0)
    seconds = dict.fromkeys(loops, 0.0)
    while steppers:
        for name, stepper in list(steppers.items()):
            try:
                seconds[name] += next(stepper)
                steps[name] += 1
            except StopIteration:
                tallies[name].add(steps[name], seconds[name], loops[name].evaluations)
                del steppers[name]


@dataclass
class Tally:
    steps: int = 0
    seconds: float = 0.0
    episodes: int = 0
    lengths: list = field(default_factory=list)
    realizations: Optional[int] = 0

    def add(self, steps: int, seconds: float, realizations: Optional[int] = None) -> None:
        self.steps += steps
        self.seconds += seconds
        self.episodes += 1
        self.lengths.append(steps)
        self.realizations = None if realizations is None or self.realizations is None \
            else self.realizations + realizations

    def evaluation_columns(self) -> str:
        """Derivative evaluations per step and microseconds per evaluation."""
        if not self.realizations:
            return f"{'-':>8s} {'-':>8s}"
        return f"{self.realizations / self.steps:8.1f} {1e6 * self.seconds / self.realizations:8.1f}"

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else float("nan")


def bench_env(accuracies=(1e-3, 3e-2), episodes: int = 6, max_steps: int = 1000, seed: int = 0,
              model_path=None) -> dict:
    """Measure every variant at every accuracy; returns the tallies and prints a table."""
    results = {}
    for accuracy in accuracies:
        variants = {
            "floor (bare OpenSim)": BareOpenSimLoop(accuracy, model_path),
            "floor + 10 spheres, 2017 contact": BareOpenSimLoop(accuracy, model_path, "2017", seed),
            "floor + 10 spheres, l2run contact": BareOpenSimLoop(accuracy, model_path, "l2run", seed),
            "env difficulty 0": EnvLoop(accuracy, 0, 0, model_path),
            "env difficulty 1 (3 obstacles)": EnvLoop(accuracy, 1, 3, model_path),
            "env difficulty 2 (10 obstacles)": EnvLoop(accuracy, 2, 10, model_path),
        }
        tallies = {name: Tally() for name in variants}
        rng = np.random.default_rng(seed)
        bar = tqdm(total=episodes * len(variants), desc=f"bench env @ accuracy {accuracy:g}", unit="episode")
        for _ in range(episodes):
            run_interleaved(variants, rng.random((max_steps, ACTION_SIZE)), tallies)
            bar.update(len(variants))
        bar.close()
        floor = tallies["floor (bare OpenSim)"].steps_per_s
        print(f"\naccuracy {accuracy:g}: {episodes} episodes per variant, random excitations, interleaved step by step")
        print(f"  {'variant':34s} {'steps':>7s} {'steps/s':>9s} {'x floor':>8s} {'reset ms':>9s} "
              f"{'evals':>8s} {'us/eval':>8s}")
        for name, tally in tallies.items():
            loop = variants[name]
            reset_ms = (f"{1000 * np.median(loop.reset_seconds):9.1f}"
                        if isinstance(loop, EnvLoop) else f"{'-':>9s}")
            print(f"  {name:34s} {tally.steps:7d} {tally.steps_per_s:9.1f} "
                  f"{tally.steps_per_s / floor:8.3f} {reset_ms} {tally.evaluation_columns()}")
        print("  evals = the integrator's derivative evaluations per 10 ms step; us/eval = stepping time per evaluation")
        results[accuracy] = (tallies, variants)
    if len(accuracies) > 1:
        low, high = accuracies[0], accuracies[-1]
        for name in results[low][0]:
            speedup = results[high][0][name].steps_per_s / results[low][0][name].steps_per_s
            print(f"accuracy {high:g} vs {low:g}, {name}: {speedup:.2f}x steps/s")
    return results


def rss_mb() -> float:
    """Resident set size of this process now (not the peak), in MB."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def bench_memory(episodes: int = 300, accuracy: float = 3e-2, difficulty: int = 2, max_obstacles: int = 10,
                 seed: int = 0, model_path=None) -> dict:
    """RSS over ``episodes`` random-action episodes of one env (target: RSS after
    the last episode within 50 MB of RSS after episode 20)."""
    env = L2RunEnv(difficulty, max_obstacles, accuracy, model_path=model_path)
    rng = np.random.default_rng(seed)
    rss = {0: rss_mb()}
    steps = 0
    for episode in tqdm(range(1, episodes + 1), desc="bench memory", unit="episode"):
        env.reset(seed=seed + episode)
        while True:
            _, _, terminated, truncated, _ = env.step(rng.random(ACTION_SIZE))
            steps += 1
            if terminated or truncated:
                break
        rss[episode] = rss_mb()
    marks = sorted({1, min(20, episodes), *range(50, episodes + 1, 50), episodes})
    print(f"\nRSS of one L2RunEnv (difficulty {difficulty}, {max_obstacles} obstacles, accuracy {accuracy:g}) "
          f"over {episodes} episodes, {steps} steps (every reset rebuilds the OpenSim system):")
    for mark in marks:
        print(f"  after episode {mark:4d}: {rss[mark]:8.1f} MB")
    if episodes >= 20:
        growth = rss[episodes] - rss[20]
        verdict = "within" if growth <= 50 else "OVER"
        print(f"growth from episode 20 to {episodes}: {growth:+.1f} MB ({verdict} the 50 MB target)")
    return rss


def held_random_actions(rng: np.random.Generator, steps: int, hold: int) -> np.ndarray:
    """Random excitations, each held ``hold`` steps: closer to what a policy
    (or frame skip) produces than a new draw every 10 ms."""
    draws = rng.random((-(-steps // hold), ACTION_SIZE))
    return np.repeat(draws, hold, axis=0)[:steps]


def replay(env: L2RunEnv, actions: np.ndarray, seed: int) -> tuple[np.ndarray, float, int, str]:
    """Pelvis (x, y) per step, stepping seconds, steps, and how it ended."""
    env.reset(seed=seed)
    pelvis, seconds = [], 0.0
    end = "time limit"
    for action in actions:
        start = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        seconds += time.perf_counter() - start
        pelvis.append(obs[1:3])
        if terminated or truncated:
            end = "sim error" if "sim_error" in info else ("fell" if terminated else "time limit")
            break
    return np.array(pelvis), seconds, len(pelvis), end


def bench_integrators(candidates, episodes: int = 6, max_steps: int = 300, hold: int = 5, seed: int = 0,
                      model_path=None) -> dict:
    """Each (integrator, accuracy) in ``candidates`` against the 2017 grader's
    Runge-Kutta-Merson at 1e-3 on the same open-loop action sequences: speed,
    failures, and how far the pelvis trajectory drifts from the grader's."""
    from l2run.simulator import GRADER_INTEGRATOR

    reference = (GRADER_INTEGRATOR, 1e-3)
    variants = [reference] + [c for c in candidates if c != reference]
    envs = {v: L2RunEnv(2, 10, v[1], model_path=model_path, integrator=v[0]) for v in variants}
    rng = np.random.default_rng(seed)
    rows = {v: {"steps": 0, "seconds": 0.0, "ends": [], "drift": [], "final": []} for v in variants}
    bar = tqdm(total=episodes * len(variants), desc="bench integrators", unit="episode")
    for episode in range(episodes):
        actions = held_random_actions(rng, max_steps, hold)
        trajectories = {}
        for v in variants:
            pelvis, seconds, steps, end = replay(envs[v], actions, seed + episode)
            trajectories[v] = pelvis
            row = rows[v]
            row["steps"] += steps
            row["seconds"] += seconds
            row["ends"].append(end)
            bar.update()
        ref = trajectories[reference]
        for v in variants:
            n = min(len(ref), len(trajectories[v]))
            rows[v]["drift"].append(float(np.abs(trajectories[v][:n] - ref[:n]).max()))
            rows[v]["final"].append(abs(float(trajectories[v][-1, 0] - ref[-1, 0])))
    bar.close()
    base = rows[reference]["steps"] / rows[reference]["seconds"]
    print(f"\n{episodes} episodes of random excitations held {hold} steps (up to {max_steps} steps), "
          "difficulty 2, interleaved; drift = max |pelvis x, y - grader's| over the common steps")
    print(f"  {'integrator':22s} {'accuracy':>8s} {'steps/s':>8s} {'x grader':>8s} {'drift m':>8s} "
          f"{'|dx end| m':>10s} {'retries':>7s}  ends")
    for v in variants:
        row = rows[v]
        rate = row["steps"] / row["seconds"]
        ends = ", ".join(f"{e}: {row['ends'].count(e)}" for e in sorted(set(row["ends"])))
        print(f"  {v[0]:22s} {v[1]:8g} {rate:8.1f} {rate / base:8.2f} {max(row['drift']):8.4f} "
              f"{max(row['final']):10.4f} {envs[v].sim.retries:7d}  {ends}")
    return rows
