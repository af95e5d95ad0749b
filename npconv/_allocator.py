"""Keep freed memory in the process during training: glibc's ``malloc`` tuned once per process.

A training step allocates and frees the same large activations and gradients every step.  With
glibc's defaults, blocks above the (dynamic) ``mmap`` threshold are mapped and unmapped on every
call, and free memory above the trim threshold at the heap's top is handed back to the kernel, so
each step page-faults its whole working set again: on the 2-core Zen 4 VM of 2026-11-23 the
seeds' CNN trained at 1200-1800 samples/s that way, and at 2200-2700 with the thresholds below
(``benchmarks/bench_training.py``; PyTorch's CPU tuning guide recommends jemalloc or tcmalloc for
the same reason).  :meth:`Model.fit`, ``evaluate`` and ``predict`` call :func:`retain_freed_memory`:
it raises the ``mmap`` threshold to its 64-bit maximum (32 MiB) and the trim threshold to 256 MiB,
so a process keeps up to that much freed memory for reuse.  (Since npconv's thread pool polls
before sleeping, that CNN's steps no longer fault untuned either: 4800-5100 samples/s both ways;
other allocation orders still do, e.g. PyTorch's predictions in the same benchmark ran at 7700-8600
samples/s untuned against 14100-15000.)

It does nothing where ``mallopt`` is missing (not glibc), after its first call, or when the
environment sets ``NPCONV_MALLOC_TUNING=0`` or any ``MALLOC_*`` variable (the user's own tuning).
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


def retain_freed_memory() -> bool:
    """Tune glibc's ``malloc`` thresholds once (see the module docstring); True if it did now.

    >>> retain_freed_memory() in (True, False)
    True
    """
    global _done
    if _done:
        return False
    _done = True
    if os.environ.get("NPCONV_MALLOC_TUNING") == "0" or any(key.startswith("MALLOC_") for key in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc (or no C library handle on this platform)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_TOP_PAD, TOP_PAD_BYTES))
    return all([mallopt(parameter, value) for parameter, value in settings])
