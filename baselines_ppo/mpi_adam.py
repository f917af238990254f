"""Adam over one flat parameter vector, with gradients averaged across ranks.

As baselines' ``MpiAdam``: each rank computes the gradient of its own
minibatch, ONE Allreduce averages the flat vectors, and every rank applies the
identical Adam step to identical parameters, so the ranks never diverge (which
``tf_util.check_synced`` verifies now and then). Pure numpy: no TensorFlow.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from baselines_ppo import mpi


class MpiAdam:
    """Adam (Kingma & Ba 2015) for a flat vector of ``size`` parameters."""

    def __init__(self, size: int, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-5, comm=None):
        self.size = int(size)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.m = np.zeros(self.size, dtype=np.float64)
        self.v = np.zeros(self.size, dtype=np.float64)
        self.t = 0
        self.comm = comm

    def step(self, params: np.ndarray, local_grad: np.ndarray, lr: float,
             max_grad_norm: Optional[float] = None) -> Tuple[np.ndarray, float]:
        """One update (collective: every rank must call it).

        params: (size,) float32, identical on every rank; local_grad: (size,) this
        rank's gradient. Returns (new float32 params, norm of the averaged gradient
        before clipping).
        """
        if local_grad.shape != (self.size,):
            raise ValueError(f"gradient has shape {local_grad.shape}, expected ({self.size},)")
        grad = mpi.allreduce_mean(local_grad, comm=self.comm)
        norm = float(np.sqrt(np.dot(grad, grad)))
        if max_grad_norm is not None and norm > max_grad_norm:
            grad = grad * (max_grad_norm / (norm + 1e-12))
        self.t += 1
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * np.square(grad)
        step_size = lr * np.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
        new = params.astype(np.float64) - step_size * self.m / (np.sqrt(self.v) + self.epsilon)
        return new.astype(np.float32), norm

    def reset(self) -> None:
        """Zero moments and step count, as a new optimiser (the next step is bias-corrected afresh)."""
        self.m = np.zeros(self.size, dtype=np.float64)
        self.v = np.zeros(self.size, dtype=np.float64)
        self.t = 0

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t, dtype=np.int64)}

    def load_state_dict(self, state: Dict[str, np.ndarray], source: str = "optimizer state") -> None:
        m = np.asarray(state["m"], dtype=np.float64)
        if m.shape != (self.size,):
            raise ValueError(f"{source} holds {m.size} Adam moments, the network has {self.size} parameters")
        self.m = m.copy()
        self.v = np.asarray(state["v"], dtype=np.float64).copy()
        self.t = int(state["t"])
