"""``gemm``: im2col + one BLAS matrix product per block of output positions.

For a block of ``M`` output positions, the windows of all ``K`` kernel taps are copied side by side
into a column matrix ``cols`` of shape ``(groups, M, K * C_g)`` (column order: tap, then channel,
matching the kernel flattened as ``(groups, K * C_g, O_g)``) — one copy of an overlapping strided
view per group and block, so each row of ``cols`` is written in one pass — and

    y_block = cols @ w            # (groups, M, O_g)
    dcols   = dy_block @ w.T      # backward_input: scattered back onto the windows (col2im)
    dw     += cols.T @ dy_block   # backward_weight

A 1x1 kernel at stride 1 needs no copy at all: the input block is its own column matrix.

Memory: blocks are sized so ``cols`` stays under the input + output size, capped at
``COLS_BUDGET_BYTES`` (16 MiB) with a 1 MiB floor, so the extra memory of a call is at most one
padded copy of the input (two with groups: im2col reads a group-major copy), the output, and
that budget — never a full im2col matrix (PyTorch issue 31655 reports 90 GiB for one).

Threads: the blocks of the forward and of the filter gradient are shared among npconv's threads
(:func:`~npconv._threads.run_claimed_products`: each thread with its own column buffer, BLAS on one
thread each), so the copies run in parallel too and a thread slowed by another program claims
fewer blocks; a block's columns then take a ``BLOCK_SHARES``-th of the budget.  The filter gradient
sums its blocks in ``GRADIENT_LANES`` fixed lanes (block ``i`` in lane ``i % GRADIENT_LANES``),
added in lane order, so its result does not depend on the thread count.  The input gradient's
blocks add onto overlapping windows: they are shared among the threads only when each covers
whole samples, else they run on one thread (BLAS too).
"""

from __future__ import annotations

import math

import numpy as np

from .._spec import ConvSpec
from .._threads import PARALLEL_FLOPS, blas_on_one_thread, run_claimed_products
from ._common import copy_seconds, gemm_seconds, io_bytes, output_chunks, tap_window, taps, windows

COLS_BUDGET_BYTES = 16 * 2**20
MIN_COLS_BYTES = 2**20
PLANAR_MAX_CHANNELS = 16
WINDOW_COPY_BYTES_PER_S = 1.2e10  # im2col copying every window of a block at once (measured 11-16 GB/s)
BLOCK_SHARES = 4  # blocks of a fourth of the column budget: at least as many as threads on small machines
GRADIENT_LANES = 4  # the filter gradient's partial sums (more threads than lanes: the rest idle)


def _cols_budget(spec: ConvSpec) -> int:
    """Bytes of one block's columns: for work shared among threads (``PARALLEL_FLOPS`` or more), a
    ``BLOCK_SHARES``-th of the budget (one buffer per thread), whatever the thread count, so that
    the blocks, and so the results, do not depend on it; else all of it (fewer, larger blocks)."""
    whole = min(COLS_BUDGET_BYTES, max(MIN_COLS_BYTES, io_bytes(spec)))
    return whole if spec.flops < PARALLEL_FLOPS else max(MIN_COLS_BYTES // BLOCK_SHARES, whole // BLOCK_SHARES)


def _position_bytes(spec: ConvSpec) -> int:
    """Bytes per output position of a block: its row of columns and its outputs."""
    return (spec.taps * spec.in_channels + spec.out_channels) * spec.item_bytes()


def _padded_input_bytes(spec: ConvSpec) -> int:
    return spec.batch * math.prod(spec.padded_spatial) * spec.in_channels * spec.item_bytes()


def _chunks(spec: ConvSpec):
    return output_chunks(spec, _position_bytes(spec), _cols_budget(spec))


def _block_shape(batch_range: slice, ranges, spec: ConvSpec) -> tuple[int, ...]:
    nb = len(range(*batch_range.indices(spec.batch)))
    return (nb, *(stop - start for start, stop in ranges))


def _grouped_rows(block: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(nb, *blk, G * c)`` -> ``(G, M, c)`` (a view when G == 1)."""
    rows = block.reshape(-1, spec.groups, block.shape[-1] // spec.groups)
    return rows.transpose(1, 0, 2)


def _no_copy(spec: ConvSpec) -> bool:
    """1x1 at stride 1: the input block already is the column matrix."""
    return spec.taps == 1 and all(s == 1 for s in spec.stride) and spec.padded_spatial == spec.out_spatial


def _im2col(source: np.ndarray, spec: ConvSpec, batch_range: slice, ranges, buffer: np.ndarray) -> np.ndarray:
    """Column matrix ``(G, M, K * C_g)`` of one block, from the :func:`_im2col_source` of the input,
    written into the start of ``buffer`` (one allocation reused by every block: a fresh one per block
    costs its page faults again, ~30% of the copy)."""
    block = _block_shape(batch_range, ranges, spec)
    if _no_copy(spec):
        return source[(slice(None), *_block_key(batch_range, ranges))].reshape(spec.groups, -1, spec.in_per_group)
    if spec.in_per_group == 1:  # tap-major (G, K, M), returned transposed: each tap's copy is
        # then contiguous rows on both sides (2x faster than writing every K-th number)
        cols = buffer[: spec.groups * spec.taps * math.prod(block)].reshape(spec.groups, spec.taps, *block)
        channels = np.moveaxis(source[..., 0], 0, -1)  # (N, *padded, G): the input itself
        for i, tap in enumerate(taps(spec)):
            cols[:, i] = np.moveaxis(tap_window(channels, spec, tap, ranges, batch_range), -1, 0)
        return cols.reshape(spec.groups, spec.taps, -1).transpose(0, 2, 1)
    # All taps in one copy per group: tap by tap, each cache line of ``cols`` would be filled in
    # ``K`` separate passes (measured 2-4x slower for 3 to 64 channels per group).
    shape = (spec.groups, *block, *spec.kernel_spatial, spec.in_per_group)
    cols = buffer[: math.prod(shape)].reshape(shape)
    for g in range(spec.groups):
        cols[g] = windows(source[g], spec, ranges, batch_range)
    return cols.reshape(spec.groups, math.prod(block), spec.taps * spec.in_per_group)


def _group_major(spec: ConvSpec) -> bool:
    """Whether im2col reads a group-major copy of the input: each group's channels are then
    adjacent to the next pixel's, so the taps along the last dim form longer contiguous runs
    (measured 1.5x faster for 8 groups of 16)."""
    return spec.groups > 1 and spec.in_per_group > 1


def _im2col_source(xp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The input as :func:`_im2col` reads it: ``(G, N, *padded, C_g)``, a view (one group or one
    channel per group) or a group-major copy."""
    xg = np.moveaxis(xp.reshape(*xp.shape[:-1], spec.groups, spec.in_per_group), -2, 0)
    return np.ascontiguousarray(xg) if _group_major(spec) else xg


def _kernel_matrix(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    return w.reshape(spec.groups, spec.taps * spec.in_per_group, spec.out_per_group)


def _block_key(batch_range: slice, ranges) -> tuple:
    return (batch_range, *(slice(start, stop) for start, stop in ranges))


def _block_buffer(spec: ConvSpec, chunks: list) -> np.ndarray:
    """Room for the largest (the first) block's column matrix, reused by every block."""
    positions = math.prod(_block_shape(*chunks[0], spec)) if chunks else 0
    return np.empty(positions * spec.taps * spec.in_channels, spec.dtype)


def _cols_buffer(spec: ConvSpec, chunks: list) -> np.ndarray:
    """:func:`_block_buffer` for im2col; empty when no copy is needed."""
    return np.empty(0, spec.dtype) if _no_copy(spec) else _block_buffer(spec, chunks)


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    out = np.empty((spec.batch, *spec.out_spatial, spec.out_channels), spec.dtype)
    source, wmat, chunks = _im2col_source(xp, spec), _kernel_matrix(w, spec), list(_chunks(spec))

    def blocks(indices):
        buffer = _cols_buffer(spec, chunks)
        for index in indices:
            batch_range, ranges = chunks[index]
            # A block spans whole trailing dims, so it is contiguous: the product is written in place.
            target = out[_block_key(batch_range, ranges)].reshape(-1, spec.groups, spec.out_per_group)
            np.matmul(_im2col(source, spec, batch_range, ranges, buffer), wmat, out=target.transpose(1, 0, 2))

    run_claimed_products(blocks, spec.flops, len(chunks))
    return out


def _planar_col2im(spec: ConvSpec) -> bool:
    """Whether col2im accumulates ``dx`` channel-planar (for 2 to ``PLANAR_MAX_CHANNELS`` channels
    per group: channels-last, each tap's addition would run ``C_g`` numbers at a time)."""
    return 1 < spec.in_per_group <= PLANAR_MAX_CHANNELS


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """col2im: per block ``dcols = dy @ w.T``, each tap's columns added onto its windows of ``dx``.

    For few channels per group, ``dcols = w @ dy.T`` (tap, channel, position) and ``dx`` is
    accumulated channel-planar, ``(G, C_g, N, *padded)``: every addition then runs along a row of
    positions (measured 3x faster for 7x7 stride 2 on 3 channels, 1.2x for 16 channels per group;
    slower from 32 channels on, where the final channels-last copy costs more than it saves)."""
    planar = _planar_col2im(spec)
    if planar:
        planes = np.zeros((spec.groups, spec.in_per_group, spec.batch, *spec.padded_spatial), spec.dtype)
        dx = np.moveaxis(planes, (0, 1), (-2, -1))  # (N, *padded, G, C_g), a view
    else:
        dx = np.zeros((spec.batch, *spec.padded_spatial, spec.groups, spec.in_per_group), spec.dtype)
    w_cols = _kernel_matrix(w, spec)  # (G, K * C_g, O_g)
    chunks = list(_chunks(spec))

    def blocks(indices):
        buffer = _block_buffer(spec, chunks)  # for dcols
        for index in indices:
            batch_range, ranges = chunks[index]
            block = _block_shape(batch_range, ranges, spec)
            dy_rows = _grouped_rows(dy[_block_key(batch_range, ranges)], spec)  # (G, M, O_g)
            k, m = spec.taps * spec.in_per_group, dy_rows.shape[1]
            if planar:  # -> (K, *block, G, C_g) views
                dcols = np.matmul(w_cols, dy_rows.transpose(0, 2, 1), out=buffer[: spec.groups * k * m].reshape(spec.groups, k, m))
                by_tap = np.moveaxis(dcols.reshape(spec.groups, spec.taps, spec.in_per_group, *block), (1, 0, 2), (0, -2, -1))
            else:
                dcols = np.matmul(dy_rows, w_cols.transpose(0, 2, 1), out=buffer[: spec.groups * m * k].reshape(spec.groups, m, k))
                by_tap = np.moveaxis(dcols.reshape(spec.groups, *block, spec.taps, spec.in_per_group), (-2, 0), (0, -2))
            for i, tap in enumerate(taps(spec)):  # overlapping windows accumulate
                window = tap_window(dx, spec, tap, ranges, batch_range)
                window += by_tap[i]

    whole_samples = all(ranges == tuple((0, n) for n in spec.out_spatial) for _, ranges in chunks)
    if whole_samples:  # no two blocks add onto the same window
        run_claimed_products(blocks, spec.flops, len(chunks))
    else:
        with blas_on_one_thread():
            blocks(range(len(chunks)))
    return np.ascontiguousarray(dx).reshape(spec.batch, *spec.padded_spatial, spec.in_channels)


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    source, chunks = _im2col_source(xp, spec), list(_chunks(spec))
    lanes = np.zeros((max(1, min(GRADIENT_LANES, len(chunks))), spec.groups, spec.taps * spec.in_per_group, spec.out_per_group), spec.dtype)

    def lane_sums(indices):
        buffer = _cols_buffer(spec, chunks)
        for lane in indices:
            for batch_range, ranges in chunks[lane :: len(lanes)]:
                cols = _im2col(source, spec, batch_range, ranges, buffer)
                lanes[lane] += np.matmul(cols.transpose(0, 2, 1), _grouped_rows(dy[_block_key(batch_range, ranges)], spec))

    run_claimed_products(lane_sums, spec.flops, len(lanes))
    dw = lanes[0]
    for lane in lanes[1:]:
        dw += lane
    return dw.reshape(spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group)


def workspace_bytes(spec: ConvSpec, direction: str = "forward") -> int:
    """Largest column block (bounded by the column budget, or one output position if larger), plus
    the group-major input copy (forward, filter gradient) or the padded ``dx`` accumulator (input
    gradient; twice when channel-planar: the final channels-last copy)."""
    per_position = _position_bytes(spec)
    cols = min(spec.output_positions * per_position, max(_cols_budget(spec), per_position))
    if direction == "backward_input":
        return cols + _padded_input_bytes(spec) * (2 if _planar_col2im(spec) else 1)
    return cols + (_padded_input_bytes(spec) if _group_major(spec) else 0)


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    """Seconds: the products (thin per-group matrices are slower), the im2col copy (at streaming
    speed when each position's windows are copied at once; for one channel per group, tap by tap
    into tap-major columns), col2im for ``backward_input`` (adds of ``C_g`` numbers at a time, or
    along rows of positions and then a channels-last copy of ``dx``), and a per-block, per-tap
    Python overhead."""
    item = spec.item_bytes()
    k, positions = spec.taps * spec.in_per_group, spec.output_positions
    if direction == "backward_input":  # (M, O_g) @ (O_g, K)
        products = gemm_seconds(positions, spec.out_per_group, k, spec.dtype, spec.groups)
    elif direction == "backward_weight":  # (K, M) @ (M, O_g), M split into blocks
        products = gemm_seconds(k, positions, spec.out_per_group, spec.dtype, spec.groups)
    else:
        products = gemm_seconds(positions, k, spec.out_per_group, spec.dtype, spec.groups)
    copy_bytes = 0 if _no_copy(spec) else positions * spec.taps * spec.in_channels * item
    if direction == "backward_input" and _planar_col2im(spec):  # adds along rows, then the copy of dx
        row = spec.out_spatial[-1] * item // spec.stride[-1]
        copy = copy_seconds(2 * copy_bytes, row) + copy_seconds(_padded_input_bytes(spec), item)
    elif direction == "backward_input":  # adds of C_g numbers at a time
        copy = copy_seconds(2 * copy_bytes, spec.in_per_group * item)
    elif spec.in_per_group == 1:  # tap by tap: rows of positions, contiguous in the input at stride 1 with one group
        row = spec.out_spatial[-1] * item if spec.groups == 1 and spec.stride[-1] == 1 else item
        copy = copy_seconds(copy_bytes, row)
    else:
        copy = copy_bytes / WINDOW_COPY_BYTES_PER_S
        if _group_major(spec):
            copy += copy_seconds(_padded_input_bytes(spec), spec.in_per_group * item)
    blocks = max(1, copy_bytes // _cols_budget(spec))
    return products + copy + blocks * spec.taps * 5e-6 + 4e-5  # and the BLAS scope, ~10 us
