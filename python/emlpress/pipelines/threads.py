"""Thread caps of the native libraries a battery task uses (emlpress' C++ kernels and HiGHS
instances, BLAS through threadpoolctl, TensorFlow's pools, numba), shared by the runner
(:mod:`emlpress.pipelines.runner`) and the HPC job scripts (:mod:`emlpress.pipelines.jobqueue`)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from threadpoolctl import threadpool_info, threadpool_limits

from emlpress import _core

__all__ = ["THREAD_VARIABLES", "native_threads_default", "cap_native_threads", "capped"]

#: The thread-count variables of the native libraries a task may start (read when each starts).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "NUMBA_NUM_THREADS")


def native_threads_default(workers: int, threads_per_worker: int) -> int:
    """Cores per running task on this machine (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, workers * threads_per_worker))


def cap_native_threads(n: int) -> None:
    """Cap the threads of every native library a task uses at ``n`` (in this process)."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    _core.set_num_threads(n)
    threadpool_limits(n)


@contextmanager
def capped(n: int | None):
    """The caps of :func:`cap_native_threads` for the ``with`` block only (a task run in the
    caller's own process, which keeps its settings afterwards); ``None``: no cap. TensorFlow's
    pools are not touched: once started they are fixed for the process."""
    if n is None:
        yield
        return
    saved = {var: os.environ.get(var) for var in THREAD_VARIABLES}
    before = _core.num_threads()
    try:
        with threadpool_limits(n):
            for var in THREAD_VARIABLES:
                os.environ[var] = str(n)
            _core.set_num_threads(n)
            yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        _core.set_num_threads(before)


def _blas_threads() -> int | None:
    return max((p["num_threads"] for p in threadpool_info()), default=None)


def _tf_threads(n: int) -> None:
    if "tensorflow" not in sys.modules:
        return
    import tensorflow as tf  # only when a task already imported it: TensorFlow is optional

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already initialised in this worker: pools are fixed
        pass
