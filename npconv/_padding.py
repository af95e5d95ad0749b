"""Border padding in every mode, and its adjoint (so gradients flow back through the border).

Arrays here are channels-last: ``(N, *spatial, C)``.  Padding a mode other than zeros/constant
copies interior pixels into the border; the adjoint adds the border's gradient back onto the pixels
it was copied from.  Both are driven by one index map per dim: padded position -> source position.
"""

from __future__ import annotations

import numpy as np


def source_index(i: int, n: int, mode: str) -> int:
    """Interior index (``0 <= result < n``) that padded position ``i`` (relative to the interior
    start, so ``i < 0`` is the before-border and ``i >= n`` the after-border) copies in ``mode``.

    >>> [source_index(i, 4, "reflect") for i in (-2, -1, 4, 5)]
    [2, 1, 2, 1]
    >>> [source_index(i, 4, "symmetric") for i in (-2, -1, 4, 5)]
    [1, 0, 3, 2]
    >>> [source_index(i, 4, "circular") for i in (-2, -1, 4, 5)]
    [2, 3, 0, 1]
    >>> [source_index(i, 4, "replicate") for i in (-2, -1, 4, 5)]
    [0, 0, 3, 3]
    """
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    period = 2 * n - 2 if mode == "reflect" else 2 * n  # mirror without / with the edge pixel
    if period == 0:  # reflect of a single pixel
        return 0
    i %= period
    if mode == "reflect":
        return i if i < n else period - i
    return i if i < n else period - 1 - i


def _border_sources(n: int, lo: int, hi: int, mode: str):
    """Pairs (padded position, padded position of its source) for the border of one dim."""
    positions = list(range(lo)) + list(range(lo + n, lo + n + hi))
    return [(p, lo + source_index(p - lo, n, mode)) for p in positions]


def _axis_slice(axis: int, index, ndim: int) -> tuple:
    key = [slice(None)] * ndim
    key[axis] = index
    return tuple(key)


def pad(x: np.ndarray, padding, mode: str, value: float, dtype) -> np.ndarray:
    """Pad the spatial dims of channels-last ``x`` into a new contiguous array of ``dtype`` (``x``
    itself when there is nothing to pad and it already is one).

    ``padding`` has one ``(before, after)`` pair per spatial dim.  Works for views in any memory
    order (the layout change and the cast happen in the same copy).

    >>> pad(np.arange(3.0).reshape(1, 3, 1), [(2, 1)], "reflect", 0.0, np.float64)[0, :, 0]
    array([2., 1., 0., 1., 2., 1.])
    """
    if not any(lo or hi for lo, hi in padding) and x.dtype == dtype and x.flags.c_contiguous:
        return x  # nothing to pad: algorithms only read it
    spatial = x.shape[1:-1]
    shape = (x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(spatial, padding)), x.shape[-1])
    out = np.empty(shape, dtype)
    interior = (slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(spatial, padding)), slice(None))
    out[interior] = x
    if mode in ("zeros", "constant"):  # fill only the border slabs (corners twice)
        fill = value if mode == "constant" else 0
        for dim, (n, (lo, hi)) in enumerate(zip(spatial, padding)):
            out[_axis_slice(dim + 1, slice(0, lo), out.ndim)] = fill
            out[_axis_slice(dim + 1, slice(lo + n, None), out.ndim)] = fill
        return out
    # Fill borders dim by dim; later dims copy from already padded earlier dims, so corners match
    # np.pad's result.
    for dim, (n, (lo, hi)) in enumerate(zip(spatial, padding)):
        axis = dim + 1
        for position, source in _border_sources(n, lo, hi, mode):
            out[_axis_slice(axis, position, out.ndim)] = out[_axis_slice(axis, source, out.ndim)]
    return out


def pad_adjoint(g: np.ndarray, padding, mode: str) -> np.ndarray:
    """Adjoint of :func:`pad`: gradient w.r.t. the unpadded input from the padded one's gradient.

    For zeros/constant this is a crop; otherwise each border pixel's gradient is added onto the
    pixel it copied.  Dims are undone in the reverse order of :func:`pad`.
    """
    if mode not in ("zeros", "constant"):
        g = g.copy()
        rank = g.ndim - 2
        for dim in reversed(range(rank)):
            axis = dim + 1
            n = g.shape[axis] - padding[dim][0] - padding[dim][1]
            for position, source in _border_sources(n, *padding[dim], mode):
                g[_axis_slice(axis, source, g.ndim)] += g[_axis_slice(axis, position, g.ndim)]
    interior = (slice(None), *(slice(lo, g.shape[i + 1] - hi) for i, (lo, hi) in enumerate(padding)), slice(None))
    return g[interior]
