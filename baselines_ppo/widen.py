"""Grow a trained network into a wider one that computes exactly what it did.

Why: a line trained for millions of steps with small hidden layers (the 2017
PPO team's 64 x 64) cannot be retrained from scratch with larger ones on a few
cores, yet the first place in 2017 used 256 x 256, and the sixth moved a skill
from a small network to a large one. ``init_from`` with a config whose hidden
layers are wider (same depth, none narrower) starts the new run from the
parent's function, not from a random policy.

The rule, per dense layer (kernel of shape (inputs, outputs); the parent's
``p_in`` x ``p_out`` sits in the top-left corner):

* the parent's units keep their weights and biases;
* new inputs (the previous layer's new units) reach the parent's units with
  weight 0, so those units compute what they did;
* new units read every input with the weights the new network was initialised
  with (its own seed), so they are not copies of one another;
* the output layer has no new units; its rows for the new inputs are 0.

Every output -- the action mean and the value -- is therefore the parent's
whatever the new units compute: up to the rounding of the longer sums under
BLAS, bit for bit under the portable forward that scores a policy (each new
input adds ``w * 0`` after the parent's terms). Unlike Net2WiderNet (Chen,
Goodfellow and Shlens 2016), which splits existing units, no unit is a copy,
so gradients tell the new units apart from the first step: the zero weights
leaving them get gradient (their activation times the error) at once, and
their incoming weights follow as those grow.
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np


def widens(parent: Sequence[int], child: Sequence[int]) -> bool:
    """Whether hidden layers ``child`` grow ``parent``: as deep, none narrower, one wider."""
    return (len(parent) == len(child) and all(c >= p for p, c in zip(parent, child))
            and tuple(parent) != tuple(child))


def widen(parent: Mapping[str, np.ndarray], fresh: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """``fresh``'s variables (a newly initialised wider network's ``get_weights()``)
    with ``parent``'s embedded by the module's rule: same names, ``fresh``'s shapes.

    A variable of the parent larger than the new one along any axis, or of another
    rank, is a ValueError naming it and both shapes.
    """
    grown: Dict[str, np.ndarray] = {}
    for name, new in fresh.items():
        old = np.asarray(parent[name])
        new = np.asarray(new)
        if old.ndim != new.ndim or any(o > n for o, n in zip(old.shape, new.shape)):
            raise ValueError(f"variable {name!r} of shape {old.shape} does not fit in {new.shape}: "
                             "the new network must be as deep and no narrower")
        out = new.astype(old.dtype, copy=True)
        if old.ndim == 2:  # a kernel: the new inputs do not reach the parent's units
            out[old.shape[0]:, :old.shape[1]] = 0
        out[tuple(slice(0, size) for size in old.shape)] = old
        grown[name] = out
    return grown
