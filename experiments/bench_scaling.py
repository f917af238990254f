"""``l2run bench scaling``: whole-loop training throughput at 1, 2, ... ranks.

Each measurement is a real ``l2run train`` job (mpirun, OpenSim, TensorFlow,
gradient Allreduce) of a few iterations in a temporary run directory; the
first iteration is dropped (TensorFlow traces its functions there). Rank
counts alternate round by round so that drift in machine load hits all of them.
Reported: env steps/s summed over ranks, speed-up and parallel efficiency
against 1 rank, and the learner's share of an iteration.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .cli_types import int_in, positive_int


def add_parser(kinds) -> None:
    parser = kinds.add_parser("scaling", help="training throughput (env steps/s) at several rank counts")
    parser.add_argument("--ranks", type=positive_int, nargs="+", default=None,
                        help="rank counts to compare (default: 1 up to the core count)")
    parser.add_argument("--config", default="round2", help="config whose env and PPO settings are measured")
    parser.add_argument("--steps-per-rank", type=positive_int, default=2048)
    parser.add_argument("--iterations", type=int_in(2), default=3, help="iterations per job (the first is dropped)")
    parser.add_argument("--rounds", type=positive_int, default=1, help="repeat every rank count this many times")
    parser.set_defaults(func=run)


@dataclasses.dataclass
class Measurement:
    ranks: int
    steps_per_s: list
    learn_fraction: list
    env_s: list
    learn_s: list


def measure(config_path: Path, ranks: int, iterations: int, run_dir: Path) -> tuple[np.ndarray, ...]:
    command = [sys.executable, "-m", "experiments.cli", "train", "--config", str(config_path),
               "--ranks", str(ranks), "--run-dir", str(run_dir), "--iterations", str(iterations), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"training job with {ranks} rank(s) failed (exit {result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))[1:]  # drop the warm-up iteration
    if not rows:
        raise RuntimeError(f"no timed iteration in {run_dir}: raise --iterations above 1")
    column = lambda key: np.array([float(r[key]) for r in rows])  # noqa: E731
    return column("perf/steps_per_s"), column("perf/learn_fraction"), column("perf/env_s"), column("perf/learn_s")


def run(args) -> int:
    from .config import config_to_toml, load_config

    cores = os.cpu_count() or 1
    rank_counts = args.ranks or list(range(1, cores + 1))
    try:
        config = load_config(args.config)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run bench scaling: --config {args.config!r}: {err}") from None
    config.ppo = dataclasses.replace(
        config.ppo, steps_per_rank=args.steps_per_rank,
        minibatch_size=min(config.ppo.minibatch_size, args.steps_per_rank),
        checkpoint_every=10_000,  # measure training, not checkpoint writing
    )
    results = {n: Measurement(n, [], [], [], []) for n in rank_counts}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="l2run-scaling-") as tmp:
        config_path = Path(tmp) / "scaling.toml"
        config_path.write_text(config_to_toml(config))
        jobs = [(r, n) for r in range(args.rounds) for n in rank_counts]
        for i, (round_index, n) in enumerate(jobs, start=1):
            print(f"[{i}/{len(jobs)}] {n} rank(s), {args.iterations} iterations of {args.steps_per_rank} "
                  f"steps per rank ({config.name}: difficulty {config.env.difficulty}, "
                  f"accuracy {config.env.integrator_accuracy:g})", flush=True)
            steps, learn, env_s, learn_s = measure(config_path, n, args.iterations, Path(tmp) / f"r{round_index}-n{n}")
            results[n].steps_per_s += list(steps)
            results[n].learn_fraction += list(learn)
            results[n].env_s += list(env_s)
            results[n].learn_s += list(learn_s)
    base = np.mean(results[rank_counts[0]].steps_per_s) / rank_counts[0]
    print(f"\nwhole-loop training throughput, {args.steps_per_rank} steps per rank per iteration, "
          f"{args.iterations - 1} timed iteration(s) x {args.rounds} round(s), {cores} cores, "
          f"{time.perf_counter() - started:.0f} s in all")
    print(f"  {'ranks':>5s} {'steps/s':>9s} {'speed-up':>9s} {'efficiency':>10s} {'env s/it':>9s} "
          f"{'learn s/it':>10s} {'learner share':>13s}")
    for n in rank_counts:
        m = results[n]
        rate = float(np.mean(m.steps_per_s))
        speedup = rate / (base * 1)
        print(f"  {n:5d} {rate:9.1f} {speedup:8.2f}x {speedup / n:10.2f} {np.mean(m.env_s):9.2f} "
              f"{np.mean(m.learn_s):10.2f} {100 * np.mean(m.learn_fraction):12.1f}%")
    if 1 in results and 2 in results:
        ratio = np.mean(results[2].steps_per_s) / np.mean(results[1].steps_per_s)
        print(f"2 ranks vs 1: {ratio:.2f}x (target >= 1.8x); learner share at 2 ranks "
              f"{100 * np.mean(results[2].learn_fraction):.1f}% (target <= 10%)")
    return 0
