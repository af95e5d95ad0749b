"""Numba, imported on first use, and the switch to npconv's pure-NumPy path.

npconv's Numba kernels are its fast path; every one of them has a pure-NumPy counterpart (or its
algorithm steps aside) for platforms without Numba.  ``NPCONV_DISABLE_NUMBA=1`` in the environment
(read at import) forces that path even where Numba is installed.

``import npconv`` does not import Numba (about 0.2 s): kernels are declared with :func:`jit`, which
compiles them, through Numba's on-disk cache, the first time one of them is called.
"""

from __future__ import annotations

import importlib.util
import os
import threading

DISABLE_VARIABLE = "NPCONV_DISABLE_NUMBA"


def _enabled() -> bool:
    if os.environ.get(DISABLE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return importlib.util.find_spec("numba") is not None


ENABLED = _enabled()
"""Whether npconv runs its Numba kernels: Numba is installed and ``NPCONV_DISABLE_NUMBA`` is unset."""


def load_numba():
    """The ``numba`` module (imported now if it was not yet)."""
    import numba

    return numba


_compile_lock = threading.Lock()


def jit(**options):
    """Decorator: ``numba.njit(**options)`` applied on the kernel's first call, not at import.

    The decorated name is a :class:`LazyKernel` until then.  Its first call turns every lazy kernel
    of the same module into its Numba dispatcher, in the module's namespace too, so that kernels
    calling one another compile against real dispatchers and later calls pay no indirection.

    >>> @jit(cache=False)
    ... def twice(value):
    ...     return 2 * value
    >>> twice(21)
    42
    """

    def decorate(function):
        kernel = LazyKernel(function, options)
        _pending.setdefault(function.__module__, []).append(kernel)
        return kernel

    return decorate


_pending: dict[str, list[LazyKernel]] = {}


class LazyKernel:
    """A Numba kernel compiled when first called (see :func:`jit`)."""

    def __init__(self, function, options: dict):
        self.function, self.options, self.dispatcher = function, options, None
        self.__doc__, self.__name__ = function.__doc__, function.__name__

    def __call__(self, *args):
        if self.dispatcher is None:
            _resolve(self.function.__module__)
        return self.dispatcher(*args)


def _resolve(module_name: str) -> None:
    with _compile_lock:
        kernels = _pending.pop(module_name, [])
        compile_kernel = load_numba().njit if ENABLED else lambda **options: (lambda function: function)
        for kernel in kernels:  # without Numba, a kernel runs as plain Python (tests, doctests)
            kernel.dispatcher = compile_kernel(**kernel.options)(kernel.function)
        for kernel in kernels:  # after all exist: a kernel compiles against the others' dispatchers
            kernel.function.__globals__[kernel.__name__] = kernel.dispatcher
