"""``gemm``: im2col + one BLAS matrix product per block of output positions.

For a block of ``M`` output positions, the windows of all ``K`` kernel taps are copied side by side
into a column matrix ``cols`` of shape ``(groups, M, K * C_g)`` (column order: tap, then channel,
matching the kernel flattened as ``(groups, K * C_g, O_g)``), and

    y_block = cols @ w            # (groups, M, O_g)
    dcols   = dy_block @ w.T      # backward_input: scattered back onto the windows (col2im)
    dw     += cols.T @ dy_block   # backward_weight

A 1x1 kernel at stride 1 needs no copy at all: the input block is its own column matrix.

Memory: blocks are sized so ``cols`` stays under the input + output size, capped at
``COLS_BUDGET_BYTES`` (16 MiB) with a 1 MiB floor, so the extra memory of a call is at most one
padded copy of the input (two with groups: im2col reads a group-major copy), the output, and
that budget — never a full im2col matrix (PyTorch issue 31655 reports 90 GiB for one).
"""

from __future__ import annotations

import math

import numpy as np

from .._spec import ConvSpec
from ._common import copy_seconds, gemm_seconds, io_bytes, output_chunks, tap_window, taps

COLS_BUDGET_BYTES = 16 * 2**20
MIN_COLS_BYTES = 2**20


def _cols_budget(spec: ConvSpec) -> int:
    return min(COLS_BUDGET_BYTES, max(MIN_COLS_BYTES, io_bytes(spec)))


def _chunks(spec: ConvSpec):
    per_position = (spec.taps * spec.in_channels + spec.out_channels) * spec.item_bytes()
    return output_chunks(spec, per_position, _cols_budget(spec))


def _block_shape(batch_range: slice, ranges, spec: ConvSpec) -> tuple[int, ...]:
    nb = len(range(*batch_range.indices(spec.batch)))
    return (nb, *(stop - start for start, stop in ranges))


def _grouped_rows(block: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(nb, *blk, G * c)`` -> ``(G, M, c)`` (a view when G == 1)."""
    rows = block.reshape(-1, spec.groups, block.shape[-1] // spec.groups)
    return rows.transpose(1, 0, 2)


def _im2col(source: np.ndarray, spec: ConvSpec, batch_range: slice, ranges) -> np.ndarray:
    """Column matrix ``(G, M, K * C_g)`` of one block, from the :func:`_im2col_source` of the input."""
    block = _block_shape(batch_range, ranges, spec)
    if _row_runs(spec):
        return _im2col_rows(source, spec, batch_range, ranges, block)
    if spec.taps == 1 and all(s == 1 for s in spec.stride) and spec.padded_spatial == spec.out_spatial:
        # 1x1 at stride 1: the input block already is the column matrix (a view, no copy).
        return np.moveaxis(source[_block_key(batch_range, ranges)], -2, 0).reshape(spec.groups, -1, spec.in_per_group)
    cols = np.empty((spec.groups, *block, spec.taps, spec.in_per_group), spec.dtype)
    for i, tap in enumerate(taps(spec)):
        cols[..., i, :] = np.moveaxis(tap_window(source, spec, tap, ranges, batch_range), -2, 0)
    return cols.reshape(spec.groups, math.prod(block), spec.taps * spec.in_per_group)


def _row_runs(spec: ConvSpec) -> bool:
    """Whether im2col copies one run of ``kw * C_g`` input elements per kernel row (the taps along
    the last spatial dim, when not dilated there, read adjacent elements of a group-major input)
    instead of ``kw`` runs of ``C_g``: 2-3x faster for few channels per group (measured; for
    ``C_g == 1`` NumPy's strided copy of single elements is faster still)."""
    return spec.dilation[-1] == 1 and spec.in_per_group > 1 and spec.kernel_spatial[-1] > 1


def _im2col_source(xp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The input as :func:`_im2col` reads it: ``(N, *padded, G, C_g)`` tap by tap, or group-major
    ``(G, N, *padded, C_g)`` in row runs (a view for one group, else one copy of the input)."""
    xg = xp.reshape(*xp.shape[:-1], spec.groups, spec.in_per_group)
    if not _row_runs(spec):
        return xg
    return np.ascontiguousarray(np.moveaxis(xg, -2, 0))


def _im2col_rows(source: np.ndarray, spec: ConvSpec, batch_range: slice, ranges, block) -> np.ndarray:
    """:func:`_im2col` in row runs: for each group and kernel row (all taps but the last dim's),
    the windows of the row's ``kw`` adjacent taps are one overlapping strided view
    ``(*block, kw * C_g)`` of the group-major input."""
    run = spec.kernel_spatial[-1] * spec.in_per_group
    rows = spec.taps // spec.kernel_spatial[-1]
    cols = np.empty((spec.groups, *block, rows, run), spec.dtype)
    for g in range(spec.groups):
        for i, row in enumerate(np.ndindex(*spec.kernel_spatial[:-1])):
            first_tap = tap_window(source[g], spec, (*row, 0), ranges, batch_range)  # (*block, C_g)
            strides = (*first_tap.strides[:-1], first_tap.itemsize)
            cols[g, ..., i, :] = np.lib.stride_tricks.as_strided(first_tap, (*block, run), strides, writeable=False)
    return cols.reshape(spec.groups, math.prod(block), spec.taps * spec.in_per_group)


def _kernel_matrix(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    return w.reshape(spec.groups, spec.taps * spec.in_per_group, spec.out_per_group)


def _block_key(batch_range: slice, ranges) -> tuple:
    return (batch_range, *(slice(start, stop) for start, stop in ranges))


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    out = np.empty((spec.batch, *spec.out_spatial, spec.out_channels), spec.dtype)
    source, wmat = _im2col_source(xp, spec), _kernel_matrix(w, spec)
    for batch_range, ranges in _chunks(spec):
        # A block spans whole trailing dims, so it is contiguous: the product is written in place.
        target = out[_block_key(batch_range, ranges)].reshape(-1, spec.groups, spec.out_per_group)
        np.matmul(_im2col(source, spec, batch_range, ranges), wmat, out=target.transpose(1, 0, 2))
    return out


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    dxg = np.zeros((spec.batch, *spec.padded_spatial, spec.groups, spec.in_per_group), spec.dtype)
    w_t = _kernel_matrix(w, spec).transpose(0, 2, 1)  # (G, O_g, K * C_g)
    for batch_range, ranges in _chunks(spec):
        block = _block_shape(batch_range, ranges, spec)
        dy_rows = _grouped_rows(dy[_block_key(batch_range, ranges)], spec)
        dcols = np.matmul(dy_rows, w_t).reshape(spec.groups, *block, spec.taps, spec.in_per_group)
        for i, tap in enumerate(taps(spec)):  # col2im: overlapping windows accumulate
            window = tap_window(dxg, spec, tap, ranges, batch_range)
            window += np.moveaxis(dcols[..., i, :], 0, -2)
    return dxg.reshape(*dxg.shape[:-2], spec.in_channels)


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    dw = np.zeros((spec.groups, spec.taps * spec.in_per_group, spec.out_per_group), spec.dtype)
    source = _im2col_source(xp, spec)
    for batch_range, ranges in _chunks(spec):
        cols = _im2col(source, spec, batch_range, ranges)
        dw += np.matmul(cols.transpose(0, 2, 1), _grouped_rows(dy[_block_key(batch_range, ranges)], spec))
    return dw.reshape(spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group)


def workspace_bytes(spec: ConvSpec) -> int:
    """Largest column block (bounded by the column budget, or one output position if larger),
    plus the group-major input copy when im2col runs in rows over several groups."""
    per_position = (spec.taps * spec.in_channels + spec.out_channels) * spec.item_bytes()
    cols = min(spec.output_positions * per_position, max(_cols_budget(spec), per_position))
    group_major = spec.batch * math.prod(spec.padded_spatial) * spec.in_channels * spec.item_bytes()
    return cols + (group_major if _row_runs(spec) and spec.groups > 1 else 0)


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    """Seconds: the products (thin per-group matrices are slower), the im2col copy (its speed grows
    with the channels per group, the length of each contiguous run; col2im for ``backward_input``
    adds as well as copies), and a per-block, per-tap Python overhead."""
    item = spec.item_bytes()
    k, positions = spec.taps * spec.in_per_group, spec.output_positions
    if direction == "backward_input":  # (M, O_g) @ (O_g, K)
        products = gemm_seconds(positions, spec.out_per_group, k, spec.dtype, spec.groups)
    elif direction == "backward_weight":  # (K, M) @ (M, O_g), M split into blocks
        products = gemm_seconds(k, positions, spec.out_per_group, spec.dtype, spec.groups)
    else:
        products = gemm_seconds(positions, k, spec.out_per_group, spec.dtype, spec.groups)
    no_copy = spec.taps == 1 and all(s == 1 for s in spec.stride) and spec.padded_spatial == spec.out_spatial
    copy_bytes = 0 if no_copy else positions * spec.taps * spec.in_channels * item
    rows = _row_runs(spec) and direction != "backward_input"  # col2im adds tap by tap
    run_bytes = spec.in_per_group * item * (spec.kernel_spatial[-1] if rows else 1)
    copy = copy_seconds(copy_bytes, run_bytes) * (2 if direction == "backward_input" else 1)
    if rows and spec.groups > 1:  # the group-major copy of the input
        copy += copy_seconds(spec.batch * math.prod(spec.padded_spatial) * spec.in_channels * item, spec.in_per_group * item)
    blocks = max(1, copy_bytes // _cols_budget(spec))
    return products + copy + blocks * spec.taps * 5e-6 + 3e-5
