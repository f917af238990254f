"""``l2run falls``: what goes wrong in the second before a runner falls.

    l2run falls --policy pretrained/round2/policy.npz --episodes 16 --seed 100 --out runs/falls [--ranks 2]

Runs graded episodes (the grader's integrator and course; seeds 100 on by
default, so the grader's 0-9 stay unseen), then compares the steps before each
fall with steady running (:mod:`experiments.falls`). Prints each fall with its
place on the course and the signals (82 features, 18 excitations) that left
steady running earliest; writes ``falls.csv`` (every signal: steady mean and
std, onset, mean z before the fall), ``falls.png`` (the first signals to leave,
each fall against the steady band) and ``falls.json`` (the episodes, as
``l2run evaluate`` reports them, so ``l2run compare`` reads it).
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from .cli_types import accuracy, non_negative_int, obstacle_count, output_dir, positive_int
from .mpirun import check_ranks_for_episodes, launched_by_mpirun

#: Signals drawn in falls.png and listed on screen.
SHOWN = 12


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "falls", help="what the body does before a runner falls, against steady running (CSV + PNG)",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True,
                        help="a run directory, an exported policy .npz, 'random' or 'zero'")
    parser.add_argument("--out", required=True, type=output_dir,
                        help="directory for falls.csv, falls.png and falls.json")
    parser.add_argument("--episodes", type=positive_int, default=16)
    parser.add_argument("--seed", type=non_negative_int, default=100,
                        help="episode i runs the course of seed + i (default 100: the grader's 0-9 stay unseen)")
    parser.add_argument("--horizon", type=positive_int, default=100,
                        help="steps of 10 ms before each fall to profile (default 100: one second)")
    parser.add_argument("--skip-start", type=non_negative_int, default=100,
                        help="steps at the start of an episode left out of steady running (default 100: "
                             "the first second, from standing)")
    parser.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--max-obstacles", type=obstacle_count, default=10)
    parser.add_argument("--accuracy", type=accuracy, default=1e-3, help="integrator accuracy (1e-3: the grader's)")
    parser.add_argument("--ranks", type=positive_int, default=1,
                        help="split the episodes over this many MPI processes (at most --episodes)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .evaluation import policy_env_config
    from .policies import BUILTIN_POLICIES, check_policy_spec

    check_ranks_for_episodes("falls", args.ranks, args.episodes)
    try:
        check_policy_spec(args.policy)
        # random and zero ignore what they observe, and the profile reads the features
        observe = {"features": True} if args.policy in BUILTIN_POLICIES else {}
        config = policy_env_config(args.policy, difficulty=args.difficulty, max_obstacles=args.max_obstacles,
                                   integrator_accuracy=args.accuracy, **observe)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"l2run falls: {err}") from err
    if args.ranks > 1 and not launched_by_mpirun():
        return _relaunch(args)
    return _profile_here(args, config)


def _profile_here(args, config) -> int:
    from .evaluation import format_report, report, write_json_atomically
    from .falls import profile, signal_names, signal_units, trace_episodes

    started = time.perf_counter()
    try:
        traces = trace_episodes(args.policy, args.episodes, config, args.seed, progress=not args.quiet)
    except ValueError as err:
        raise SystemExit(f"l2run falls: {err}") from err
    if traces is None:  # not rank 0
        return 0
    episodes = report(args.policy, config, args.seed, [t.result for t in traces], time.perf_counter() - started)
    print(format_report(episodes))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # --out was checked writable (cli_types.output_dir)
    write_json_atomically(episodes, out / "falls.json")
    try:
        fall_profile = profile(traces, args.horizon, args.skip_start)
    except ValueError as err:
        print(f"l2run falls: {err}; episodes written to {out / 'falls.json'}")
        return 0
    names, units = signal_names(), signal_units()
    write_csv(out / "falls.csv", fall_profile, names, units)
    plot(out / "falls.png", fall_profile, names, units,
         f"policy {args.policy}: {len(fall_profile.falls)} falls in {len(traces)} episodes (seeds {args.seed}-"
         f"{args.seed + args.episodes - 1}); band: steady running, mean +- std over {fall_profile.steady_steps} steps")
    print(format_ranking(fall_profile, names, units))
    print(format_asymmetry(fall_profile, names, units))
    print(f"wrote {out / 'falls.csv'}, {out / 'falls.png'} and {out / 'falls.json'}")
    return 0


def _offsets(horizon: int) -> list:
    """Steps before the fall at which the table and CSV give z: the horizon, its half, quarter, and 1."""
    return sorted({horizon, max(horizon // 2, 1), max(horizon // 4, 1), 1}, reverse=True)


def format_ranking(fall_profile, names, units, shown: int = SHOWN) -> str:
    z, onset = fall_profile.z(), fall_profile.onset()
    offsets = _offsets(fall_profile.horizon)
    lines = [f"the {shown} signals that left steady running first (onset: steps of 10 ms before the fall with "
             f"|mean z| >= 1 ever since; z in steady stds, mean over {len(fall_profile.falls)} falls)",
             f"  {'signal':26s} {'unit':7s} {'steady mean':>11s} {'std':>8s} {'onset':>6s} "
             + " ".join(f"{f'z at -{k * 0.01:.2f}s':>11s}" for k in offsets)]
    for i in fall_profile.ranking()[:shown]:
        lines.append(f"  {names[i]:26s} {units[i]:7s} {fall_profile.steady_mean[i]:11.3f} "
                     f"{fall_profile.steady_std[i]:8.3f} {onset[i]:6d} "
                     + " ".join(f"{z[-k, i]:+11.2f}" for k in offsets))
    return "\n".join(lines)


def format_asymmetry(fall_profile, names, units, shown: int = 6) -> str:
    """The leg pairs whose steady means differ most: is the gait symmetric?"""
    from .falls import gait_asymmetry

    mean = fall_profile.steady_mean
    lines = ["steady running, right leg against left (difference of means in pooled stds):"]
    for right, left, difference in gait_asymmetry(fall_profile)[:shown]:
        lines.append(f"  {names[right]:26s} {mean[right]:+8.3f}  {names[left]:26s} {mean[left]:+8.3f} "
                     f"{units[right]:7s} {difference:+6.2f}")
    return "\n".join(lines)


def write_csv(path: Path, fall_profile, names, units) -> None:
    z, onset = fall_profile.z(), fall_profile.onset()
    offsets = _offsets(fall_profile.horizon)
    rank = np.empty(len(names), dtype=int)
    rank[fall_profile.ranking()] = np.arange(1, len(names) + 1)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "index", "signal", "unit", "steady_mean", "steady_std", "onset_steps",
                         *(f"z_at_minus_{k}" for k in offsets)])
        for i in np.argsort(rank):
            writer.writerow([rank[i], i, names[i], units[i], f"{fall_profile.steady_mean[i]:.6g}",
                             f"{fall_profile.steady_std[i]:.6g}", onset[i], *(f"{z[-k, i]:.4g}" for k in offsets)])


def plot(path: Path, fall_profile, names, units, title: str, shown: int = SHOWN) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    onset = fall_profile.onset()
    seconds = (np.arange(fall_profile.horizon) - fall_profile.horizon) * 0.01
    columns = 4
    rows = -(-shown // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), sharex=True, squeeze=False)
    for ax, i in zip(axes.flat, fall_profile.ranking()[:shown]):
        mean, std = fall_profile.steady_mean[i], fall_profile.steady_std[i]
        ax.axhspan(mean - std, mean + std, color="tab:green", alpha=0.2, linewidth=0)
        ax.axhline(mean, color="tab:green", linewidth=0.8)
        ax.plot(seconds, fall_profile.windows[:, :, i].T, color="0.5", linewidth=0.5, alpha=0.6)
        with np.errstate(all="ignore"):
            ax.plot(seconds, np.nanmean(fall_profile.windows[:, :, i], axis=0), color="tab:red", linewidth=1.6)
        if onset[i]:
            ax.axvline(-onset[i] * 0.01, color="tab:red", linestyle=":", linewidth=1)
        ax.set_title(f"{names[i]} ({units[i]}): onset {onset[i] * 10} ms", fontsize=9)
    for ax in axes.flat[shown:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds before the fall")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _relaunch(args) -> int:
    from .mpirun import relaunch

    return relaunch("falls", args.ranks, [
        "falls", "--policy", args.policy, "--out", Path(args.out).resolve(), "--episodes", args.episodes,
        "--seed", args.seed, "--horizon", args.horizon, "--skip-start", args.skip_start,
        "--difficulty", args.difficulty, "--max-obstacles", args.max_obstacles,
        "--accuracy", repr(args.accuracy), "--ranks", args.ranks], args.quiet)
