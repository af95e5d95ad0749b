"""``depthwise``: channel-vector loops for depthwise and few-channel grouped convolution.

With ``G`` groups of ``C_g`` input and ``O_g`` output channels (depthwise: ``C_g == 1``, channel
multiplier ``O_g``), every result is a sum of elementwise products of vectors over the groups ``g``:

    y[og, p]      = sum_{t, cg} x[cg, p*s + t*d] * w[t, cg, og]
    dx[cg, i]     = sum_{t, og, p : p*s + t*d = i} dy[og, p] * w[t, cg, og]
    dw[t, cg, og] = sum_p x[cg, p*s + t*d] * dy[og, p]

in the *planar* layout ``x[cg, n, *spatial, g]`` (likewise ``y``, ``dy`` and the kernel
``w[t, cg, og, g]``): the channels-last arrays themselves when ``C_g == O_g == 1``, else one copy.
GEMM would multiply ``(positions, T * C_g) @ (T * C_g, O_g)`` per group, far too thin for BLAS;
these multiply-adds of contiguous vectors run at the speed of the caches instead.

* NumPy (always there): per block of output positions (``BLOCK_BYTES``, to stay in L2), one
  in-place multiply and add per ``(t, cg, og)`` over the block's strided tap window; ``dw`` is one
  ``einsum`` per ``(t, cg, og)`` and block.
* Numba (when ``numba`` imports; ``USE_NUMBA`` switches it): see "Numba path" below.  Runs of
  ``S * G`` contiguous elements (a segment of ``S`` positions), products added three at a time,
  ``o = ((o + a0*b0) + a1*b1) + a2*b2``, so the accumulator is loaded and stored once per three
  terms.  Parallel (:func:`~npconv._threads.run_split`) over output lines (forward), input lines
  (``dx``: each collects the output lines that reach it, so no two threads write the same element)
  and fixed blocks of output lines (``dw``: partial sums, then added in block order).  The forward
  of a plain depthwise convolution (``C_g == O_g == 1``, 32 channels or more, up to 27 taps) sums
  all taps of a position in one vectorized pass instead, reading zero padding implicitly (see
  :func:`_unrolled_source`).

Deterministic: no fast-math, and every sum has an order fixed by the shapes, never by the thread
count.  The forward adds in the same order on both paths (same bits up to the sign of a zero);
gradients agree to rounding.  NaN/Inf stay local: a result only sums its own receptive field.

Measured (float32, 2 threads, 2-core Xeon AVX-512, ms): depthwise 3x3, 8x28x28x256, padding 1:
forward / ``dx`` / ``dw`` 0.65 / 0.9 / 1.0 in this module; whole ``nc`` calls (padding copies
included) 1.3 / 1.4 / 1.6, NumPy path 6.5 / 6.6 / 3.4, ``gemm`` 45 / 47 / 39.  Eligible: ``C_g <= MAX_IN_PER_GROUP``, any rank,
stride, dilation and ``O_g``; from ``C_g = 16`` on (e.g. 128 channels in 8 groups) ``gemm`` and
``winograd`` are faster.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache

import numpy as np

from .. import _padding
from .._numba import ENABLED as NUMBA_ENABLED
from .._numba import jit
from .._spec import ConvSpec
from .._threads import threads_for, run_split
from ._common import compile_generated, dims_3d, kernel_signature, output_chunks, tap_offsets, tap_window, taps

USE_NUMBA = NUMBA_ENABLED  # tests switch this off to check the NumPy path
MAX_IN_PER_GROUP = 8
BLOCK_BYTES = 2**19  # NumPy path: output block (+ its product buffer) per step, a quarter of L2
PARTIAL_BYTES = 2**23  # Numba dw: bound on the per-block partial sums


def eligible(spec: ConvSpec) -> bool:
    return spec.in_per_group <= MAX_IN_PER_GROUP


# ---------------------------------------------------------------------------- planar layout


def _planes(a: np.ndarray, per_group: int, groups: int) -> np.ndarray:
    """``(N, *spatial, G * c)`` -> ``(c, N, *spatial, G)`` (a view, contiguous when ``c == 1``)."""
    return np.moveaxis(a.reshape(*a.shape[:-1], groups, per_group), -1, 0)


def _from_planes(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_planes`: ``(c, N, *spatial, G)`` -> contiguous ``(N, *spatial, G * c)``."""
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1)).reshape(*planes.shape[1:-1], planes.shape[0] * planes.shape[-1])


def _kernel_planes(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(G, *k, C_g, O_g)`` -> contiguous ``(T, C_g, O_g, G)``."""
    return np.ascontiguousarray(np.moveaxis(w.reshape(spec.groups, spec.taps, spec.in_per_group, spec.out_per_group), 0, -1))


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    if _unrolled(spec):
        return _numba_unrolled_forward(xp, w, spec)
    x = _planes(xp, spec.in_per_group, spec.groups)
    return _from_planes((_numba_forward if USE_NUMBA else _numpy_forward)(x, _kernel_planes(w, spec), spec))


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The gradient of the padded input, cropped to the unpadded one's when :func:`pads_implicitly`."""
    dy = np.ascontiguousarray(_planes(dy, spec.out_per_group, spec.groups))
    dx = (_numba_backward_input if USE_NUMBA else _numpy_backward_input)(dy, _kernel_planes(w, spec), spec)
    return _padding.pad_adjoint(dx, spec.padding, "zeros") if pads_implicitly(spec) else dx


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    if pads_implicitly(spec):  # received unpadded
        xp = _padding.pad(xp, spec.padding, "zeros", 0.0, spec.dtype)
    x, dy = _planes(xp, spec.in_per_group, spec.groups), np.ascontiguousarray(_planes(dy, spec.out_per_group, spec.groups))
    dw = (_numba_backward_weight if USE_NUMBA else _numpy_backward_weight)(x, dy, spec)  # (T, C_g, O_g, G)
    return np.ascontiguousarray(np.moveaxis(dw, -1, 0)).reshape(spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group)


# ---------------------------------------------------------------------------- NumPy path


def _numpy_blocks(spec: ConvSpec, planes: int):
    """Blocks ``(batch_range, out_ranges, key)`` of output positions whose ``planes`` planes plus a
    product buffer fit in ``BLOCK_BYTES``."""
    per_position = (planes + 1) * spec.groups * spec.item_bytes()
    for batch_range, ranges in output_chunks(spec, per_position, BLOCK_BYTES):
        yield batch_range, ranges, (batch_range, *(slice(start, stop) for start, stop in ranges))


def _numpy_pairs(spec: ConvSpec, planes: np.ndarray, batch_range, ranges):
    """``(window, t, cg, og)`` for every tap ``t`` (C order), ``cg`` and ``og``: ``window`` is the
    block's tap window in plane ``cg`` of ``planes``."""
    for t, tap in enumerate(taps(spec)):
        for cg in range(spec.in_per_group):
            window = tap_window(planes[cg], spec, tap, ranges, batch_range)
            for og in range(spec.out_per_group):
                yield window, t, cg, og


def _numpy_forward(x, w, spec):
    x = np.ascontiguousarray(x)
    y = np.empty((spec.out_per_group, spec.batch, *spec.out_spatial, spec.groups), spec.dtype)
    for batch_range, ranges, key in _numpy_blocks(spec, spec.out_per_group):
        block = y[(slice(None), *key)]
        block.fill(0)
        product = np.empty(block.shape[1:], spec.dtype)
        for window, t, cg, og in _numpy_pairs(spec, x, batch_range, ranges):
            np.multiply(window, w[t, cg, og], out=product)
            block[og] += product
    return y


def _numpy_backward_input(dy, w, spec):
    dx = np.zeros((spec.in_per_group, spec.batch, *spec.padded_spatial, spec.groups), spec.dtype)
    for batch_range, ranges, key in _numpy_blocks(spec, spec.out_per_group):
        block = dy[(slice(None), *key)]
        product = np.empty(block.shape[1:], spec.dtype)
        for window, t, cg, og in _numpy_pairs(spec, dx, batch_range, ranges):
            np.multiply(block[og], w[t, cg, og], out=product)
            window += product
    return _from_planes(dx)


def _numpy_backward_weight(x, dy, spec):
    x = np.ascontiguousarray(x)
    dw = np.zeros((spec.taps, spec.in_per_group, spec.out_per_group, spec.groups), spec.dtype)
    positions = "nxyz"[: spec.rank + 1]  # spelled out: "..." fails on an empty batch
    for batch_range, ranges, key in _numpy_blocks(spec, 0):
        block = dy[(slice(None), *key)]
        for window, t, cg, og in _numpy_pairs(spec, x, batch_range, ranges):
            dw[t, cg, og] += np.einsum(f"{positions}g,{positions}g->g", window, block[og])
    return dw


# ---------------------------------------------------------------------------- Numba path
# The kernels see 2-D arrays of rows: x, dx, y, dy are rows of G channels (one per position, in
# planar order) and the kernel is tiled to rows of S positions x G channels, so that one multiply-add
# covers a *segment* of S consecutive output positions along the last spatial dim: a run of S * G
# contiguous elements in every operand, long enough to hide the loop overhead when G is small.
# A stride s along that dim would break the runs, so the input is first split into its s phases
# (positions r, r + s, r + 2s, ...): there a strided tap reads a contiguous run again.  1-D and 2-D
# convolutions are 3-D ones with leading spatial size 1.
SEGMENT = 1024  # elements (positions x channels) per multiply-add, at least one position


def _segment(spec: ConvSpec) -> int:
    return min(spec.out_spatial[-1], max(1, SEGMENT // spec.groups))


def _phases(planes: np.ndarray, stride: int) -> np.ndarray:
    """``(c, N, D, H, W, G)`` -> contiguous ``(c, N, D, H, s, ceil(W / s), G)``, phase ``r`` holding
    positions ``r, r + s, ...`` (one copy at most; the unused tail of a short phase is never read)."""
    if stride == 1:
        return np.ascontiguousarray(planes)[..., None, :, :]
    W = planes.shape[-2]
    phased = np.empty((*planes.shape[:-2], stride, -(-W // stride), planes.shape[-1]), planes.dtype)
    for r in range(stride):
        phased[..., r, : len(range(r, W, stride)), :] = planes[..., r::stride, :]
    return phased


def _from_phases(phased: np.ndarray, W: int) -> np.ndarray:
    """Inverse of :func:`_phases` into the channels-last ``(N, D, H, W, G * c)`` (one copy at most)."""
    stride, c, G = phased.shape[-3], phased.shape[0], phased.shape[-1]
    if stride == 1:
        return _from_planes(phased[..., 0, :, :])
    out = np.empty((*phased.shape[1:-3], W, G, c), phased.dtype)
    for r in range(stride):
        out[..., r::stride, :, :] = np.moveaxis(phased[..., r, : len(range(r, W, stride)), :], 0, -1)
    return out.reshape(*out.shape[:-2], G * c)


def _tiled(w: np.ndarray, segment: int) -> np.ndarray:
    """``(T, C_g, O_g, G)`` -> rows ``(t, cg, og)`` of the kernel's G channels repeated ``segment`` times."""
    return np.repeat(w.reshape(-1, 1, w.shape[-1]), segment, axis=1).reshape(-1, segment * w.shape[-1])


def _input_rows(spec: ConvSpec, phased_shape):
    """Row offsets in the phased input: of output line ``(n, od, oh)`` (per unit of each), and of
    each pair ``k = (t, cg)`` relative to its output position; and each pair's kernel row ``(t, cg, 0)``."""
    _, _, kernel, stride, dilation = dims_3d(spec)
    _, _, D, H, s, Wq = phased_shape[:6]
    per_h = s * Wq
    per_d, per_cg = H * per_h, spec.batch * D * H * per_h
    taps_rows = [  # a tap's shift along W lands in phase shift % s, at position shift // s
        td * dilation[0] * per_d + th * dilation[1] * per_h + (tw * dilation[2]) % s * Wq + (tw * dilation[2]) // s
        for td, th, tw in np.ndindex(*kernel)
    ]
    cg = np.arange(spec.in_per_group)
    x_off = (np.array(taps_rows, np.int64)[:, None] + cg * per_cg).ravel()
    w_rows = ((np.arange(spec.taps)[:, None] * spec.in_per_group + cg) * spec.out_per_group).ravel()
    return (D * per_d, stride[0] * per_d, stride[1] * per_h), x_off, w_rows


def _numba_forward(x, w, spec):
    padded, out, _, stride, _ = dims_3d(spec)
    segment = _segment(spec)
    x = _phases(x.reshape(spec.in_per_group, spec.batch, *padded, spec.groups), stride[2])
    y = np.empty((spec.out_per_group, spec.batch, *spec.out_spatial, spec.groups), spec.dtype)
    x_line, x_off, w_rows = _input_rows(spec, x.shape)
    arrays = (x.reshape(-1, spec.groups), _tiled(w, segment), y.reshape(-1, spec.groups))
    jobs = y.size // (spec.groups * out[2]) * -(-out[2] // segment)  # output line segments
    run_split(_forward_kernel, spec.flops, jobs, *arrays, out, x_line, x_off, w_rows, spec.batch, segment)
    return y


def _numba_backward_input(dy, w, spec):
    padded, out, kernel, stride, dilation = dims_3d(spec)
    segment = _segment(spec)
    dx = np.empty((spec.in_per_group, spec.batch, *padded[:2], stride[2], -(-padded[2] // stride[2]), spec.groups), spec.dtype)
    counts = (spec.batch, spec.in_per_group, spec.out_per_group)
    arrays = (dy.reshape(-1, spec.groups), _tiled(w, segment), dx.reshape(-1, spec.groups))
    lines = dx.size // (spec.groups * dx.shape[4] * dx.shape[5])  # phased input lines
    run_split(_backward_input_kernel, spec.flops, lines, *arrays, dx.shape[2:6], out, kernel, stride, dilation, counts, segment)
    return _from_phases(dx, padded[2]).reshape(spec.batch, *spec.padded_spatial, spec.in_channels)


def _numba_backward_weight(x, dy, spec):
    padded, out, _, stride, _ = dims_3d(spec)
    segment = _segment(spec)
    x = _phases(x.reshape(spec.in_per_group, spec.batch, *padded, spec.groups), stride[2])
    x_line, x_off, _ = _input_rows(spec, x.shape)
    rows = x_off.size * spec.out_per_group  # of dw: (t, cg, og)
    budget = min(PARTIAL_BYTES, spec.output_positions * spec.out_channels * spec.item_bytes())  # <= dy
    blocks = max(1, min(spec.batch * out[0] * out[1], 16, budget // (rows * segment * spec.groups * spec.item_bytes())))
    partial = np.empty((blocks, rows, segment * spec.groups), spec.dtype)
    arrays = (x.reshape(-1, spec.groups), dy.reshape(-1, spec.groups))
    run_split(_backward_weight_kernel, spec.flops, blocks, *arrays, partial, out, x_line, x_off, spec.out_per_group)
    dw = partial.reshape(blocks, rows, segment, spec.groups).sum(axis=(0, 2))
    return dw.reshape(spec.taps, spec.in_per_group, spec.out_per_group, spec.groups)


# Channel multiplier 1 (``C_g == O_g == 1``), at most ``MAX_UNROLLED_TAPS`` taps and at least
# ``MIN_UNROLLED_CHANNELS`` channels: each output
# position's ``G`` channels are summed over the taps in one pass, ``y[c] = (x_0[c] w_0[c] + x_1[c]
# w_1[c]) + ...`` (the same order as above), the taps unrolled in code generated for their count,
# so that the channel loop is vectorized with no partial sums stored between taps.  Zero padding
# is read implicitly: positions whose window crosses the border sum their taps inside it in a
# loop (``(0 + p_0) + p_1 + ...``: the same values up to the sign of a zero).  Measured for
# 8x28x28x256 3x3 pad 1 on the Zen 4 of ``few_channels``: 2.3 -> 1.1-1.6 ms for the kernel, and
# no padded copy (0.8-1.0 ms).
MAX_UNROLLED_TAPS = 27
# fewer channels leave the vectorized channel loop too short: 1x512x512x1 3x3 took 3.8 ms against the
# segment loops' 1.2 (runs along positions); 8x56x56x32, 1.5 against 2.3
MIN_UNROLLED_CHANNELS = 32


def _unrolled(spec: ConvSpec) -> bool:
    return (
        USE_NUMBA
        and spec.in_per_group == spec.out_per_group == 1
        and spec.taps <= MAX_UNROLLED_TAPS
        and spec.groups >= MIN_UNROLLED_CHANNELS
    )


def pads_implicitly(spec: ConvSpec) -> bool:
    """The unrolled forward reads zero padding from the unpadded input (see the registry)."""
    return spec.zero_padding and _unrolled(spec)


def _unrolled_source(taps: int) -> str:
    """Source of the forward kernel for ``taps`` taps, over output lines ``start <= line < stop``:
    flat channels-last ``x`` and ``y``, the kernel ``w`` as ``(taps, G)``; ``offsets`` of each tap
    from its window's corner (elements); ``dims`` = input ``(N, D, H, W)``, output ``(OD, OH, OW)``,
    ``G``, kernel, stride, dilation and padding before (3 each; 0 when ``x`` is already padded)."""
    rows = "\n".join(f"                r{t} = x[corner + offsets[{t}]:][:G]" for t in range(taps))
    weights = "\n".join(f"    w{t} = w[{t}]" for t in range(taps))
    total = " + ".join(f"r{t}[c] * w{t}[c]" for t in range(taps))  # Python's + adds left to right
    return f"""
def kernel(start, stop, x, w, y, offsets, dims):
    N, D, H, W, OD, OH, OW, G = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6], dims[7]
    KD, KH, KW, SD, SH, SW = dims[8], dims[9], dims[10], dims[11], dims[12], dims[13]
    DD, DH, DW, PD, PH, PW = dims[14], dims[15], dims[16], dims[17], dims[18], dims[19]
{weights}
    for line in range(start, stop):
        n, d0, h0 = line // (OD * OH), line // OH % OD * SD - PD, line % OH * SH - PH
        rows_inside = d0 >= 0 and d0 + (KD - 1) * DD < D and h0 >= 0 and h0 + (KH - 1) * DH < H
        for ow in range(OW):
            v0 = ow * SW - PW
            out = y[(line * OW + ow) * G:][:G]
            if rows_inside and v0 >= 0 and v0 + (KW - 1) * DW < W:
                corner = (((n * D + d0) * H + h0) * W + v0) * G
{rows}
                for c in range(G):
                    out[c] = {total}
                continue
            out[:] = 0
            for t in range(KD * KH * KW):
                i, j, k = d0 + t // (KH * KW) * DD, h0 + t // KW % KH * DH, v0 + t % KW * DW
                if 0 <= i < D and 0 <= j < H and 0 <= k < W:
                    row, weight = x[(((n * D + i) * H + j) * W + k) * G:][:G], w[t]
                    for c in range(G):
                        out[c] += row[c] * weight[c]
"""


@lru_cache(maxsize=None)
def _unrolled_kernel(taps: int, dtype: type):
    """The kernel of :func:`_unrolled_source`, compiled for ``dtype`` on first use (cached on disk:
    :func:`~._common.compile_generated`)."""
    signature = kernel_signature(dtype, "int", "int", "in", "in2d", "out", "ints", "ints")
    return compile_generated(_unrolled_source(taps), f"_unrolled_{taps}", sys.modules[__name__], signature)


def _numba_unrolled_forward(x, w, spec):
    """The forward on ``x``: unpadded when :func:`pads_implicitly`, else padded."""
    _, out, kernel, stride, dilation = dims_3d(spec)
    lead = (1,) * (3 - spec.rank)
    implicit = pads_implicitly(spec)
    spatial = lead + (spec.in_spatial if implicit else spec.padded_spatial)
    before = (0,) * len(lead) + tuple(lo for lo, _ in spec.padding) if implicit else (0, 0, 0)
    G = spec.groups
    offsets, _ = tap_offsets(spatial, kernel, dilation, G)
    dims = np.array([spec.batch, *spatial, *out, G, *kernel, *stride, *dilation, *before], np.int64)
    y = np.empty((spec.batch, *spec.out_spatial, G), spec.dtype)
    lines = spec.batch * out[0] * out[1] if y.size else 0
    arrays = (np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(w.reshape(G, spec.taps).T), y.reshape(-1))
    run_split(_unrolled_kernel(spec.taps, spec.dtype.type), spec.flops, lines, *arrays, offsets, dims)
    return y


@jit(cache=True)
def _accumulate(o, a, a_base, a_rows, b, b_base, b_rows, count, init=False):
    """``o += sum_{k < count} a_k * b_k`` (``o = ...`` if ``init``), added in order of ``k``,
    where ``a_k`` is the run of ``o.size`` elements of ``a`` (flattened) from the start of its
    row ``a_base + a_rows[k]``; likewise ``b_k``."""
    a, b, n, a_len, b_len = a.reshape(-1), b.reshape(-1), o.size, a.shape[1], b.shape[1]
    if init and count < 3:
        o[:] = 0
    k = 0
    while k + 3 <= count:
        a0 = a[(a_base + a_rows[k]) * a_len :][:n]
        a1 = a[(a_base + a_rows[k + 1]) * a_len :][:n]
        a2 = a[(a_base + a_rows[k + 2]) * a_len :][:n]
        b0 = b[(b_base + b_rows[k]) * b_len :][:n]
        b1 = b[(b_base + b_rows[k + 1]) * b_len :][:n]
        b2 = b[(b_base + b_rows[k + 2]) * b_len :][:n]
        if init and k == 0:  # saves a pass over o: (0 + p0) + p1 == p0 + p1 (up to the sign of a zero)
            for c in range(n):
                o[c] = (a0[c] * b0[c] + a1[c] * b1[c]) + a2[c] * b2[c]
        else:
            for c in range(n):
                o[c] = ((o[c] + a0[c] * b0[c]) + a1[c] * b1[c]) + a2[c] * b2[c]
        k += 3
    while k < count:
        a0 = a[(a_base + a_rows[k]) * a_len :][:n]
        b0 = b[(b_base + b_rows[k]) * b_len :][:n]
        for c in range(n):
            o[c] += a0[c] * b0[c]
        k += 1

@jit(cache=True, nogil=True)
def _forward_kernel(start, stop, x, w, y, out, x_line, x_off, w_rows, batch, segment):
    """Segment of output line ``(og, n, od, oh)``: ``sum_k x[line start + x_off[k] + ow] * w[w_rows[k] + og]``."""
    (OD, OH, OW), G = out, y.shape[1]
    segments = -(-OW // segment)
    y_flat = y.reshape(-1)
    for job in range(start, stop):
        line, ow = job // segments, job % segments * segment
        og, n = line // (OH * OD * batch), line // (OH * OD) % batch
        x_start = n * x_line[0] + line // OH % OD * x_line[1] + line % OH * x_line[2] + ow
        o = y_flat[(line * OW + ow) * G :][: min(segment, OW - ow) * G]
        _accumulate(o, x, x_start, x_off, w, og, w_rows, x_off.size, True)

@jit(cache=True, nogil=True)
def _backward_input_kernel(start, stop, dy, w, dx, phased, out, kernel, stride, dilation, counts, segment):
    """Phased input line ``(cg, n, d, h)``: zeroed, then for each tap ``tw`` and output
    segment, ``dy`` segments of the output lines it reaches times their kernel rows."""
    D, H, phases, Wq = phased
    OD, OH, OW = out
    KD, KH, KW = kernel
    batch, in_per_group, out_per_group = counts
    G = dx.shape[1]
    dx_flat = dx.reshape(-1)
    for line in range(start, stop):
        cg, n, d, h = line // (H * D * batch), line // (H * D) % batch, line // H % D, line % H
        dx_flat[line * phases * Wq * G : (line + 1) * phases * Wq * G] = 0
        dy_rows = np.empty(KD * KH * out_per_group, np.int64)  # (td, th, og) that reach this line
        w_rows = np.empty(KD * KH * out_per_group, np.int64)
        count = 0
        for td in range(KD):
            qd = d - td * dilation[0]
            if qd < 0 or qd % stride[0] != 0 or qd // stride[0] >= OD:
                continue
            for th in range(KH):
                qh = h - th * dilation[1]
                if qh < 0 or qh % stride[1] != 0 or qh // stride[1] >= OH:
                    continue
                for og in range(out_per_group):
                    dy_rows[count] = (((og * batch + n) * OD + qd // stride[0]) * OH + qh // stride[1]) * OW
                    w_rows[count] = (((td * KH + th) * KW * in_per_group + cg) * out_per_group) + og
                    count += 1
        for tw in range(KW):
            first = line * phases * Wq + (tw * dilation[2]) % phases * Wq + (tw * dilation[2]) // phases
            for ow in range(0, OW, segment):
                o = dx_flat[(first + ow) * G :][: min(segment, OW - ow) * G]
                _accumulate(o, dy, ow, dy_rows, w, tw * in_per_group * out_per_group, w_rows, count)

@jit(cache=True, nogil=True)
def _backward_weight_kernel(start, stop, x, dy, partial, out, x_line, x_off, out_per_group):
    """``partial[b, (k, og)]``: per segment position, ``sum x[... + x_off[k]] * dy[og, ...]``
    over the segments of block ``b`` of output lines (a fixed share, so the sum over blocks does
    not depend on the number of threads)."""
    (OD, OH, OW), G, blocks = out, x.shape[1], partial.shape[0]
    segment = partial.shape[2] // G
    lines, full, tail = dy.shape[0] // (out_per_group * OW), OW // segment, OW % segment
    plane = lines * OW  # dy rows per og
    for b in range(start, stop):
        first, stop = b * lines // blocks, (b + 1) * lines // blocks
        per_line = full + (tail > 0)
        x_rows = np.empty((stop - first) * per_line, np.int64)  # segment starts: full ones, then tails
        dy_rows = np.empty_like(x_rows)
        for i in range(stop - first):
            line = first + i
            n = line // (OH * OD)
            start = n * x_line[0] + line // OH % OD * x_line[1] + line % OH * x_line[2]
            for s in range(per_line):
                j = i * full + s if s < full else (stop - first) * full + i
                x_rows[j] = start + s * segment
                dy_rows[j] = line * OW + s * segment
        count = (stop - first) * full
        for row in range(partial.shape[1]):
            k, og = row // out_per_group, row % out_per_group
            _accumulate(partial[b, row], x, x_off[k], x_rows, dy, og * plane, dy_rows, count, True)
            _accumulate(partial[b, row, : tail * G], x, x_off[k], x_rows[count:], dy, og * plane, dy_rows[count:], x_rows.size - count)


# ---------------------------------------------------------------------------- cost model
# Seconds, fitted to single- and two-thread float32 timings of 32 shapes x 3 directions on the
# 2-core AVX-512 machine of ``_common`` (median error 10% for Numba, 20% for NumPy).
# Numba: fixed, per multiply-add and per run (both shared among the threads), per byte of input and
# output, per byte of layout copies (channels of a group or phases of a stride).
NUMBA_COST = {
    "forward": (3.8e-5, 6.8e-11, 8.1e-9, 1.6e-11, 1.3e-10),
    "backward_input": (3.0e-5, 9.0e-11, 4.4e-9, 2.1e-11, 1.6e-10),
    "backward_weight": (3.9e-5, 9.9e-11, 1.0e-8, 1.8e-11, 1.3e-10),
}
# NumPy: fixed, per multiply-add, per multiply-add divided by the length of NumPy's inner loop (the G
# channels the kernel is broadcast over; the positions of a row when G == 1), per byte of input and output.
NUMPY_COST = {
    "forward": (4.5e-5, 4e-10, 8e-9, 4e-11),
    "backward_input": (4.5e-5, 4e-10, 8e-9, 4e-11),
    "backward_weight": (4.5e-5, 2e-10, 5e-9, 1e-11),
}


def _sizes(spec: ConvSpec) -> tuple[int, int]:
    """Bytes of the padded input and of the output."""
    item = spec.item_bytes()
    return spec.batch * math.prod(spec.padded_spatial) * spec.in_channels * item, spec.output_positions * spec.out_channels * item


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    width = spec.item_bytes() / 4  # float64 vectors hold half as many numbers
    macs = spec.flops / 2
    in_bytes, out_bytes = _sizes(spec)
    if not USE_NUMBA:
        fixed, per_mac, per_short, per_byte = NUMPY_COST[direction]
        inner = spec.groups if spec.groups > 1 else spec.out_spatial[-1]
        return fixed + macs * width * (per_mac + per_short / inner) + per_byte * (in_bytes + out_bytes)
    fixed, per_mac, per_run, per_byte, per_copied = NUMBA_COST[direction]
    width_out = spec.out_spatial[-1]
    runs = spec.output_positions // width_out * -(-width_out // _segment(spec)) * spec.taps * spec.in_per_group * spec.out_per_group
    copied = in_bytes * (spec.in_per_group > 1 or spec.stride[-1] > 1) + out_bytes * (spec.out_per_group > 1)
    threads = threads_for(spec.flops)
    return fixed + (macs * width * per_mac + runs * per_run) / threads + per_byte * (in_bytes + out_bytes) + per_copied * copied


def workspace_bytes(spec: ConvSpec, direction: str = "forward") -> int:
    """Layout copies (input and output planes, stride phases), the tiled kernel and partial sums."""
    in_bytes, out_bytes = _sizes(spec)
    copies = in_bytes * ((spec.in_per_group > 1) + (spec.stride[-1] > 1)) + out_bytes * (spec.out_per_group > 1)
    kernel = spec.taps * spec.in_per_group * spec.out_channels * spec.item_bytes()
    return copies + kernel * _segment(spec) + min(PARTIAL_BYTES, out_bytes)
