"""Mirror-symmetric data augmentation: a generic left-right symmetry of an env.

If swapping the two sides of a body maps every state to an equally good state
(a symmetric model), then a transition (s, a) seen in the env is as informative
as its mirror image (mirror(s), mirror(a)): the mirrored state has the same
value, the mirrored action the same advantage. Training on both doubles the
data and pushes the policy toward a symmetric gait, one of the levers of the
top teams of the NIPS 2017 Learning to Run challenge (Kidzinski et al. 2018,
arXiv 1804.00361, sections on "symmetry" / data augmentation).

This module knows nothing of any particular env: a :class:`Symmetry` is two
signed permutations,

    mirror_observations(x) = x[..., obs_perm] * obs_sign
    mirror_actions(a)      = a[..., act_perm] * act_sign

checked to be involutions (mirroring twice is the identity), and
:func:`mirror_batch` turns one rank's batch into the doubled training batch.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from baselines_ppo.buffer import Batch
from baselines_ppo.numpy_policy import NumpyActorCritic


@dataclasses.dataclass(frozen=True, eq=False)
class Symmetry:
    """A left-right mirror of observations (size n) and actions (size m).

    obs_perm (n,) / act_perm (m,): index arrays, ``mirrored[i] = original[perm[i]]``;
    obs_sign (n,) / act_sign (m,): +1 or -1 per entry after permuting (None: all +1),
    for quantities whose sign flips under the mirror (e.g. a lateral coordinate).
    Both maps must be involutions: perm[perm] == identity and sign * sign[perm] == 1.
    """

    obs_perm: np.ndarray
    act_perm: np.ndarray
    obs_sign: Optional[np.ndarray] = None
    act_sign: Optional[np.ndarray] = None

    def __post_init__(self):
        for kind in ("obs", "act"):
            perm, sign = _check_signed_permutation(kind, getattr(self, f"{kind}_perm"), getattr(self, f"{kind}_sign"))
            object.__setattr__(self, f"{kind}_perm", perm)
            object.__setattr__(self, f"{kind}_sign", sign)

    @property
    def observation_size(self) -> int:
        return len(self.obs_perm)

    @property
    def action_size(self) -> int:
        return len(self.act_perm)

    def check_sizes(self, observation_size: int, action_size: int) -> None:
        """ValueError unless this symmetry fits an env with these flat sizes."""
        if (self.observation_size, self.action_size) != (observation_size, action_size):
            raise ValueError(
                f"the symmetry mirrors observations of size {self.observation_size} and actions of size "
                f"{self.action_size}, but the env has observations of size {observation_size} and actions "
                f"of size {action_size}")

    def mirror_observations(self, obs: np.ndarray) -> np.ndarray:
        """(..., n) -> (..., n), same dtype."""
        obs = np.asarray(obs)
        return obs[..., self.obs_perm] * self.obs_sign.astype(obs.dtype)

    def mirror_actions(self, actions: np.ndarray) -> np.ndarray:
        """(..., m) -> (..., m), same dtype."""
        actions = np.asarray(actions)
        return actions[..., self.act_perm] * self.act_sign.astype(actions.dtype)


def _check_signed_permutation(kind: str, perm, sign):
    what = {"obs": "observation", "act": "action"}[kind]
    perm = np.asarray(perm)
    if perm.ndim != 1 or perm.size == 0 or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f"symmetry {kind}_perm must be a non-empty 1-d array of integers, got {perm!r}")
    n = perm.size
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"symmetry {kind}_perm is not a permutation of 0..{n - 1}: {perm.tolist()}")
    if not np.array_equal(perm[perm], np.arange(n)):
        bad = np.flatnonzero(perm[perm] != np.arange(n))
        raise ValueError(f"symmetry {kind}_perm is not an involution (mirroring twice must give the {what} back): "
                         f"{what} entries {bad.tolist()} map to {perm[bad].tolist()}, which do not map back")
    if sign is None:
        sign = np.ones(n)
    sign = np.array(sign, dtype=np.float64)  # a copy: made read-only below
    if sign.shape != (n,):
        raise ValueError(f"symmetry {kind}_sign has shape {sign.shape}, {kind}_perm has {n} entries")
    if not np.all(np.abs(sign) == 1):
        raise ValueError(f"symmetry {kind}_sign must hold only +1 and -1, got {sign.tolist()}")
    if not np.all(sign * sign[perm] == 1):
        bad = np.flatnonzero(sign * sign[perm] != 1)
        raise ValueError(f"symmetry {kind}_sign is not an involution with {kind}_perm (need sign * sign[perm] "
                         f"== 1): entries {bad.tolist()}")
    perm = perm.astype(np.intp)
    perm.setflags(write=False)
    sign.setflags(write=False)
    return perm, sign


def mirror_batch(batch: Batch, mirrored_observations: np.ndarray, symmetry: Symmetry,
                 acting: NumpyActorCritic) -> Batch:
    """The training batch of length 2T: ``batch`` followed by its mirror image.

    batch: T real samples (observations already normalised);
    mirrored_observations (T, n): the mirrored raw observations normalised with the
        SAME statistics as batch.observations (mirroring after normalising would be
        wrong unless the statistics are themselves symmetric);
    acting: the policy that collected the batch.

    The mirrored samples keep the advantages and returns of their originals (the
    mirrored state is equally good; advantages normalised over the real batch are
    therefore also normalised over the doubled one: duplicating values changes
    neither their mean nor their standard deviation). Their old log-probabilities
    are those of the mirrored actions under ``acting``, so the PPO ratio of these
    off-policy samples is pi_new / pi_acting, as for the real ones. Their values,
    V_acting(mirrored state), only enter diagnostics.
    """
    mirrored_actions = symmetry.mirror_actions(batch.actions)
    obs64 = np.asarray(mirrored_observations, dtype=np.float64)
    log_probs = acting.log_prob(obs64, mirrored_actions)
    return Batch(
        observations=np.concatenate([batch.observations, obs64.astype(batch.observations.dtype)]),
        actions=np.concatenate([batch.actions, mirrored_actions]),
        log_probs=np.concatenate([batch.log_probs, log_probs.astype(batch.log_probs.dtype)]),
        values=np.concatenate([batch.values, acting.value(obs64).astype(batch.values.dtype)]),
        advantages=np.concatenate([batch.advantages, batch.advantages]),
        returns=np.concatenate([batch.returns, batch.returns]),
    )


def mirror_log_prob_gap(batch: Batch) -> float:
    """How far from symmetric the acting policy is, in nats: the mean log-probability
    of the real actions minus that of their mirror images (each under the acting
    policy), over a batch from :func:`mirror_batch` (real half, then mirrored half).

    About 0 when the policy acts alike on both sides. A gait that leads with one
    leg makes its mirrored actions unlikely: the mirrored half is then far off
    policy, and PPO's ratio on it leaves the clip range within a few gradient
    steps (the runner's line at 14.3M steps: about 10 nats, and an approx KL of
    3e9 in its first mirrored update; docs/training.md, "Levers").
    """
    half = len(batch.log_probs) // 2
    return float(np.mean(batch.log_probs[:half], dtype=np.float64)
                 - np.mean(batch.log_probs[half:], dtype=np.float64))
