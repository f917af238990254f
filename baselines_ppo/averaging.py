"""One policy whose weights are the mean of several policies of one line.

Why: a PPO line late in training is a noisy walk. Its checkpoints, a few hundred
thousand steps apart at a small learning rate, score several metres apart on the
same courses (the round-2 line's, 8.3-11.0 m on 32 courses), and no one of them is
the line's best guess. Averaging the weights of the late policies aims at the
centre of the region the walk explores, which tends to be flatter and so more
robust than any point on it: stochastic weight averaging (Izmailov et al. 2018,
"Averaging Weights Leads to Wider Optima and Better Generalization"), which
Nikishin et al. (2018, "Improving Stability in Deep Reinforcement Learning with
Weight Averaging") found to steady A2C and DDPG policies. It costs no training,
only a held-out evaluation to say whether it helped.

Only policies of one line make sense here (one network shape, one start): two
lines trained apart have hidden units in different orders, and their mean is no
policy at all. Shapes, activation, observation clip and action bounds must match;
anything else is refused, naming the file.

Each policy normalises observations with its own running statistics, so its
first layer reads ``z_i = (obs - m_i) / s_i``. The mean is taken after rewriting
every first layer to read the last policy's ``z = (obs - m) / s`` instead: since
``z_i = (m - m_i) / s_i + (s / s_i) z``, the kernel rows scale by ``s / s_i`` and
the bias gains ``W_i^T (m - m_i) / s_i``. Each rewritten policy computes what it
did (exactly, but for observations beyond the clip of one normaliser and not the
other's), so the mean is one of functions, not of numbers on different scales.
The action log-stds are averaged too (the geometric mean of the stds).

    from baselines_ppo.averaging import average_policies
    averaged = average_policies([load_policy(p) for p in paths])
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from baselines_ppo.export import ExportedPolicy

#: metadata key listing the files a policy was averaged from
AVERAGED_FROM_KEY = "averaged_from"


def _name(policy: ExportedPolicy, index: int) -> str:
    return policy.path or f"policy {index + 1}"


def check_same_line(policies: Sequence[ExportedPolicy]) -> None:
    """Raise ValueError, naming the first file that differs from the first policy,
    unless all have the same network, activation, observation clip and action bounds."""
    if len(policies) < 2:
        raise ValueError(f"averaging needs at least 2 policies, got {len(policies)}")
    first = policies[0]
    shapes = [kernel.shape for kernel, _ in first.actor]
    for index, policy in enumerate(policies[1:], start=1):
        name = _name(policy, index)
        other = [kernel.shape for kernel, _ in policy.actor]
        if other != shapes:
            raise ValueError(f"{name} has layers {other}, expected {shapes} as {_name(first, 0)}: "
                             "only policies of one line can be averaged")
        if policy.activation != first.activation:
            raise ValueError(f"{name} uses activation {policy.activation!r}, expected {first.activation!r}")
        if policy.obs_clip != first.obs_clip:
            raise ValueError(f"{name} clips observations at {policy.obs_clip:g}, expected {first.obs_clip:g}")
        if not (np.array_equal(policy.action_low, first.action_low)
                and np.array_equal(policy.action_high, first.action_high)):
            raise ValueError(f"{name} has other action bounds than {_name(first, 0)}")


def rebase_first_layer(policy: ExportedPolicy, obs_mean: np.ndarray,
                       obs_std: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``policy``'s first (kernel, bias), rewritten to read observations normalised
    by ``obs_mean`` and ``obs_std`` instead of its own statistics (module docstring)."""
    kernel, bias = policy.actor[0]
    scale = obs_std / policy.obs_std                       # (inputs,)
    shift = (obs_mean - policy.obs_mean) / policy.obs_std  # (inputs,)
    return kernel * scale[:, None], bias + shift @ kernel


def rebased_layers(policies: Sequence[ExportedPolicy]) -> List[List[Tuple[np.ndarray, np.ndarray]]]:
    """Every policy's (kernel, bias) layers, first layers reading the last policy's statistics."""
    last = policies[-1]
    return [[rebase_first_layer(policy, last.obs_mean, last.obs_std)] + list(policy.actor[1:])
            for policy in policies]


def flat_weights(layers: Sequence[Tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """All kernels and biases of ``layers`` in one vector."""
    return np.concatenate([np.concatenate([kernel.ravel(), bias.ravel()]) for kernel, bias in layers])


def weight_distances(policies: Sequence[ExportedPolicy], averaged: ExportedPolicy) -> np.ndarray:
    """The Euclidean distance of each policy's weights (rebased) from ``averaged``'s,
    shape (len(policies),): set against the norm of the mean's weights, it says how
    far apart the policies are (a few percent along one line late in training)."""
    mean = flat_weights(averaged.actor)
    return np.array([np.linalg.norm(flat_weights(layers) - mean) for layers in rebased_layers(policies)])


def average_policies(policies: Sequence[ExportedPolicy]) -> ExportedPolicy:
    """The policy whose weights are the mean of ``policies``' (all of one line),
    normalising observations with the last one's statistics, the newest in a line
    listed oldest first. Its metadata is the last policy's, plus the files averaged."""
    check_same_line(policies)
    last = policies[-1]
    layers = rebased_layers(policies)
    actor = [(np.mean([layer[i][0] for layer in layers], axis=0), np.mean([layer[i][1] for layer in layers], axis=0))
             for i in range(len(last.actor))]
    log_std = np.mean([policy.log_std for policy in policies], axis=0)
    metadata = {**last.metadata, AVERAGED_FROM_KEY: [_name(policy, index) for index, policy in enumerate(policies)]}
    return ExportedPolicy(actor, log_std, last.activation, last.obs_mean, last.obs_std, last.obs_clip,
                          last.action_low, last.action_high, metadata)
