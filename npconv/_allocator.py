"""Opt-in: keep freed memory in the process during training, by tuning glibc's ``malloc``.

A training step allocates and frees the same large activations and gradients every step.  With
glibc's defaults, blocks above the (dynamic) ``mmap`` threshold are mapped and unmapped on every
call, and free memory above the trim threshold at the heap's top is handed back to the kernel, so
a step may page-fault its whole working set again (PyTorch's CPU tuning guide recommends jemalloc
or tcmalloc for the same reason).  :func:`tune_malloc` raises the ``mmap`` threshold to its 64-bit
maximum (32 MiB) and the trim threshold to 256 MiB, so that the process keeps up to that much freed
memory for reuse.  It changes the whole process's allocator for the rest of its life, so npconv
never calls it by itself: call it once at the start of a training script, if you want it.

It does nothing where ``mallopt`` is missing (not glibc), after its first call, or when the
environment sets any ``MALLOC_*`` variable (the user's own tuning).
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's ceiling for the mmap threshold on 64-bit
TRIM_THRESHOLD_BYTES = 256 * 2**20
TOP_PAD_BYTES = 64 * 2**20

_done = False


def tune_malloc() -> bool:
    """Tune glibc's ``malloc`` to keep freed memory for reuse, for the rest of the process.

    Opt-in (npconv never calls it by itself): raises the ``mmap`` threshold to 32 MiB, the trim
    threshold to 256 MiB and the top pad to 64 MiB, so that a training loop's steps reuse the memory
    the previous step freed instead of page-faulting it in again.

    Returns
    -------
    bool
        True if it tuned the allocator now; False where ``mallopt`` is missing (not glibc), after
        its first call, or when the environment sets any ``MALLOC_*`` variable (the user's own tuning).

    Examples
    --------
    >>> import npconv as nc
    >>> nc.tune_malloc() in (True, False)  # doctest: +SKIP
    True
    """
    global _done
    if _done:
        return False
    _done = True
    if any(key.startswith("MALLOC_") for key in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc (or no C library handle on this platform)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_TOP_PAD, TOP_PAD_BYTES))
    return all([mallopt(parameter, value) for parameter, value in settings])
