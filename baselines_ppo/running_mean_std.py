"""Running mean/variance of observations (or of returns, for reward scaling), in numpy.

The trainer feeds it moments already pooled over all ranks
(:func:`baselines_ppo.mpi.moments`), so every rank holds the same statistics;
they are saved in each checkpoint and in the exported policy, because a policy
evaluated on observations normalised with other statistics is a different policy.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

#: Added to the variance before the square root so constant features do not divide by 0.
VAR_EPSILON = 1e-8


class RunningMeanStd:
    """Mean and variance of every sample seen so far, of shape ``shape``.

    ``count`` starts at a tiny epsilon (not 0) so the first update simply adopts
    the batch moments without a special case.
    """

    def __init__(self, shape=(), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + VAR_EPSILON)

    def update(self, batch: np.ndarray) -> None:
        """Add a batch of shape (n, *shape) seen by this process only."""
        batch = np.asarray(batch, dtype=np.float64)
        self.update_from_moments(batch.mean(axis=0), batch.var(axis=0), batch.shape[0])

    def update_from_moments(self, batch_mean, batch_var, batch_count) -> None:
        """Merge the moments of a batch (Chan et al.'s parallel variance formula).

        ``batch_var`` is the population variance (ddof=0) of the batch.
        """
        if batch_count <= 0:
            return
        batch_mean = np.asarray(batch_mean, dtype=np.float64)
        batch_var = np.asarray(batch_var, dtype=np.float64)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + np.square(delta) * self.count * batch_count / total
        self.mean, self.var, self.count = new_mean, m2 / total, float(total)

    def normalize(self, x: np.ndarray, clip: float) -> np.ndarray:
        """(x - mean) / std clipped to [-clip, clip]; x of shape (..., *shape)."""
        return np.clip((np.asarray(x, dtype=np.float64) - self.mean) / self.std, -clip, clip)

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array(self.count)}

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        if mean.shape != self.mean.shape:
            raise ValueError(f"statistics of shape {mean.shape} do not fit values of shape {self.mean.shape}")
        self.mean = mean.copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(state["count"])
