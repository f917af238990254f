"""Which part of the model sets the integrator's step: the stiffest mode of its ODE.

An explicit integrator (the training configs' semi-explicit Euler) stays stable
only while its step h keeps h * |lambda| small for every eigenvalue lambda of the
Jacobian of the state derivatives; past that, its error estimate explodes, the
step is rejected and halved. So the eigenvalue of largest magnitude at the
states a policy visits bounds the step, and its eigenvector says which states
(joint speeds, muscle fibre lengths, activations) make it stiff.

The Jacobian is taken by central differences over the model's continuous state
variables (``Model.getStateVariableNames``: coordinates, speeds, activations,
fibre lengths), one derivative evaluation per perturbation: 2 x 54 evaluations,
about 20-40 ms per state. Each mode's share of a state is its participation
factor |right_i * left_i| (normalised to sum 1), which does not depend on the
states' units.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import opensim

#: Central-difference perturbation: 1e-6 x max(1, |x|) for coordinates, speeds
#: and activations; 1e-7 m for fibre lengths, which are a few cm long (1e-6 m
#: would be a relative step of 2e-5).
RELATIVE_STEP = 1e-6
FIBRE_STEP = 1e-7


class StiffestMode(NamedTuple):
    """The eigenvalue of largest magnitude and the states that make it."""

    eigenvalue: complex
    shares: dict
    """Participation factor of each state variable (its path -> share, summing to 1)."""

    @property
    def leader(self) -> str:
        """The path of the state variable with the largest share."""
        return max(self.shares, key=self.shares.get)


def short_name(path: str) -> str:
    """``/jointset/ankle_r/ankle_angle_r/speed`` -> ``ankle_angle_r speed``;
    ``/forceset/vasti_r/fiber_length`` -> ``vasti_r fiber_length``."""
    return " ".join(path.split("/")[-2:])


def state_kind(path: str) -> str:
    """The group a state variable belongs to, for summaries."""
    last = path.rsplit("/", 1)[-1]
    return {"speed": "speeds", "value": "coordinates", "fiber_length": "fibre lengths",
            "activation": "activations"}.get(last, last)


def state_jacobian(model: opensim.Model, state: opensim.State, names: Sequence[str]) -> np.ndarray:
    """d(derivative of names[i]) / d(names[j]) at ``state``, by central differences
    on a copy (``state`` is left as it was)."""
    work = opensim.State(state)
    x0 = model.getStateVariableValues(work).to_numpy().copy()

    def derivative(x: np.ndarray) -> np.ndarray:
        model.setStateVariableValues(work, opensim.Vector.createFromMat(x))
        model.realizeAcceleration(work)
        return np.array([model.getStateVariableDerivativeValue(work, name) for name in names])

    jacobian = np.empty((len(x0), len(x0)))
    for j, name in enumerate(names):
        step = FIBRE_STEP if name.endswith("fiber_length") else RELATIVE_STEP * max(1.0, abs(x0[j]))
        up, down = x0.copy(), x0.copy()
        up[j] += step
        down[j] -= step
        jacobian[:, j] = (derivative(up) - derivative(down)) / (2 * step)
    return jacobian


def stiffest_mode(jacobian: np.ndarray, names: Sequence[str]) -> StiffestMode:
    """The Jacobian's eigenvalue of largest magnitude and its participation factors."""
    values, right = np.linalg.eig(jacobian)
    left = np.linalg.inv(right)
    k = int(np.argmax(np.abs(values)))
    participation = np.abs(right[:, k] * left[k, :])
    participation /= participation.sum()
    return StiffestMode(complex(values[k]), {name: float(p) for name, p in zip(names, participation)})
