"""PPOConfig: every knob of the algorithm, with the reason it exists.

Defaults reproduce the setup the 2017 team ran with openai/baselines ``ppo1``
(``pposgd_simple`` with ``MlpPolicy``): two tanh layers of 64, 2048 steps per
rank per iteration, 10 epochs of minibatches of 64, clip 0.2, gamma 0.99,
lambda 0.95, Adam 3e-4 (epsilon 1e-5) decayed linearly to 0, no entropy bonus.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np

ACTIVATIONS = ("tanh", "relu", "elu")
LR_SCHEDULES = ("linear", "constant", "piecewise")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of PPO over MPI; one instance is shared by every rank."""

    hidden_sizes: Tuple[int, ...] = (64, 64)
    """Widths of the hidden layers, used for both the actor and the separate value MLP."""
    activation: str = "tanh"
    """Hidden-layer non-linearity: tanh (ppo1), relu or elu."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian actions (state-independent, learned).
    0 gives std 1: wide exploration on [0, 1] excitations, as ppo1 did."""

    steps_per_rank: int = 2048
    """Env steps each rank collects per iteration (one env per rank); the batch of an
    iteration is steps_per_rank * ranks."""
    total_timesteps: int = 1_000_000
    """Training length summed over ranks: sets the number of iterations and the length
    of the linear learning-rate decay."""
    early_batch_until: int = 0
    """Until this many timesteps (summed over ranks), iterations collect
    early_steps_per_rank steps per rank and train in minibatches of
    early_minibatch_size; from then on steps_per_rank and minibatch_size. 0: off.
    Why: from scratch, small batches learn faster (more updates per step), and
    later large ones keep each update's KL in check. Measured on L2Run round 2
    with 2 ranks: 2048/64 reached +1.23 m at 0.5M steps where 8192/256 from the
    start reached -0.63 m; from 1.06M steps on, 8192/256 matched 2048/64's
    distance with half its KL (docs: the default config's schedule). An
    iteration's sizes follow the timesteps at its start, so a resumed run
    switches at the same iteration as an uninterrupted one."""
    early_steps_per_rank: int = 2048
    """Steps per rank per iteration before early_batch_until."""
    early_minibatch_size: int = 64
    """Minibatch size before early_batch_until."""
    epochs: int = 10
    """Passes over the batch per iteration."""
    minibatch_size: int = 64
    """Samples per gradient step on each rank; the averaged gradient sees
    minibatch_size * ranks samples."""

    clip_range: float = 0.2
    """PPO's epsilon: the probability ratio is clipped to [1 - eps, 1 + eps]."""
    gamma: float = 0.99
    """Discount factor."""
    lam: float = 0.95
    """GAE lambda: bias/variance trade-off of advantages (Schulman et al. 2016)."""
    learning_rate: float = 3e-4
    """Adam step size at the start of training."""
    lr_schedule: str = "linear"
    """"linear": decays to 0 at total_timesteps (ppo1's schedule='linear'); "constant";
    "piecewise": straight lines between lr_points."""
    lr_points: Optional[Tuple[Tuple[float, float], ...]] = None
    """For lr_schedule = "piecewise": [timesteps, learning rate] pairs, timesteps
    increasing; the rate is interpolated linearly between them and held before
    the first and after the last (learning_rate is then not used). Why: a long line
    outgrows the horizon it started with, and changing total_timesteps under a
    linear decay makes the rate jump; a point at a step still ahead, with the old
    schedule's rate there, bends the decay toward the new horizon without a jump.
    Staged decays (NNAISENSE 2017: 3e-4 -> 6e-5) are written the same way."""
    adam_eps: float = 1e-5
    """Adam epsilon (ppo1 used 1e-5, larger than Adam's 1e-8, for stability)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus (ppo1 MuJoCo setting: 0)."""
    vf_coef: float = 1.0
    """Weight of the value loss in the summed loss; with separate networks and one
    Adam it only scales the value net's gradients (ppo1: 1)."""
    target_kl: Optional[float] = None
    """Stop the epochs of an iteration early once the mean approximate KL (averaged
    over ranks) of an epoch exceeds 1.5 * target_kl (Spinning Up); None: off."""
    max_grad_norm: Optional[float] = None
    """Clip the global norm of the averaged gradient; None: off (ppo1 did not clip)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before GAE (not in the logged returns): keeps
    value targets near unit scale for envs with large per-step rewards."""

    normalize_rewards: bool = False
    """Divide the rewards used for GAE and value targets by a running standard deviation
    of the discounted return, as openai/baselines' and SB3's VecNormalize do: each rank
    keeps the discounted return of its episode in progress (reset at episode ends),
    the statistics of those returns are merged across ranks once per iteration, and
    every reward of the batch is divided by sqrt(var + 1e-8) of the updated statistics,
    then clipped to +-reward_clip (reward_scale still multiplies the result). Keeps
    value targets near unit scale whatever the reward shaping; logged returns and
    distances stay raw. The statistics are saved in checkpoints but not in the
    exported policy (acting does not use rewards)."""
    reward_clip: float = 10.0
    """With normalize_rewards, normalised rewards are clipped to [-reward_clip,
    reward_clip] (baselines/SB3: 10); a huge value turns clipping off."""
    mirror_augmentation: bool = False
    """Train on every sample AND its left-right mirror image (Kidzinski et al. 2018,
    arXiv 1804.00361: the top 2017 teams exploited the symmetric body). Needs a
    :class:`baselines_ppo.symmetry.Symmetry` passed to ``train``. Each iteration's
    batch is doubled with (mirror(obs), mirror(action)) carrying the same advantages
    and value targets, with old log-probabilities of the mirrored actions computed
    under the acting policy, so the PPO ratio is right for these known off-policy
    samples. Minibatches keep minibatch_size samples, so an epoch takes twice as
    many gradient steps (each still of the configured size; the learning rate and
    the clipping act per step as without mirroring). The observation statistics
    (if normalize_observations) are fed both halves, since the networks see both."""

    symmetry_coef: float = 0.0
    """Weight of a mirror-symmetry loss on the mean action (Yu, Turk and Liu 2018,
    "Learning Symmetric and Low-Energy Locomotion"): adds
    ``symmetry_coef * mean_s sum_i (clip(mu(s)) - mirror(clip(mu(mirror(s)))))_i^2``
    to the loss (clip: to the env's action bounds, as the env applies them),
    pulling the policy toward acting alike on both sides. Unlike
    mirror_augmentation it uses no importance ratio, so it can be turned on in a
    line whose policy is already lopsided (there, mirrored actions are ~10 nats
    off policy and the augmented update blows up: docs/training.md, "Levers").
    0: off. Needs the env's Symmetry, like mirror_augmentation; not both at once."""

    normalize_observations: bool = False
    """Running mean/std normalisation of observations (merged across ranks, saved
    with the weights). Off by default because l2run hand-normalises its features."""
    obs_clip: float = 5.0
    """Normalised observations are clipped to [-obs_clip, obs_clip] (ppo1: 5)."""
    normalize_advantages: bool = True
    """Standardise advantages with mean/std over the whole batch of all ranks."""

    value_warmup_iterations: int = 3
    """When a run starts from an exported policy (``init_from``: an actor without its
    critic), this many first iterations train only the value network on batches the
    unchanged policy collects, so that the actor's first updates follow real
    advantages instead of a random critic's (see :mod:`baselines_ppo.init_from`).
    Unused otherwise; 0 turns it off."""

    seed: int = 0
    """Base seed; rank r uses seed + 10000 * r for numpy, TensorFlow and its env."""
    checkpoint_every: int = 10
    """Save a checkpoint (and export the policy) every this many iterations."""
    keep_checkpoints: int = 3
    """How many of the most recent checkpoints to keep on disk."""
    check_sync_every: int = 10
    """Every this many iterations, verify that all ranks hold bit-identical parameters
    (abort the job if not)."""
    snapshot_every: int = 10
    """Keep the exported policy of every this many iterations in run_dir/snapshots/
    (0: none), for ``l2run select`` to score on held-out seeds."""
    keep_snapshots: int = 10
    """How many of the newest snapshots to keep."""
    snapshot_keep_every: int = 100
    """Also keep, for the run's history, the snapshots at multiples of this many
    iterations (0: none)."""

    def __post_init__(self):
        def fail(name, expected):
            raise ValueError(f"ppo.{name} {expected}, got {getattr(self, name)!r}")

        sizes = self.hidden_sizes
        if isinstance(sizes, list):
            object.__setattr__(self, "hidden_sizes", tuple(sizes))
            sizes = self.hidden_sizes
        if not isinstance(sizes, tuple) or not sizes or not all(_is_int(h) and h > 0 for h in sizes):
            fail("hidden_sizes", "must be a non-empty list of positive integers")
        if self.activation not in ACTIVATIONS:
            fail("activation", f"must be one of {', '.join(ACTIVATIONS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            fail("lr_schedule", f"must be one of {', '.join(LR_SCHEDULES)}")
        self._check_lr_points(fail)
        for name in ("steps_per_rank", "total_timesteps", "epochs", "minibatch_size",
                     "checkpoint_every", "keep_checkpoints", "check_sync_every"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                fail(name, "must be a positive integer")
        for name in ("early_steps_per_rank", "early_minibatch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "must be a positive integer")
        if not _is_int(self.early_batch_until) or self.early_batch_until < 0:
            fail("early_batch_until", "must be a non-negative integer (0: off)")
        pairs = [("", "")] + ([("early_", "early_")] if self.early_batch_until > 0 else [])
        for steps_prefix, batch_prefix in pairs:
            steps, minibatch = getattr(self, f"{steps_prefix}steps_per_rank"), getattr(self, f"{batch_prefix}minibatch_size")
            if minibatch > steps:
                raise ValueError(
                    f"ppo.{batch_prefix}minibatch_size ({minibatch}) must not exceed "
                    f"ppo.{steps_prefix}steps_per_rank ({steps})")
            if steps % minibatch:
                raise ValueError(
                    f"ppo.{steps_prefix}steps_per_rank ({steps}) must be divisible by "
                    f"ppo.{batch_prefix}minibatch_size ({minibatch}) so every rank takes the same "
                    "number of gradient steps")
        for name in ("learning_rate", "adam_eps", "clip_range", "vf_coef", "obs_clip", "reward_scale",
                     "reward_clip"):
            if not _is_real(getattr(self, name)) or not getattr(self, name) > 0:
                fail(name, "must be a positive number")
        if not _is_real(self.gamma) or not 0 < self.gamma <= 1:
            fail("gamma", "must be in (0, 1]")
        if not _is_real(self.lam) or not 0 <= self.lam <= 1:
            fail("lam", "must be in [0, 1]")
        if not _is_real(self.entropy_coef) or self.entropy_coef < 0:
            fail("entropy_coef", "must be >= 0")
        if not _is_real(self.init_log_std):
            fail("init_log_std", "must be a finite number")
        for name in ("target_kl", "max_grad_norm"):
            value = getattr(self, name)
            if value is not None and (not _is_real(value) or value <= 0):
                fail(name, "must be a positive number or None (off)")
        for name in ("normalize_observations", "normalize_advantages", "normalize_rewards", "mirror_augmentation"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be true or false")
        if not _is_real(self.symmetry_coef) or self.symmetry_coef < 0:
            fail("symmetry_coef", "must be a number >= 0 (0: off)")
        if self.symmetry_coef > 0 and self.mirror_augmentation:
            fail("symmetry_coef", "and mirror_augmentation both ask for symmetry; turn one of them off")
        for name in ("value_warmup_iterations", "snapshot_every", "keep_snapshots", "snapshot_keep_every"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "must be a non-negative integer")
        if not _is_int(self.seed) or self.seed < 0:
            fail("seed", "must be a non-negative integer")

    def batch_at(self, timesteps: int) -> Tuple[int, int]:
        """(steps_per_rank, minibatch_size) of an iteration that starts after
        ``timesteps`` env steps (summed over ranks)."""
        if timesteps < self.early_batch_until:
            return self.early_steps_per_rank, self.early_minibatch_size
        return self.steps_per_rank, self.minibatch_size

    def iterations_to_total(self, timesteps: int, ranks: int) -> int:
        """Iterations still needed, from ``timesteps`` env steps, to reach
        total_timesteps with ``ranks`` ranks (following the batch schedule)."""
        iterations = 0
        while timesteps < self.total_timesteps:
            timesteps += self.batch_at(timesteps)[0] * ranks
            iterations += 1
        return iterations

    def total_iterations(self, ranks: int) -> int:
        """Iterations needed to reach total_timesteps from scratch with ``ranks`` ranks."""
        return max(1, self.iterations_to_total(0, ranks))

    def _check_lr_points(self, fail) -> None:
        points = self.lr_points
        if points is None:
            if self.lr_schedule == "piecewise":
                fail("lr_points", 'must list [timesteps, learning rate] pairs for lr_schedule = "piecewise"')
            return
        if self.lr_schedule != "piecewise":
            fail("lr_points", f'is only read by lr_schedule = "piecewise" (lr_schedule is {self.lr_schedule!r}); '
                 "remove it or switch the schedule")
        if isinstance(points, list):
            points = tuple(tuple(point) if isinstance(point, list) else point for point in points)
            object.__setattr__(self, "lr_points", points)
        if not isinstance(points, tuple) or not points or not all(
                isinstance(point, tuple) and len(point) == 2 and all(_is_real(v) for v in point) for point in points):
            fail("lr_points", "must be a non-empty list of [timesteps, learning rate] pairs of numbers")
        steps = [point[0] for point in points]
        if steps[0] < 0 or any(b <= a for a, b in zip(steps, steps[1:])):
            fail("lr_points", "must have non-negative timesteps in increasing order")
        if any(rate < 0 for _, rate in points):
            fail("lr_points", "must have learning rates >= 0")

    def learning_rate_at(self, timesteps: int) -> float:
        """Learning rate after ``timesteps`` env steps (summed over ranks)."""
        if self.lr_schedule == "constant":
            return float(self.learning_rate)
        if self.lr_schedule == "piecewise":
            steps, rates = zip(*self.lr_points)
            return float(np.interp(timesteps, steps, rates))
        return float(self.learning_rate) * max(0.0, 1.0 - timesteps / self.total_timesteps)

    def to_dict(self) -> dict:
        """Plain dict (lists instead of tuples) for JSON/TOML dumps and checkpoints."""
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        if self.lr_points is not None:
            data["lr_points"] = [[int(steps) if float(steps).is_integer() else steps, rate]
                                 for steps, rate in self.lr_points]
        return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
