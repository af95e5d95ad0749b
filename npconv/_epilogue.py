"""A convolution's epilogue: ``y = activation(y + bias)`` in one pass over the output, in place.

``nc.conv(..., bias=b, activation="relu")`` (and the Keras layers with ``activation="relu"``) would
otherwise make two passes over an output that is often larger than the caches: the first layer of
the seeds' CNN writes 25.7 MB per batch of 256, and adding the bias, then taking the relu, took
2.4 ms each, next to a 2.2 ms convolution.  Here each row of channels gets both while it is in
registers: a Numba kernel (in contiguous shares on the npconv threads), or NumPy on cache-sized
chunks when Numba is absent or the output is not contiguous.

The relu keeps NaN (``max(NaN, 0)`` is NaN, as ``np.maximum``); results do not depend on the thread
count (every element is computed the same way).

>>> import numpy as np
>>> y = np.array([[-2.0, 1.0], [0.5, -0.5]])
>>> apply(y, np.array([1.0, -2.0]), "relu")
>>> y
array([[0. , 0. ],
       [1.5, 0. ]])
"""

from __future__ import annotations

import numpy as np

from ._numba import ENABLED as NUMBA_ENABLED
from ._numba import jit
from ._threads import run_split

USE_NUMBA = NUMBA_ENABLED  # tests switch this off to check the NumPy path
ACTIVATIONS = ("linear", "relu")  # what conv(..., activation=) fuses; None means "linear"
CHUNK_ELEMENTS = 2**15  # NumPy path: 128 KiB of float32 per chunk, so the second pass hits the cache


def check_activation(activation) -> str:
    """The fused activation's name, or a ValueError naming the argument."""
    name = "linear" if activation is None else activation
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation must be None or one of {list(ACTIVATIONS)} (the activations conv fuses into its "
            f"output pass). Received: activation={activation!r}"
        )
    return name


def apply(y: np.ndarray, bias: np.ndarray | None, activation: str) -> None:
    """``y[..., c] = activation(y[..., c] + bias[c])`` in place for a channels-last ``y``."""
    relu = activation == "relu"
    if (bias is None and not relu) or not y.size:
        return
    if USE_NUMBA and y.flags.c_contiguous and y.dtype in (np.float32, np.float64):
        rows = y.reshape(-1, y.shape[-1])
        bias = np.zeros(y.shape[-1], y.dtype) if bias is None else bias.astype(y.dtype, copy=False)
        run_split(_bias_activation_kernel, y.size, rows.shape[0], rows, bias, relu, y.dtype.type(0))
        return
    flat = y.reshape(-1, y.shape[-1]) if y.flags.c_contiguous else y[None]
    step = max(1, CHUNK_ELEMENTS * flat.shape[0] // flat.size)
    for start in range(0, flat.shape[0], step):
        chunk = flat[start : start + step]
        if bias is not None:  # relu alone: no pass adding zeros
            np.add(chunk, bias, out=chunk)
        if relu:
            np.maximum(chunk, 0, out=chunk)


@jit(nogil=True, cache=True)
def _bias_activation_kernel(start, stop, rows, bias, relu, zero):
    """Rows ``start:stop`` of ``rows`` ``(positions, C)``: plus ``bias``, then relu if asked."""
    for i in range(start, stop):
        row = rows[i]
        if relu:
            for c in range(row.size):
                v = row[c] + bias[c]
                row[c] = zero if v < zero else v  # NaN stays NaN
        else:
            for c in range(row.size):
                row[c] += bias[c]
