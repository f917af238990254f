"""Step counters of the SimTK integrator inside an OpenSim ``Manager``.

OpenSim 4.6's Python bindings return ``Manager.getIntegrator()`` as an opaque
``SimTK::Integrator *`` (Simbody's integrator classes are not wrapped), yet the
counters that explain the simulator's speed live there: internal steps taken,
steps attempted (taken + rejected by the error test), error-test failures. They
are plain non-virtual const member functions of ``SimTK::Integrator`` exported
by ``libSimTKmath``, so ctypes can call them with the pointer as ``this``
(Itanium C++ ABI, as on every platform the opensim wheel ships for).

If the library or a symbol cannot be found (another build of OpenSim), the
reader says so once through :data:`AVAILABLE` / :data:`UNAVAILABLE_REASON`, and
:func:`read_counts` returns ``None``: the counters are a diagnostic, never
needed to simulate.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path
from typing import NamedTuple, Optional

import opensim

#: Mangled names of ``int SimTK::Integrator::getNum...() const``.
_SYMBOLS = {
    "taken": "_ZNK5SimTK10Integrator16getNumStepsTakenEv",
    "attempted": "_ZNK5SimTK10Integrator20getNumStepsAttemptedEv",
    "error_test_failures": "_ZNK5SimTK10Integrator23getNumErrorTestFailuresEv",
    "realizations": "_ZNK5SimTK10Integrator18getNumRealizationsEv",
}


class IntegratorCounts(NamedTuple):
    """Cumulative counts of one or more integrators (add them with ``+``)."""

    taken: int = 0
    """Internal steps accepted."""
    attempted: int = 0
    """Internal steps tried: accepted plus rejected (error test or convergence failures)."""
    error_test_failures: int = 0
    """Steps rejected because the error estimate exceeded the accuracy."""
    realizations: int = 0
    """Evaluations of the system's state derivatives (the work)."""

    def __add__(self, other):  # element-wise, not tuple concatenation
        return IntegratorCounts(*(a + b for a, b in zip(self, other)))

    def __sub__(self, other):
        return IntegratorCounts(*(a - b for a, b in zip(self, other)))


def _load():
    directory = Path(opensim.__file__).resolve().parent
    candidates = sorted(directory.glob("libSimTKmath.so*")) + sorted(directory.glob("libSimTKmath*.dylib"))
    found = ctypes.util.find_library("SimTKmath")
    if found:
        candidates.append(Path(found))
    if not candidates:
        return None, f"libSimTKmath not found next to {directory}"
    try:
        lib = ctypes.CDLL(str(candidates[0]))
    except OSError as err:
        return None, f"cannot load {candidates[0]}: {err}"
    functions = {}
    for name, symbol in _SYMBOLS.items():
        try:
            function = getattr(lib, symbol)
        except AttributeError:
            return None, f"{candidates[0].name} lacks {symbol}"
        function.restype = ctypes.c_int
        function.argtypes = [ctypes.c_void_p]
        functions[name] = function
    return functions, ""


_FUNCTIONS, UNAVAILABLE_REASON = _load()
AVAILABLE = _FUNCTIONS is not None


def read_counts(manager: opensim.Manager) -> Optional[IntegratorCounts]:
    """The counters of ``manager``'s integrator since it was initialised, or
    None where they cannot be read (see the module docstring)."""
    if not AVAILABLE or manager is None:
        return None
    pointer = int(manager.getIntegrator())  # a SwigPyObject: int() is its address
    if not pointer:
        return None
    return IntegratorCounts(**{name: int(function(pointer)) for name, function in _FUNCTIONS.items()})
