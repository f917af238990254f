"""Glue between TensorFlow variables and the numpy/MPI side: one flat float32
vector of the variables (the layout of ``ActorCritic.loss_and_gradient``'s
gradient), broadcast once, and checked across ranks now and then."""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import tensorflow as tf

from baselines_ppo import mpi


class FlatParameters:
    """Reads and writes a list of TF variables as one float32 vector."""

    def __init__(self, variables: Sequence):
        self.variables = list(variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.size = int(sum(self.sizes))

        @tf.function(input_signature=[tf.TensorSpec([self.size], tf.float32)])
        def _assign(flat):
            for v, part, shape in zip(self.variables, tf.split(flat, self.sizes), self.shapes):
                v.assign(tf.reshape(part, shape))

        self._assign = _assign

    def get(self) -> np.ndarray:
        """Shape (size,) float32 copy of the variables."""
        return np.concatenate([v.numpy().ravel() for v in self.variables]).astype(np.float32)

    def set(self, flat: np.ndarray) -> None:
        flat = np.asarray(flat, dtype=np.float32)
        if flat.shape != (self.size,):
            raise ValueError(f"flat parameter vector has shape {flat.shape}, expected ({self.size},)")
        self._assign(flat)


def broadcast_parameters(flat_params: FlatParameters, comm=None) -> None:
    """Give every rank rank 0's weights (collective: every rank calls it once, after building the networks)."""
    flat_params.set(mpi.broadcast(flat_params.get(), comm=comm))


def parameter_checksum(flat: np.ndarray) -> str:
    """A short digest of the exact bytes of the parameters."""
    return hashlib.sha1(np.ascontiguousarray(flat, dtype=np.float32).tobytes()).hexdigest()[:16]


def check_synced(flat: np.ndarray, comm=None, context: str = "") -> None:
    """Abort the MPI job if the ranks' parameters differ (collective).

    Ranks only stay identical if every one applies the same averaged update;
    a difference means a bug or a broken reduction, and training on would
    silently average gradients of different policies.
    """
    sums = mpi.allgather(parameter_checksum(flat), comm=comm)
    if len(set(sums)) > 1:
        listing = ", ".join(f"rank {r}: {s}" for r, s in enumerate(sums))
        mpi.abort(f"ranks hold different parameters{(' ' + context) if context else ''} ({listing})", comm=comm)
