"""Thread counts for npconv's own parallel code.

BLAS products follow NumPy's BLAS settings (threadpoolctl ``threadpool_limits`` or
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``); the benchmark runner gives BLAS, Numba and PyTorch
the same count.  Numba kernels split work into independent pieces, so their results do not depend
on the thread count.  ``fft`` uses at most ``min(2, available_cores())`` threads and plans its
tiles from the core count, so on a one-core machine its results may differ in the last bits.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def blas_threads() -> int:
    """Threads NumPy's BLAS currently uses (threadpoolctl when installed, else the cores we may use).

    >>> blas_threads() >= 1
    True
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return available_cores()
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(1, min(counts)) if counts else available_cores()


PARALLEL_FLOPS = 4e6  # smaller convolutions run on one thread: waking another costs more than it saves


def numba_threads(flops: float) -> int:
    """Threads a parallel Numba kernel runs on for a convolution of ``flops``: Numba's count, or 1."""
    import numba

    return numba.get_num_threads() if flops >= PARALLEL_FLOPS else 1


def run_numba(kernel, flops: float, *args) -> None:
    """``kernel(*args)`` (a parallel Numba kernel) on :func:`numba_threads` threads."""
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(numba_threads(flops))
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(threads)
