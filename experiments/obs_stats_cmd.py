"""``l2run obs-stats``: per-feature statistics of the 82 features on rollouts.

The 2017 team's check of their hand normalisation: run a policy, plot every
feature's mean (should be near 0) and std (near 1), and fix the offsets and
scales of the features that stand out (``observation/table.py``).

    l2run obs-stats --policy random --steps 2000 --out runs/obs_stats

writes ``obs_stats.csv`` (one row per feature: normalised mean/std/min/max,
and the same for the physical value before normalisation, which is what an
offset and scale are chosen from) and ``obs_stats.png`` (means on top, stds
below; out-of-range features in red), and lists the out-of-range features.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from .cli_types import accuracy, existing_file, non_negative_int, obstacle_count, output_dir, positive_int

#: A normalised feature is flagged when its mean or std leaves these ranges.
MEAN_RANGE = (-1.0, 1.0)
STD_RANGE = (0.2, 5.0)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "obs-stats", help="mean/std/min/max of the 82 features on rollouts (CSV + PNG)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--policy", default="random",
                        help="random, zero, an exported policy .npz or a run directory (default: random)")
    parser.add_argument("--steps", type=positive_int, default=2000, help="env steps in total, over all seeds")
    parser.add_argument("--out", required=True, type=output_dir,
                        help="directory for obs_stats.csv and obs_stats.png")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2, 3],
                        help="one stream of episodes per seed (course and policy RNG); "
                             "steps are split evenly")
    parser.add_argument("--difficulty", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--max-obstacles", type=obstacle_count, default=10)
    parser.add_argument("--accuracy", type=accuracy, default=3e-2, help="OpenSim integrator accuracy")
    parser.add_argument("--model", type=existing_file(".osim"), default=None,
                        help="an .osim file (default: gait9dof18musc)")
    parser.set_defaults(func=run)


@dataclasses.dataclass
class FeatureStats:
    """Statistics over rollouts, each an array of shape (82,)."""

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> "FeatureStats":
        values = np.asarray(values, dtype=np.float64)
        return cls(values.mean(0), values.std(0), values.min(0), values.max(0))

    def out_of_range(self) -> np.ndarray:
        """Boolean (82,): mean outside MEAN_RANGE or std outside STD_RANGE
        (with a float32 rounding margin, so a flag constant at +-1 is in range)."""
        eps = 1e-6
        return ((self.mean < MEAN_RANGE[0] - eps) | (self.mean > MEAN_RANGE[1] + eps)
                | (self.std < STD_RANGE[0]) | (self.std > STD_RANGE[1]))


def collect_features(policy_spec: str, steps: int, seeds: Sequence[int], difficulty: int, max_obstacles: int,
                     integrator_accuracy: float, model_path=None, progress: bool = True):
    """Run ``policy_spec`` for ``steps`` env steps split over ``seeds``.

    Each seed starts with ``reset(seed=seed)`` and a policy seeded with it;
    episodes after the first continue the env's own RNG (new courses). An
    exported policy trained with frame skip k holds each action for k steps
    (features are still recorded every 10 ms step).
    Returns (features (steps, 82) float32, number of episodes started).
    """
    from tqdm import tqdm

    from l2run import L2RunEnv
    from observation import L2RunFeatures

    from .policies import HeldPolicy, frame_skip_of, make_policy

    env = L2RunFeatures(L2RunEnv(difficulty=difficulty, max_obstacles=max_obstacles,
                                 integrator_accuracy=integrator_accuracy, model_path=model_path))
    per_seed = [steps // len(seeds) + (i < steps % len(seeds)) for i in range(len(seeds))]
    try:
        features = np.empty((steps, env.observation_space.shape[0]), dtype=np.float32)
    except MemoryError as err:  # e.g. 1e11 steps: 30 TiB
        env.close()
        raise ValueError(f"{steps} steps of features do not fit in memory ({err})") from None
    episodes, row = 0, 0
    with tqdm(total=steps, desc="obs-stats", unit="step", disable=not progress, mininterval=1.0) as bar:
        for seed, count in zip(seeds, per_seed):
            if count == 0:
                continue
            policy = make_policy(policy_spec, env.observation_space, env.action_space, seed=seed)
            repeat = frame_skip_of(policy)
            held = HeldPolicy(policy, repeat)
            obs, _ = env.reset(seed=int(seed))
            episodes += 1
            for _ in range(count):
                features[row] = obs
                row += 1
                obs, _, terminated, truncated, _ = env.step(held.act(obs))
                if terminated or truncated:
                    obs, _ = env.reset()
                    episodes, held = episodes + 1, HeldPolicy(policy, repeat)
                bar.update(1)
    env.close()
    return features, episodes


def write_csv(path: Path, stats: FeatureStats, physical: FeatureStats) -> None:
    from observation import FEATURES

    flagged = stats.out_of_range()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "name", "mean", "std", "min", "max", "out_of_range", "unit",
                         "physical_mean", "physical_std", "physical_min", "physical_max", "offset", "scale",
                         "squash"])
        for i, feature in enumerate(FEATURES):
            normalised = (stats.mean, stats.std, stats.min, stats.max)
            before = (physical.mean, physical.std, physical.min, physical.max)
            writer.writerow([i, feature.name, *(f"{a[i]:.6g}" for a in normalised), int(flagged[i]), feature.unit,
                             *(f"{a[i]:.6g}" for a in before), feature.offset, feature.scale, feature.squash])


def plot(path: Path, stats: FeatureStats, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from observation import FEATURE_NAMES

    flagged = stats.out_of_range()
    colours = np.where(flagged, "tab:red", "tab:blue")
    x = np.arange(len(FEATURE_NAMES))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(22, 9), sharex=True)
    top.bar(x, stats.mean, color=colours)
    for level in MEAN_RANGE:
        top.axhline(level, color="tab:red", linestyle="--", linewidth=0.8)
    top.axhline(0.0, color="black", linewidth=0.6)
    top.set_ylabel("mean")
    top.set_title(title)
    bottom.bar(x, stats.std, color=colours)
    for level in STD_RANGE:
        bottom.axhline(level, color="tab:red", linestyle="--", linewidth=0.8)
    bottom.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
    bottom.set_ylabel("std")
    bottom.set_xticks(x)
    bottom.set_xticklabels(FEATURE_NAMES, rotation=90, fontsize=7)
    for label, bad in zip(bottom.get_xticklabels(), flagged):
        if bad:
            label.set_color("tab:red")
    bottom.set_xlim(-0.7, len(x) - 0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    from observation import FEATURE_NAMES, denormalise

    from .policies import check_policy_spec

    out = Path(args.out)
    try:
        check_policy_spec(args.policy)
        out.mkdir(parents=True, exist_ok=True)  # --out was checked writable (cli_types.output_dir)
        features, episodes = collect_features(args.policy, args.steps, args.seeds, args.difficulty,
                                              args.max_obstacles, args.accuracy, args.model)
    except (ValueError, FileNotFoundError) as err:  # a bad policy or model file, too many steps
        raise SystemExit(f"l2run obs-stats: {err}") from err
    stats = FeatureStats.of(features)
    physical = FeatureStats.of(denormalise(features))
    write_csv(out / "obs_stats.csv", stats, physical)
    title = (f"82 features: policy {args.policy}, {args.steps} steps in {episodes} episodes, "
             f"difficulty {args.difficulty}, max obstacles {args.max_obstacles}, accuracy {args.accuracy:g}")
    plot(out / "obs_stats.png", stats, title)

    flagged = np.flatnonzero(stats.out_of_range())
    print(f"{len(flagged)} of {len(FEATURE_NAMES)} features outside mean {list(MEAN_RANGE)} / "
          f"std {list(STD_RANGE)}:")
    for i in flagged:
        constant = "  (constant in these rollouts)" if stats.std[i] == 0 else ""
        print(f"  {i:2d} {FEATURE_NAMES[i]:22s} mean {stats.mean[i]:+8.3f}  std {stats.std[i]:7.3f}"
              f"  [min {stats.min[i]:+.3f}, max {stats.max[i]:+.3f}]{constant}")
    print(f"wrote {out / 'obs_stats.csv'} and {out / 'obs_stats.png'}")
    return 0
