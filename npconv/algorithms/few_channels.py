"""``few_channels``: register-blocked Numba loops for convolutions with few input channels per group.

With ``K = taps * C_g`` terms per output (a CNN's first layer: 1 or 3 input channels, 3x3 taps, so
``K = 9`` or ``27``), im2col + GEMM multiplies ``(positions, K) @ (K, O_g)``: an inner dimension
far too thin for BLAS, after a copy ``K`` times the input.  Here every output is summed directly,

    y[p, g, o] = sum_{k < K} x[p * s + offset[k] + g * C_g] * w[g, k, o]      (k = (tap, c), C order)

over the padded channels-last input, ``PIXELS`` neighbouring outputs along the last spatial dim
times ``LANES`` output channels at a time (:data:`FORWARD_BLOCKS`: 64 by 4 for float32 when ``O_g``
allows): their ``PIXELS * LANES`` partial sums stay in vector registers for all ``K`` terms, each
term costing ``LANES / 16`` vector loads of weights, ``PIXELS`` input broadcasts and
``PIXELS * LANES / 16`` fused multiply-adds (no store until the sum is complete).  The kernels are
straight-line code generated for their block size (:func:`_kernel_source`): Numba leaves LLVM's
superword vectorizer (which turns the scalar sums into vector registers) off, so it is switched on
while they compile (:func:`_compile`).  Parallel over output lines, in contiguous shares on Python
threads (:func:`~npconv._threads.run_split`; one thread for small convolutions).

Deterministic: each output's ``K`` terms are added in order of ``k`` by fused multiply-adds (one
rounding per term, no reassociation), whatever the thread count.  NaN/Inf stay local.

Measured (float32, 2 threads, 2-core Zen 4 AVX-512, ms, ``benchmarks/calibrate.py``, fastest of
5): 8x224x224x3 -> 64 7x7 stride 2 pad 3, 10.3 (``gemm`` 24.3; 40-45 GMAC/s per thread, about
the rate of a large BLAS product here); 64x28x28x1 -> 32 3x3 pad 1, 0.75 (``gemm`` 0.99); 8x64x64x3 -> 16 5x5,
1.06 (``gemm`` 2.37); 8 groups of 16 channels, 4.97 (``winograd`` 3.48).  Unsigned offsets (see
:func:`_kernel_source`) and 64-channel blocks made the forward 2-2.5x faster than the first
version's 32 by 2 blocks.  The rate falls as ``K`` grows (the weights leave the L1 cache: 30e9
per thread at ``K = 1152``), so ``gemm`` and ``winograd`` take over as ``K`` and ``C_g`` grow.
Eligible: float32/float64 with ``numba`` installed, ``O_g`` a multiple of 16, any rank, stride,
dilation and groups; without numba ``gemm`` is the pure-NumPy path for these shapes.

The filter gradient sums the other way round: ``dw[g, k, o] = sum_p x[p * s + offset[k]] dy[p, o]``
with blocks of terms by channels in registers along each output line (:func:`_gradient_source`),
the work items (group, term block, channel block) shared among the threads, each summing its lines
in order (deterministic).  Measured (float32, 2 threads, ms, against ``gemm`` in the same run):
8x224x224x3 -> 64 7x7 stride 2, 17.4 (30.5); 64x28x28x1 -> 32 3x3, 0.48 (1.12); 8x64x64x3 -> 16
5x5, 0.96 (3.5); 8 groups of 16 channels 3.6 (``winograd`` 3.0).  The input gradient is
``gemm``'s (estimated 1% dearer, so that ``auto`` names ``gemm`` for it).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from .._numba import ENABLED as NUMBA_ENABLED
from .._numba import load_numba
from .._spec import ConvSpec
from .._threads import threads_for, run_split
from . import gemm
from ._common import compile_generated, dims_3d, kernel_signature, tap_offsets

USE_NUMBA = NUMBA_ENABLED  # tests switch this off: the algorithm is then ineligible
LANE_BLOCK = 16  # O_g must be a multiple: output channels per vector block
# Block sizes by item size: the widest LANES (output channels) in the table dividing O_g, mapped to
# the forward's PIXELS (neighbouring outputs) or the filter gradient's TERMS (kernel terms).  16-24
# AVX-512 registers of sums (float64 vectors hold half as many numbers), leaving room for the
# operands; measured fastest of 2-16 pixels and 4-16 terms on the suite's few-channel shapes.
FORWARD_BLOCKS = {4: {64: 4, 32: 4, 16: 8}, 8: {32: 4, 16: 8}}
GRADIENT_BLOCKS = {4: {64: 6, 32: 10, 16: 12}, 8: {32: 5, 16: 12}}
# float32 multiply-adds per second and thread (float64: half) by LANES, measured (``npconv bench``,
# calibrate.py): forward with few terms, and filter gradient
MACS_PER_THREAD = {64: 4.5e10, 32: 2.4e10, 16: 1.4e10}
GRADIENT_MACS_PER_THREAD = {64: 2.8e10, 32: 1.9e10, 16: 2.6e10}
# the forward slows as the K terms' weights outgrow the caches: rate / (1 + K / FORWARD_HALF_TERMS)
# (an empirical fit: measured, 64 lanes, K = 147-256: 40-43e9; 288 on 14-pixel lines: 31e9; so that
# auto leaves the suite's many-channel shapes to gemm and winograd, which were as fast or faster)
FORWARD_HALF_TERMS = 1000
SINGLE_PIXEL_SLOWDOWN = 3  # lines shorter than a block run one pixel at a time
WRITE_BYTES_PER_S = 2.4e10  # writing the output
FIXED_SECONDS = 3e-5
GRADIENT_PREMIUM = 1.01  # the input gradient is gemm's: estimated slightly dearer than gemm itself


def eligible(spec: ConvSpec) -> bool:
    return USE_NUMBA and spec.dtype in (np.float32, np.float64) and spec.out_per_group % LANE_BLOCK == 0


def _lanes(spec: ConvSpec, blocks: dict) -> tuple[int, int]:
    """``(LANES, size)``: the widest block of ``blocks[item size]`` whose LANES divides ``O_g``."""
    table = blocks[spec.item_bytes()]
    lanes = max(lanes for lanes in table if spec.out_per_group % lanes == 0)
    return lanes, table[lanes]


def _block(spec: ConvSpec) -> tuple[int, int]:
    """``(LANES, PIXELS)`` of the forward's blocks: e.g. float32 with ``O_g = 64``, 64 channels by 4
    pixels (16 vectors of sums)."""
    return _lanes(spec, FORWARD_BLOCKS)


def _layout(spec: ConvSpec) -> tuple[np.ndarray, np.ndarray]:
    """Element offsets in the flat padded input: of each term ``k = (tap, c)`` relative to its output
    pixel's window corner, and (``steps``) of the corner per unit of ``n, od, oh, ow``."""
    padded, _, kernel, stride, dilation = dims_3d(spec)
    taps, pixel = tap_offsets(padded, kernel, dilation, spec.in_channels)
    offsets = (taps[:, None] + np.arange(spec.in_per_group)).ravel()
    steps = np.array([padded[0] * pixel[0], *(stride * pixel)], np.int64)
    return offsets, steps


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    lanes, pixels = _block(spec)
    _, out, _, _, _ = dims_3d(spec)
    y = np.empty((spec.batch, *spec.out_spatial, spec.out_channels), spec.dtype)
    offsets, steps = _layout(spec)
    shape = np.array([*out, spec.groups, spec.in_per_group, spec.out_per_group], np.int64)
    arrays = (np.ascontiguousarray(xp).reshape(-1), np.ascontiguousarray(w).reshape(-1), y.reshape(-1))
    lines = y.size // (out[2] * spec.out_channels) if y.size else 0  # output lines (n, od, oh)
    run_split(_compile(lanes, pixels, spec.dtype.type), spec.flops, lines, *arrays, offsets, steps, shape, spec.dtype.type(0))
    return y


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    return gemm.backward_input(dy, w, spec)


def _gradient_block(spec: ConvSpec) -> tuple[int, int]:
    """``(LANES, TERMS)`` of the filter gradient's blocks: e.g. float32 with ``O_g = 64``, 64
    channels by 6 kernel terms (24 vectors of sums)."""
    return _lanes(spec, GRADIENT_BLOCKS)


def _gradient_work(spec: ConvSpec) -> tuple[int, int, int, int]:
    """``(LANES, TERMS, term blocks, work items)`` of the filter gradient; an item is a (group, term
    block, channel block) triple."""
    lanes, terms = _gradient_block(spec)
    blocks = -(-spec.taps * spec.in_per_group // terms)
    return lanes, terms, blocks, spec.groups * blocks * (spec.out_per_group // lanes)


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    lanes, terms, _, items = _gradient_work(spec)
    _, out, _, _, _ = dims_3d(spec)
    offsets, steps = _layout(spec)
    dw = np.zeros((spec.groups, offsets.size, spec.out_per_group), spec.dtype)
    shape = np.array([spec.batch, *out, spec.groups, spec.in_per_group, spec.out_per_group], np.int64)
    arrays = (np.ascontiguousarray(xp).reshape(-1), np.ascontiguousarray(dy).reshape(-1), dw.reshape(-1))
    kernel = _compile(lanes, terms, spec.dtype.type, gradient=True)
    run_split(kernel, spec.flops, items if dy.size else 0, *arrays, offsets, steps, shape, spec.dtype.type(0))
    return dw.reshape(spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group)


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    """Seconds: the multiply-adds (with the pixels that overlapping blocks compute twice) at the
    rate measured for the block size and slowing with the number of terms, shared by the threads
    (float64 vectors hold half as many numbers), and the output's writing; the filter gradient's
    multiply-adds over whole term blocks, at most one thread per work item; for the input gradient,
    ``gemm``'s estimate times ``GRADIENT_PREMIUM``."""
    if direction == "backward_input":
        return gemm.cost(spec, direction) * GRADIENT_PREMIUM
    if direction == "backward_weight":
        lanes, terms, blocks, items = _gradient_work(spec)
        macs = spec.output_positions * spec.out_channels * blocks * terms * spec.item_bytes() / 4
        return FIXED_SECONDS + macs / (GRADIENT_MACS_PER_THREAD[lanes] * min(items, threads_for(spec.flops)))
    lanes, pixels = _block(spec)
    width = spec.out_spatial[-1]
    computed = -(-width // pixels) * pixels if width >= pixels else width * SINGLE_PIXEL_SLOWDOWN
    macs = spec.flops / 2 * spec.item_bytes() / 4 * computed / max(width, 1)
    rate = MACS_PER_THREAD[lanes] / (1 + spec.taps * spec.in_per_group / FORWARD_HALF_TERMS)
    out_bytes = spec.output_positions * spec.out_channels * spec.item_bytes()
    return FIXED_SECONDS + macs / (rate * threads_for(spec.flops)) + out_bytes / WRITE_BYTES_PER_S


def workspace_bytes(spec: ConvSpec, direction: str = "forward") -> int:
    return gemm.workspace_bytes(spec, direction) if direction == "backward_input" else 0


# ---------------------------------------------------------------------------- generated kernels


def _register_sums(rows: int, lanes: int) -> tuple[list[list[str]], list[str]]:
    """Names ``s{row}_{lane}`` of a block's scalar sums (vector registers once vectorized) and the
    lines setting them to ``zero``."""
    sums = [[f"s{row}_{lane}" for lane in range(lanes)] for row in range(rows)]
    return sums, [" = ".join(row) + " = zero" for row in sums]


def _kernel_source(lanes: int, pixels: int) -> str:
    """Source of the kernel for blocks of ``lanes`` channels by ``pixels`` pixels, over output lines
    ``start <= line < stop``.  A line's last block ends at its end, overlapping the one before (its
    outputs are computed again, in the same order: the same values); lines shorter than a block
    run one pixel at a time.  Arguments: those bounds; flat ``x``,
    ``w`` ``(G, K, O_g)`` and ``y``; ``offsets`` and ``steps`` of :func:`_layout`; ``shape`` =
    ``(OD, OH, OW, G, C_g, O_g)``; ``zero`` of the dtype.  The input is read through a view
    starting at each block's window corner, at unsigned offsets: Numba wraps negative indices
    around, a test and two instructions per load that made the loop twice as long (and took
    registers from the sums) when offsets were signed."""

    def block(count: int, indent: str) -> list[str]:
        sums, lines = _register_sums(count, lanes)
        lines += ["window = x[corner:]", "for k in range(terms):", "    xk = np.uint64(offsets[k])"]
        lines += [f"    wk = w[wg + k * out_per_group:][:{lanes}]"]
        lines += [f"    x{p} = window[xk + pixel_step{p}]" for p in range(count)]
        for lane in range(lanes):
            lines.append(f"    w{lane} = wk[{lane}]")
            lines += [f"    {sums[p][lane]} += x{p} * w{lane}" for p in range(count)]
        for p in range(count):
            lines.append(f"yp = y[y_line + (ow + {p}) * channels:][:{lanes}]")
            lines += [f"yp[{lane}] = {sums[p][lane]}" for lane in range(lanes)]
        return [indent + line for line in lines]

    pixel_steps = "; ".join(f"pixel_step{p} = np.uint64({p} * step)" for p in range(pixels))
    head = f"""
def kernel(start, stop, x, w, y, offsets, steps, shape, zero):
    OD, OH, OW, groups, in_per_group, out_per_group = shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]
    terms, channels, step = offsets.size, groups * out_per_group, steps[3]
    {pixel_steps}
    for line in range(start, stop):
        n, od, oh = line // (OD * OH), line // OH % OD, line % OH
        x_line = n * steps[0] + od * steps[1] + oh * steps[2]
        for g in range(groups):
            for o0 in range(0, out_per_group, {lanes}):
                wg = g * terms * out_per_group + o0
                y_line = line * OW * channels + g * out_per_group + o0
                ow, last = 0, OW - {pixels}
                while ow <= last:
                    corner = x_line + ow * step + g * in_per_group
"""
    middle = """
                    ow = OW if ow == last else min(ow + {pixels}, last)
                while ow < OW:
                    corner = x_line + ow * step + g * in_per_group
"""
    tail = "\n                    ow += 1\n"
    indent = " " * 20
    return head + "\n".join(block(pixels, indent)) + middle.format(pixels=pixels) + "\n".join(block(1, indent)) + tail


@contextmanager
def _superword_vectorization():
    """LLVM's SLP vectorizer on while Numba compiles (``NUMBA_SLP_VECTORIZE``, read per compilation)."""
    config = load_numba().config
    previous = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        config.SLP_VECTORIZE = previous


@lru_cache(maxsize=None)
def _compile(lanes: int, block: int, dtype: type, gradient: bool = False):
    """The kernel of :func:`_kernel_source` (``block`` pixels) or, for the ``gradient``, of
    :func:`_gradient_source` (``block`` terms), compiled for ``dtype`` (float32 or float64) on first
    use: a few seconds each (cached on disk: :func:`~._common.compile_generated`)."""
    name = f"_{'gradient' if gradient else 'kernel'}_{lanes}x{block}"
    source = (_gradient_source if gradient else _kernel_source)(lanes, block)
    signature = kernel_signature(dtype, "int", "int", "in", "in", "out", "ints", "ints", "ints", "value")
    with _superword_vectorization():
        return compile_generated(source, name, sys.modules[__name__], signature, fastmath={"contract"})


def _gradient_source(lanes: int, terms: int) -> str:
    """Source of the filter-gradient kernel for blocks of ``terms`` kernel terms by ``lanes``
    output channels: ``dw[g, k, o] = sum over output positions p of x[p * s + offset[k]] dy[p, o]``.
    Each block's ``terms * lanes`` sums stay in vector registers along an output line (one load of
    ``lanes`` gradients and ``terms`` input broadcasts per position), then are added into ``dw``:
    a line's sum at a time, in order, whatever the thread count.  The input is read at unsigned
    offsets from each line's start (see :func:`_kernel_source`).  Work items ``start <= item < stop``
    are the (group, term block, channel block) triples; a last, partial term block repeats its last
    term and drops the copies.  Arguments: those bounds; flat ``x``, ``dy`` and ``dw`` ``(G, K, O_g)``;
    ``offsets`` and ``steps`` of :func:`_layout`; ``shape`` = ``(N, OD, OH, OW, G, C_g, O_g)``; ``zero``."""
    sums, body = _register_sums(terms, lanes)
    body += ["line_x = x[x_line:]", "corner = np.uint64(0)", "for ow in range(OW):"]
    body += [f"    gp = dy[dy_line + ow * channels:][:{lanes}]"]
    body += [f"    d{lane} = gp[{lane}]" for lane in range(lanes)]
    for j in range(terms):
        body.append(f"    x{j} = line_x[corner + o{j}]")
        body += [f"    {sums[j][lane]} += x{j} * d{lane}" for lane in range(lanes)]
    body.append("    corner += unsigned_step")
    for j in range(terms):
        body.append(f"if {j} < count:")
        body.append(f"    row = dw[(g * terms + k0 + {j}) * out_per_group + c0:][:{lanes}]")
        body += [f"    row[{lane}] += {sums[j][lane]}" for lane in range(lanes)]
    term_offsets = "\n".join(f"        o{j} = np.uint64(offsets[min(k0 + {j}, terms - 1)] + g * in_per_group)" for j in range(terms))
    indent = " " * 12
    return f"""
def kernel(start, stop, x, dy, dw, offsets, steps, shape, zero):
    N, OD, OH, OW = shape[0], shape[1], shape[2], shape[3]
    groups, in_per_group, out_per_group = shape[4], shape[5], shape[6]
    terms, channels, unsigned_step = offsets.size, groups * out_per_group, np.uint64(steps[3])
    term_blocks, channel_blocks = (terms + {terms - 1}) // {terms}, out_per_group // {lanes}
    for item in range(start, stop):
        g, k0 = item // (term_blocks * channel_blocks), item // channel_blocks % term_blocks * {terms}
        c0, count = item % channel_blocks * {lanes}, min({terms}, terms - k0)
{term_offsets}
        for line in range(N * OD * OH):
            n, od, oh = line // (OD * OH), line // OH % OD, line % OH
            x_line = n * steps[0] + od * steps[1] + oh * steps[2]
            dy_line = line * OW * channels + g * out_per_group + c0
""" + "\n".join(indent + line for line in body) + "\n"
