"""One compute thread per process: the only place that sets thread limits.

With N ranks on N cores every extra OpenMP, BLAS or TensorFlow thread only
competes with the simulators. No numpy, MPI or TensorFlow import here, so
``l2run`` can call :func:`limit_threads` before any of them starts, and the
launcher can put the same limits into mpirun's environment.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import MutableMapping, Optional

#: The variables that size the thread pools of OpenMP, MKL, OpenBLAS and TensorFlow.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def limit_threads(environ: Optional[MutableMapping[str, str]] = None) -> MutableMapping[str, str]:
    """Set every :data:`THREAD_VARIABLES` to 1 in ``environ`` unless already set
    (a value the user chose is kept); returns ``environ``.

    Libraries read the variables when their pools start -- TensorFlow at its
    first op. ``environ`` given (e.g. mpirun's): the variables only. None: this
    process's environment, and TensorFlow's pools if it is already imported.
    """
    target = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        target.setdefault(name, "1")
    if environ is None and "tensorflow" in sys.modules:
        _size_tensorflow_pools(int(target["TF_NUM_INTRAOP_THREADS"]), int(target["TF_NUM_INTEROP_THREADS"]))
    return target


def _size_tensorflow_pools(intra: int, inter: int) -> None:
    threading = sys.modules["tensorflow"].config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (intra, inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TF already ran ops in this process (a notebook, a test session)
        warnings.warn("TensorFlow was already running: its thread pools keep their size "
                      "(call limit_threads() before any TensorFlow op)", RuntimeWarning, stacklevel=3)
