"""The actor and value MLPs evaluated in numpy (no TensorFlow, no MPI).

Rollouts call the policy once per env step on a single observation; a numpy
forward pass of a 64x64 MLP costs microseconds where a TensorFlow call costs a
few hundred. The exported policy (:mod:`baselines_ppo.export`) runs the same
network through :func:`portable_mlp_forward`, whose sums do not depend on the
CPU, so a score belongs to the policy and the seed, not to the machine.
Weights are a list of (kernel of shape (in, out), bias of shape (out,)) pairs.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np

Layers = List[Tuple[np.ndarray, np.ndarray]]

_LOG_2PI = math.log(2.0 * math.pi)


def activate(name: str, x: np.ndarray) -> np.ndarray:
    """The hidden-layer non-linearity ``name`` (see PPOConfig.activation)."""
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    raise ValueError(f"unknown activation {name!r}; expected tanh, relu or elu")


def mlp_forward(layers: Sequence[Tuple[np.ndarray, np.ndarray]], activation: str, x: np.ndarray) -> np.ndarray:
    """x of shape (batch, in) -> (batch, out); linear output layer."""
    h = np.asarray(x, dtype=np.float64)
    for i, (kernel, bias) in enumerate(layers):
        h = h @ kernel + bias
        if i < len(layers) - 1:
            h = activate(activation, h)
    return h


def portable_mlp_forward(layers: Sequence[Tuple[np.ndarray, np.ndarray]], activation: str,
                         x: np.ndarray) -> np.ndarray:
    """:func:`mlp_forward` with the same bits on every CPU, for scoring.

    Why: ``h @ kernel`` goes to OpenBLAS, which picks its kernel (and so the
    order of the sums) by CPU, and numpy's tanh/exp have CPU-dispatched SIMD
    versions. A runner's episode is chaotic: measured on the shipped runner,
    seed 0 at the grader's settings fell after 258, 233 or 267 steps depending
    only on the OpenBLAS kernel (Haswell, SkylakeX, Sandybridge). Here each
    output is bias + x_0 k_0 + x_1 k_1 + ... summed in input order with one IEEE
    rounding per operation, and tanh is libm's, so a score belongs to the
    policy and the seed, not to the machine. ~10x slower than BLAS, still well
    under the simulator's time per step.
    """
    h = np.array(x, dtype=np.float64, ndmin=2)
    for i, (kernel, bias) in enumerate(layers):
        kernel = np.asarray(kernel, dtype=np.float64)
        out = np.repeat(np.asarray(bias, dtype=np.float64)[None, :], h.shape[0], axis=0)
        for j in range(kernel.shape[0]):
            out = out + h[:, j:j + 1] * kernel[j]
        if i < len(layers) - 1:
            out = _portable_activate(activation, out)
        h = out
    return h


def _portable_activate(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.vectorize(math.tanh, otypes=[np.float64])(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "elu":
        return np.where(x > 0, x, np.vectorize(math.expm1, otypes=[np.float64])(np.minimum(x, 0.0)))
    raise ValueError(f"unknown activation {name!r}; expected tanh, relu or elu")


def gaussian_log_prob(actions: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """Log density of a diagonal Gaussian; actions, mean (batch, act) -> (batch,)."""
    z = (actions - mean) / np.exp(log_std)
    return -0.5 * np.sum(np.square(z) + 2.0 * log_std + _LOG_2PI, axis=-1)


class NumpyActorCritic:
    """A frozen copy of the learner's weights, used to act during one rollout.

    ``actor``/``critic``: layer lists; ``log_std``: shape (action_size,).
    Observations passed in are already normalised.
    """

    def __init__(self, actor: Layers, critic: Layers, log_std: np.ndarray, activation: str):
        self.actor = [(np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in actor]
        self.critic = [(np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in critic]
        self.log_std = np.asarray(log_std, dtype=np.float64)
        self.activation = activation

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        """(batch, obs) -> (batch, act): the deterministic action (Gaussian mean)."""
        return mlp_forward(self.actor, self.activation, obs)

    def value(self, obs: np.ndarray) -> np.ndarray:
        """(batch, obs) -> (batch,): the critic's estimate of the discounted return."""
        return mlp_forward(self.critic, self.activation, obs)[:, 0]

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(batch,) log-density of ``actions`` (batch, act) at ``obs`` (batch, obs)."""
        return gaussian_log_prob(np.asarray(actions, dtype=np.float64), self.mean_action(obs), self.log_std)

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample actions for obs (batch, obs).

        Returns (actions (batch, act), their log-probabilities (batch,), values (batch,)).
        The actions are NOT clipped: the update needs the log-probability of what
        was sampled; clipping to the env's bounds happens when stepping the env.
        """
        mean = self.mean_action(obs)
        actions = mean + np.exp(self.log_std) * rng.standard_normal(mean.shape)
        return actions, gaussian_log_prob(actions, mean, self.log_std), self.value(obs)
