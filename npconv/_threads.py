"""Thread counts for npconv's own parallel code.

BLAS products follow NumPy's BLAS settings (threadpoolctl ``threadpool_limits`` or
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``); the benchmark runner gives BLAS, Numba and PyTorch
the same count.  Numba kernels split work into independent pieces, so their results do not depend
on the thread count.  ``fft`` uses at most ``min(2, available_cores())`` threads and plans its
tiles from the core count, so on a one-core machine its results may differ in the last bits.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait


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
    """Threads npconv's Numba kernels share a convolution of ``flops`` among: Numba's count
    (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``), or 1 for small ones."""
    import numba

    return numba.get_num_threads() if flops >= PARALLEL_FLOPS else 1


_pool: ThreadPoolExecutor | None = None


def run_split(kernel, flops: float, pieces: int, *args) -> None:
    """``kernel(start, stop, *args)`` over ``[0, pieces)`` in :func:`numba_threads` contiguous shares.

    ``kernel`` is a serial Numba function compiled with ``nogil=True``; the shares beyond the first
    run on Python threads of a shared pool, the first on the calling thread.  Idle pool threads
    sleep on a lock, unlike OpenMP's or OpenBLAS's workers, which spin for a while after each
    parallel region: two spinning pools on two cores slowed every BLAS call between these kernels
    (a training step of the seeds' CNN ran at 2/3 of its speed with a ``prange`` kernel in it).
    The converse remains: right after a multi-threaded BLAS call, OpenBLAS's spinning worker
    competes with the second share, so kernels that run between BLAS products stay serial.
    """
    global _pool
    threads = max(1, min(numba_threads(flops), pieces))
    bounds = [pieces * share // threads for share in range(threads + 1)]
    if threads > 1 and _pool is None:
        _pool = ThreadPoolExecutor(available_cores(), thread_name_prefix="npconv")
    others = [_pool.submit(kernel, bounds[i], bounds[i + 1], *args) for i in range(1, threads)]
    try:
        kernel(bounds[0], bounds[1], *args)
    finally:
        wait(others)  # no share outlives the call, even when the caller's own share fails
    for share in others:
        share.result()
