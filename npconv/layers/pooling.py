"""Pooling layers (Keras 3 semantics) and the differentiable pooling functions behind them.

Local pooling visits the window's taps one by one: for tap ``t`` the strided slice
``x[t : t + stride * (out - 1) + 1 : stride]`` (per spatial dim) holds that tap of every window,
so a 2x2 stride-2 pool is four strided views and a few elementwise operations — no window copies.
``padding="same"`` uses TensorFlow's rule; padded positions never win a max and are not counted in
an average (TF's behaviour).  The max-pool gradient goes to the first maximal tap of each window,
as in TensorFlow.

>>> import numpy as np
>>> from npconv import layers
>>> x = np.arange(16.0).reshape(1, 4, 4, 1)
>>> layers.MaxPooling2D()(x)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
>>> layers.AveragePooling2D(pool_size=3, strides=2, padding="same")(x)[0, :, :, 0]  # padding not counted
array([[ 5. ,  6.5],
       [11. , 12.5]], dtype=float32)
"""

from __future__ import annotations

import itertools

import numpy as np

from .._numba import ENABLED as NUMBA_ENABLED
from .._numba import jit
from .._spec import output_size, resolve_padding
from .._threads import run_split
from ..autograd import Tensor, grad_enabled, record
from . import _args
from .base import Layer

USE_NUMBA = NUMBA_ENABLED  # tests switch this off to check the NumPy path
NO_WINNER = 255  # a window holding a NaN: its maximum is NaN and no tap gets a gradient


def _tap_index(offsets, strides, out_spatial, axes, ndim) -> tuple:
    """Index of one tap of every window: a strided slice per spatial axis."""
    index = [slice(None)] * ndim
    for axis, o, s, n in zip(axes, offsets, strides, out_spatial):
        index[axis] = slice(o, o + s * (n - 1) + 1, s)
    return tuple(index)


def pool(x: Tensor, pool_size, strides, padding: str, data_format: str, mode: str) -> Tensor:
    """Max (``mode="max"``) or average (``"average"``) pooling of an N-d ``x`` with Keras' arguments.

    ``x`` is ``(N, *spatial, C)`` (channels_last) or ``(N, C, *spatial)``; ``pool_size`` and
    ``strides`` one int per spatial dim.  Output per dim: ``(n + before + after - k) // s + 1``.
    """
    data = x.data
    axes = _args.spatial_axes(data_format, data.ndim)
    spatial = [data.shape[a] for a in axes]
    ones = (1,) * len(axes)
    pads = resolve_padding(padding, spatial, pool_size, strides, ones)
    out_spatial = [output_size(n, lo, hi, k, s, 1) for n, (lo, hi), k, s in zip(spatial, pads, pool_size, strides)]
    if min(out_spatial) < 1:
        raise ValueError(
            f"The pooling window {tuple(pool_size)} does not fit the input's spatial size {tuple(spatial)}. "
            f"Received: padding={padding!r}"
        )
    pad_width = [(0, 0)] * data.ndim
    for axis, pair in zip(axes, pads):
        pad_width[axis] = pair
    padded = any(lo or hi for lo, hi in pads)
    if padded:
        fill = np.finfo(data.dtype).min if mode == "max" else 0
        data = np.pad(data, pad_width, constant_values=fill)
    taps = [
        _tap_index(offsets, strides, out_spatial, axes, data.ndim)
        for offsets in itertools.product(*map(range, pool_size))
    ]
    # Every input position in at most one window: the gradient can be written instead of accumulated,
    # and when the windows tile the whole (padded) input, nothing needs zeroing first.
    disjoint = all(s >= k for s, k in zip(strides, pool_size))
    tiled = disjoint and all(
        s == k and data.shape[a] == n * s for a, s, k, n in zip(axes, strides, pool_size, out_spatial)
    )

    # maxpool(relu(z)) == relu(maxpool(z)): the gradient can skip the relu node, masked on the pooled
    # tensor (4x smaller for 2x2): d/dz = route(g * (y > 0)), the windows whose maximum is 0 get nothing.
    parent = x.relu_input if mode == "max" and x.relu_input is not None else x
    if mode == "max" and disjoint and not padded and data_format == "channels_last" and _numba_handles(data, len(taps)):
        return _numba_max_pool(x, parent, pool_size, strides, out_spatial, tiled)

    combine = np.maximum if mode == "max" else np.add
    y = combine(data[taps[0]], data[taps[1]]) if len(taps) > 1 else data[taps[0]].copy()
    for tap in taps[2:]:
        combine(y, data[tap], out=y)
    if mode == "average":
        count = _window_counts(spatial, pads, pool_size, strides, out_spatial, axes, data.ndim) if padded else len(taps)
        y /= np.asarray(count, dtype=y.dtype)

    def vjp(g):
        if parent is not x:
            g = g * (y > 0)
        dx = np.empty(data.shape, dtype=g.dtype) if tiled else np.zeros(data.shape, dtype=g.dtype)
        if mode == "max":
            routed = None  # windows whose (first) maximum has been found
            for i, tap in enumerate(taps):
                first = data[tap] == y
                if routed is None:
                    routed = first
                else:
                    np.greater(first, routed, out=first)  # first & ~routed
                    if i < len(taps) - 1:
                        routed |= first
                _put(dx, tap, np.multiply(g, first, out=dx[tap] if disjoint else None), disjoint)
        else:
            share = g / np.asarray(count, dtype=g.dtype)
            for tap in taps:
                _put(dx, tap, share, disjoint)
        if padded:
            dx = dx[tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape))]
        return (dx,)

    return record(y, (parent,), vjp)


def _numba_handles(data: np.ndarray, taps: int) -> bool:
    return USE_NUMBA and data.dtype in (np.float32, np.float64) and taps < NO_WINNER


def _numba_max_pool(x: Tensor, parent: Tensor, pool_size, strides, out_spatial, tiled: bool) -> Tensor:
    """Max pooling of disjoint windows (``strides >= pool_size``, no padding, channels last, float32
    or float64) in one pass that also records each output's winning tap; the gradient is then one
    pass writing ``dx`` (masked by ``y > 0`` there when the input is a relu's output).
    The NumPy path needs a handful of passes per tap over strided views whose contiguous runs are only
    ``C`` numbers long (measured, 2x2 pooling of 64x28x28x32 float32: forward + gradient 1.3 ms
    here, 5 ms in NumPy).  The forward kernel runs in shares on the npconv threads
    (:func:`~npconv._threads.run_split`, whose idle threads sleep) and records the winners only when
    a gradient will be recorded: inference over 256x28x28x32 went 4.3 -> 1.4 ms.  The gradient
    kernel runs in shares too (parallel OpenMP kernels were 2x faster alone, but in a training loop
    Numba's spinning threads and OpenBLAS's took turns slowing each other: 0.70x -> 0.35x
    PyTorch's; the npconv threads sleep, and the layers' products keep OpenBLAS's worker asleep:
    :func:`~npconv._threads.blas_on_one_thread`)."""
    data = x.data
    lead = (1,) * (3 - len(pool_size))  # kernels take 3 spatial dims
    as_3d = lambda shape: (shape[0], *lead, *shape[1:-1], shape[-1])  # noqa: E731
    y = np.empty((data.shape[0], *out_spatial, data.shape[-1]), data.dtype)
    pool_3d, strides_3d = lead + tuple(pool_size), lead + tuple(strides)
    record_winners = grad_enabled() and parent.requires_grad  # inference needs the maxima alone
    winner = np.empty(y.shape if record_winners else (0,) * y.ndim, np.uint8)
    lines = y.size // (y.shape[-2] * y.shape[-1]) if y.size else 0  # output lines (n, od, oh)
    x_3d, y_3d, winner_lines = data.reshape(as_3d(data.shape)), y.reshape(as_3d(y.shape)), winner.reshape(-1, *y.shape[-2:])
    run_split(_max_pool_kernel, data.size, lines, x_3d, pool_3d, strides_3d, y_3d, winner_lines, record_winners)
    if not record_winners:
        return Tensor(y)

    def vjp(g):
        dx = (np.empty if tiled else np.zeros)(data.shape, g.dtype)
        g = np.ascontiguousarray(g)
        shape = as_3d(y.shape)
        arrays = g.reshape(shape), y.reshape(shape), parent is not x, winner.reshape(shape)
        run_split(_max_pool_gradient_kernel, data.size, lines, *arrays, pool_3d, strides_3d, dx.reshape(as_3d(dx.shape)))
        return (dx,)

    return record(y, (parent,), vjp)


@jit(cache=True)
def _line_origin(line, shape, strides):
    """Batch index and first input row ``(n, d0, h0)`` of output line ``line`` over ``shape``'s
    ``(N, OD, OH)``: the kernels loop over lines, then windows along W (one division per line)."""
    OD, OH = shape[1], shape[2]
    return line // (OD * OH), line // OH % OD * strides[0], line % OH * strides[1]

@jit(nogil=True, cache=True, error_model="numpy")
def _max_pool_kernel(start, stop, x, pool, strides, y, winner, record_winners):
    """Output lines ``start:stop`` of ``y``: the maximum of each window (NaN if it holds one), tap
    by tap over whole lines (the inner loops run over ``C`` contiguous numbers); with
    ``record_winners``, ``winner`` (``y``'s shape): each window's first maximal tap in C order
    (``NO_WINNER`` for NaN), as TensorFlow routes the gradient.  The inner loops read slices of
    the flat arrays that start at unsigned offsets, not views per pixel, and the winners' only
    when recorded (2x2 pooling of 64x28x28x32 float32 on one thread: 0.82 -> 0.38 ms recording
    the winners, 0.66 -> 0.25 ms without)."""
    depth, height, width, channels = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    out_width = y.shape[3]
    x_flat, y_flat, winner_flat = x.reshape(-1), y.reshape(-1), winner.reshape(-1)
    pixel = np.uint64(channels)
    for line in range(start, stop):
        n, d0, h0 = _line_origin(line, y.shape, strides)
        line_start = np.uint64(line) * np.uint64(out_width) * pixel
        tap = np.uint8(0)
        for a in range(pool[0]):
            for b in range(pool[1]):
                row_start = np.uint64(((n * depth + d0 + a) * height + h0 + b) * width) * pixel
                for c in range(pool[2]):
                    for ow in range(out_width):
                        out_at = line_start + np.uint64(ow) * pixel
                        values = x_flat[row_start + np.uint64(ow * strides[2] + c) * pixel :]
                        top = y_flat[out_at:]
                        if tap == 0:
                            for ch in range(channels):
                                top[ch] = values[ch]
                            if record_winners:
                                won = winner_flat[out_at:]
                                for ch in range(channels):
                                    won[ch] = 0
                        elif record_winners:
                            won = winner_flat[out_at:]
                            for ch in range(channels):
                                v, t = values[ch], top[ch]
                                if v > t or (v != v and t == t):
                                    top[ch], won[ch] = v, tap
                        else:
                            for ch in range(channels):
                                v = values[ch]
                                if v > top[ch] or v != v:
                                    top[ch] = v
                    tap += np.uint8(1)
        if record_winners:
            for j in range(out_width * channels):
                at = line_start + np.uint64(j)
                winner_flat[at] = NO_WINNER if y_flat[at] != y_flat[at] else winner_flat[at]

@jit(nogil=True, cache=True, error_model="numpy")
def _max_pool_gradient_kernel(start, stop, g, y, relu, winner, pool, strides, dx):
    """``dx`` under output lines ``start:stop``, at each window's winning tap: ``g`` (``g * (y >
    0)`` with ``relu``: the pooled relu's gradient); at its other taps: 0.  Slices of the flat
    arrays at unsigned offsets, as in :func:`_max_pool_kernel`."""
    depth, height, width, channels = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    out_width = g.shape[3]
    grad_flat, peak_flat, won_flat, dx_flat = g.reshape(-1), y.reshape(-1), winner.reshape(-1), dx.reshape(-1)
    pixel = np.uint64(channels)
    for line in range(start, stop):
        n, d0, h0 = _line_origin(line, g.shape, strides)
        for ow in range(out_width):
            out_at = (np.uint64(line) * np.uint64(out_width) + np.uint64(ow)) * pixel
            grad, won, peak = grad_flat[out_at:], won_flat[out_at:], peak_flat[out_at:]
            tap = np.uint8(0)
            for a in range(pool[0]):
                for b in range(pool[1]):
                    for c in range(pool[2]):
                        at = np.uint64(((n * depth + d0 + a) * height + h0 + b) * width + ow * strides[2] + c) * pixel
                        row = dx_flat[at:]
                        for ch in range(channels):
                            routed = won[ch] == tap and (not relu or peak[ch] > 0)
                            row[ch] = grad[ch] if routed else 0
                        tap += np.uint8(1)


def _put(dx: np.ndarray, tap: tuple, value: np.ndarray, disjoint: bool) -> None:
    """Write (disjoint windows) or add one tap's gradient into ``dx``."""
    if not disjoint:
        dx[tap] += value
    elif value.base is not dx:  # not already computed in place
        dx[tap] = value


def _window_counts(spatial, pads, pool_size, strides, out_spatial, axes, ndim) -> np.ndarray:
    """How many real (unpadded) positions each window covers, shaped to broadcast against the output."""
    counts = np.ones(1)
    for n, (lo, _), k, s, m in zip(spatial, pads, pool_size, strides, out_spatial):
        starts = np.arange(m) * s - lo
        counts = np.multiply.outer(counts, np.minimum(starts + k, n) - np.maximum(starts, 0))
    shape = [1] * ndim
    for axis, m in zip(axes, out_spatial):
        shape[axis] = m
    return counts.reshape(shape)


def global_pool(x: Tensor, data_format: str, mode: str, keepdims: bool) -> Tensor:
    """Max or average over every spatial dim: ``(N, *spatial, C) -> (N, C)`` (or kept as size-1 dims)."""
    data = x.data
    axes = _args.spatial_axes(data_format, data.ndim)
    if mode == "average":
        count = int(np.prod([data.shape[a] for a in axes]))
        y = data.mean(axis=axes, keepdims=True)
        out = y if keepdims else y.reshape(y.shape[0], -1)
        return record(out, (x,), lambda g: (np.broadcast_to(g.reshape(y.shape) / g.dtype.type(count), data.shape),))
    channels_last = data_format == "channels_last"
    moved = data if channels_last else np.moveaxis(data, 1, -1)
    flat = moved.reshape(data.shape[0], -1, moved.shape[-1])
    winner = flat.argmax(axis=1)[:, None, :]  # first maximum, as TF
    y = np.take_along_axis(flat, winner, axis=1)[:, 0, :]

    def vjp(g):
        dflat = np.zeros_like(flat)
        np.put_along_axis(dflat, winner, g.reshape(g.shape[0], 1, -1), axis=1)
        dx = dflat.reshape(moved.shape)
        return (dx if channels_last else np.moveaxis(dx, -1, 1),)

    out = y
    if keepdims:
        kept = [1] * data.ndim
        kept[0] = data.shape[0]
        kept[_args.channel_axis(data_format, data.ndim)] = y.shape[1]
        out = y.reshape(kept)
    return record(out, (x,), vjp)


class _Pooling(Layer):
    mode = "max"

    def __init__(self, rank, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.input_ndim = rank + 2
        self.pool_size = _args.int_tuple(pool_size, rank, "pool_size")
        self.strides = self.pool_size if strides is None else _args.int_tuple(strides, rank, "strides")
        self.padding = _args.padding_mode(padding)
        self.data_format = _args.data_format(data_format)

    def call(self, inputs, training=None):
        return pool(inputs, self.pool_size, self.strides, self.padding, self.data_format, self.mode)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


def _pooling_class(name: str, rank: int, mode: str, default_pool):
    def __init__(self, pool_size=default_pool, strides=None, padding="valid", data_format=None, **kwargs):
        if pool_size is None:  # Keras 3's AveragePooling layers have no default pool size
            raise TypeError(f"{name}.__init__() missing 1 required positional argument: 'pool_size'")
        _Pooling.__init__(self, rank, pool_size, strides, padding, data_format, **kwargs)

    kind = "Max" if mode == "max" else "Average"
    doc = f"{kind} pooling over {rank} spatial dim(s), Keras ``{name}`` (``strides`` default to ``pool_size``)."
    return type(name, (_Pooling,), {"__init__": __init__, "mode": mode, "__doc__": doc, "__module__": __name__})


MaxPooling1D = _pooling_class("MaxPooling1D", 1, "max", 2)
MaxPooling2D = _pooling_class("MaxPooling2D", 2, "max", (2, 2))
MaxPooling3D = _pooling_class("MaxPooling3D", 3, "max", (2, 2, 2))
AveragePooling1D = _pooling_class("AveragePooling1D", 1, "average", None)
AveragePooling2D = _pooling_class("AveragePooling2D", 2, "average", None)
AveragePooling3D = _pooling_class("AveragePooling3D", 3, "average", None)


class _GlobalPooling(Layer):
    mode = "average"

    def __init__(self, rank, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.input_ndim = rank + 2
        self.data_format = _args.data_format(data_format)
        self.keepdims = bool(keepdims)

    def call(self, inputs, training=None):
        return global_pool(inputs, self.data_format, self.mode, self.keepdims)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


def _global_pooling_class(name: str, rank: int, mode: str):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        _GlobalPooling.__init__(self, rank, data_format, keepdims, **kwargs)

    kind = "Maximum" if mode == "max" else "Mean"
    doc = f"{kind} over the {rank} spatial dim(s): ``(N, *spatial, C) -> (N, C)``, Keras ``{name}``."
    return type(name, (_GlobalPooling,), {"__init__": __init__, "mode": mode, "__doc__": doc, "__module__": __name__})


GlobalAveragePooling1D = _global_pooling_class("GlobalAveragePooling1D", 1, "average")
GlobalAveragePooling2D = _global_pooling_class("GlobalAveragePooling2D", 2, "average")
GlobalAveragePooling3D = _global_pooling_class("GlobalAveragePooling3D", 3, "average")
GlobalMaxPooling1D = _global_pooling_class("GlobalMaxPooling1D", 1, "max")
GlobalMaxPooling2D = _global_pooling_class("GlobalMaxPooling2D", 2, "max")
GlobalMaxPooling3D = _global_pooling_class("GlobalMaxPooling3D", 3, "max")
