"""The only module of the project that imports mpi4py.

Every collective the trainer needs is a small function here taking an optional
``comm`` (default ``MPI.COMM_WORLD``), so the algorithm never touches ``MPI.``
and a plain ``python`` process without ``mpirun`` is simply a world of size 1
(Open MPI's singleton mode).

All numeric collectives work on numpy arrays in float64: summing float32
gradients from many ranks in float32 loses bits for no saving worth having on
vectors of a few tens of thousands of entries.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any, List, Optional, Tuple

import numpy as np
from mpi4py import MPI

Comm = Any  # an mpi4py ``MPI.Comm``; kept loose so callers need not import mpi4py


def _comm(comm: Optional[Comm]) -> Comm:
    return MPI.COMM_WORLD if comm is None else comm


def rank(comm: Optional[Comm] = None) -> int:
    """This process's index in ``comm`` (0 without mpirun)."""
    return _comm(comm).Get_rank()


def size(comm: Optional[Comm] = None) -> int:
    """Number of processes in ``comm`` (1 without mpirun)."""
    return _comm(comm).Get_size()


def is_root(comm: Optional[Comm] = None) -> bool:
    """True on rank 0, the rank that writes files and prints."""
    return rank(comm) == 0


def allreduce_sum(x, comm: Optional[Comm] = None) -> np.ndarray:
    """Element-wise sum of ``x`` (any shape, same on every rank) over all ranks.

    Returns a float64 array of ``x``'s shape (a 0-d array for a scalar).
    """
    return _allreduce(x, MPI.SUM, comm)


def allreduce_mean(x, comm: Optional[Comm] = None) -> np.ndarray:
    """Element-wise mean of ``x`` over ranks (float64, ``x``'s shape)."""
    return allreduce_sum(x, comm) / size(comm)


def allreduce_max(x, comm: Optional[Comm] = None) -> np.ndarray:
    """Element-wise max of ``x`` over ranks (float64, ``x``'s shape)."""
    return _allreduce(x, MPI.MAX, comm)


def _allreduce(x, op, comm) -> np.ndarray:
    local = np.array(x, dtype=np.float64)  # a copy; keeps 0-d shapes
    result = np.empty_like(local)
    _comm(comm).Allreduce(local.reshape(-1), result.reshape(-1), op=op)
    return result


def any_rank(flag: bool, comm: Optional[Comm] = None) -> bool:
    """True on every rank if ``flag`` is True on at least one.

    Used so that all ranks agree on decisions taken from rank-local events
    (a signal that reached one rank, a KL threshold), keeping collectives aligned.
    """
    return bool(allreduce_max(float(flag), comm) > 0)


def broadcast(x, root: int = 0, comm: Optional[Comm] = None):
    """``x`` from ``root`` on every rank.

    A numpy array is broadcast in place into a copy (shape and dtype must agree
    on every rank); any other picklable object is broadcast by value.
    """
    c = _comm(comm)
    if isinstance(x, np.ndarray):
        buffer = np.ascontiguousarray(x).copy()
        c.Bcast(buffer, root=root)
        return buffer
    return c.bcast(x, root=root)


def gather(obj, root: int = 0, comm: Optional[Comm] = None) -> Optional[List[Any]]:
    """Picklable ``obj`` of every rank as a list (index = rank) on ``root``; None elsewhere."""
    return _comm(comm).gather(obj, root=root)


def allgather(obj, comm: Optional[Comm] = None) -> List[Any]:
    """Picklable ``obj`` of every rank as a list (index = rank) on every rank."""
    return _comm(comm).allgather(obj)


def moments(x, axis: int = 0, comm: Optional[Comm] = None) -> Tuple[np.ndarray, np.ndarray, int]:
    """Mean, standard deviation and count of ``x`` pooled over all ranks.

    ``x``: array of shape (n_local, *feature_shape); ranks may hold different
    n_local (even 0). Returns (mean, std) of shape feature_shape and the total
    count. Two passes (mean first, then squared deviations) so large offsets do
    not cancel catastrophically, as in baselines' ``mpi_moments``.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.moveaxis(x, axis, 0)
    count = int(allreduce_sum(x.shape[0], comm))
    if count == 0:
        raise ValueError("moments() of an empty batch on every rank")
    mean = allreduce_sum(x.sum(axis=0), comm) / count
    var = allreduce_sum(np.square(x - mean).sum(axis=0), comm) / count
    return mean, np.sqrt(var), count


def abort(message: str, code: int = 1, comm: Optional[Comm] = None) -> None:
    """Print ``message`` (tagged with this rank) and kill the whole MPI job.

    A rank that simply exited would leave the others blocked forever in their
    next collective; ``Abort`` makes mpirun terminate every rank instead.
    """
    c = _comm(comm)
    print(f"[rank {c.Get_rank()}/{c.Get_size()}] {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    c.Abort(code)


def abort_on_exception(exc: BaseException, comm: Optional[Comm] = None) -> None:
    """Print ``exc``'s traceback and :func:`abort`; for a top-level ``except``
    when running under mpirun without ``python -m mpi4py``."""
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    abort(f"aborting the MPI job after an error:\n{detail}", comm=comm)
