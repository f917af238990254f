"""``l2run bench min-excitation``: what a floor on muscle excitations buys.

Thelen muscles near zero activation have stiff fibre dynamics, and OpenSim's
error-controlled integrators then take many tiny steps. A trained policy
relaxes most muscles most of the time, so its episodes simulate several times
slower than random excitations do (2-rank training fell from ~470 to ~220
steps/s as the 2017 recipe learned). ``EnvConfig.min_excitation`` keeps every
excitation above a floor; this benchmark measures, side by side, the steps/s
and the distance of the same actions under each floor.

Actions come from a policy trained without a floor (closed loop, each action
raised to the floor, as a floored policy clips to its box). The default is
``pretrained/no_floor_954k``: the 2017 recipe after 954k steps, the policy whose
slowdown this measures. ``--policy random`` uses open-loop relaxed random
excitations instead (u**3, held a few steps); they topple the model within
about a second, before it reaches the slow states, so they show little effect.
Floors run interleaved on the same seeds, so machine noise hits them alike.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .bench_env import held_random_actions
from .envs import EnvConfig, make_env

TRAINING_INTEGRATOR = ("semi_explicit_euler2", 3e-2)  # the round-2 config's
NO_FLOOR_POLICY = Path(__file__).resolve().parents[1] / "pretrained" / "no_floor_954k" / "policy.npz"


def relaxed_random_actions(rng: np.random.Generator, steps: int, hold: int) -> np.ndarray:
    """Excitations u**3 (median 0.125), each held ``hold`` steps."""
    return held_random_actions(rng, steps, hold) ** 3


def run_floor_episode(env, floor: float, seed: int, policy=None, actions=None) -> tuple[int, float, float]:
    """(steps, stepping seconds, distance) of one episode with excitations
    raised to ``floor``; actions from ``policy`` (closed loop) or ``actions``."""
    obs, _ = env.reset(seed=seed)
    steps, seconds, distance = 0, 0.0, 0.0
    limit = len(actions) if actions is not None else None
    while limit is None or steps < limit:
        action = policy.act(obs) if policy is not None else actions[steps]
        action = np.maximum(np.asarray(action, dtype=np.float64), floor)
        start = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        seconds += time.perf_counter() - start
        steps += 1
        distance += float(info["distance"])
        if terminated or truncated:
            break
    return steps, seconds, distance


def bench_min_excitation(floors=(0.0, 0.02, 0.05, 0.1), policy_spec="random", episodes: int = 3,
                         max_steps: int = 1000, hold: int = 5, seed: int = 0,
                         integrator: tuple = TRAINING_INTEGRATOR) -> dict:
    """steps/s and distance per floor; prints a table with ratios to the first floor.
    ``policy_spec``: an exported policy or run directory, or "random"."""
    floors = [float(f) for f in floors]
    name, accuracy = integrator
    policy = None
    if policy_spec != "random":
        from .evaluation import policy_env_config
        from .policies import make_policy

        # The policy's own env, without any floor of its own: the floors are applied here.
        config = policy_env_config(policy_spec, integrator=name, integrator_accuracy=accuracy,
                                   max_steps=max_steps, frame_skip=1, min_excitation=0.0)
        env = make_env(config)
        policy = make_policy(policy_spec, env.observation_space, env.action_space)
    else:
        env = make_env(EnvConfig(features=False, integrator=name, integrator_accuracy=accuracy,
                                 max_steps=max_steps))
    rng = np.random.default_rng(seed)
    rows = {floor: {"steps": 0, "seconds": 0.0, "distance": []} for floor in floors}
    bar = tqdm(total=episodes * len(floors), desc="bench min-excitation", unit="episode")
    for episode in range(episodes):
        actions = None if policy is not None else relaxed_random_actions(rng, max_steps, hold)
        for floor in floors:
            # Every reset rebuilds the system and starts a fresh integrator, so one env serves all floors.
            steps, seconds, distance = run_floor_episode(env, floor, seed + episode, policy, actions)
            row = rows[floor]
            row["steps"] += steps
            row["seconds"] += seconds
            row["distance"].append(distance)
            bar.update()
    bar.close()
    env.close()
    source = f"policy {_shown(policy_spec)}" if policy is not None else f"relaxed random excitations held {hold} steps"
    print(f"\n{episodes} episodes per floor ({source}), difficulty 2, {name} at {accuracy:g}, interleaved")
    print(f"  {'min excitation':>14s} {'steps':>7s} {'steps/s':>8s} {'x no floor':>10s} {'distance m':>10s}")
    base = rows[floors[0]]["steps"] / rows[floors[0]]["seconds"]
    for floor in floors:
        row = rows[floor]
        rate = row["steps"] / row["seconds"]
        print(f"  {floor:14g} {row['steps']:7d} {rate:8.1f} {rate / base:10.2f} {np.mean(row['distance']):10.2f}")
    return rows


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    import os

    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
