"""Thread counts: npconv's own parallel code (scipy.fft workers, Numba kernels) follows NumPy's BLAS.

Limit BLAS with threadpoolctl (``with threadpool_limits(2): ...``) or ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS``, and every algorithm uses that many threads.  Every parallel kernel
splits work into independent pieces, so results do not depend on the thread count.
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
