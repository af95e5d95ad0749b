"""``winograd``: minimal-filtering F(4x4, 3x3) (``winograd_2x2``: F(2x2, 3x3)); 1-D F(4, 3) / F(2, 3).

Winograd's algorithm computes an ``m``-long output tile of a correlation with an ``r``-tap kernel
from an ``alpha = m + r - 1``-long input tile with ``alpha`` multiplications instead of ``m * r``:

    y = A^T [ (G g) * (B^T d) ]                       (1-D, ``*`` elementwise)
    Y = A^T [ (G g G^T) * (B^T d B) ] A               (2-D)

The matrices come from Toom-Cook polynomial multiplication at ``alpha`` interpolation points
(:func:`transforms`): a correlation is the transpose of a linear convolution ``s = g(x) h(x)``,
which Toom-Cook computes as ``s = V^-1 [(V_r g) * (V_m h)]`` with ``V_n`` the Vandermonde matrix
of the points (the point at infinity reads a polynomial's leading coefficient).  Transposing gives
``A^T = V_m^T``, ``G = V_r`` and ``B^T = (V^-1)^T``; each row of ``B^T`` is then rescaled to small
integers (the inverse scale moves into ``G``), as in Lavin & Gray (2016).  Seed 003 prints this
``B^T`` and ``A^T`` as ``B`` and ``A``: see the README's errata.

Across channels the elementwise product becomes a matrix product: for each of the ``alpha^2``
transformed positions ``xi``, ``M[xi] = V[xi] @ U[xi]`` with ``V[xi]`` of shape (tiles, C) and
``U[xi]`` of shape (C, O) — ``alpha^2`` GEMMs with ``m^2 r^2 / alpha^2`` times fewer FLOPs than
direct convolution (4x for F(4x4, 3x3), 2.25x for F(2x2, 3x3)).  The tile transforms are GEMMs
too, with the Kronecker products ``B^T (x) B^T`` and ``A^T (x) A^T``; tiles are processed in blocks
of bounded size so the working set stays small.

Gradients: ``backward_input`` of a stride-1 correlation is the forward correlation of ``dy``
zero-padded by ``r - 1`` with the kernel rotated 180 degrees and its channel axes swapped
(``_common.backward_input_as_forward``), run by the same forward.  ``backward_weight`` is the exact adjoint of the forward's kernel path:
``dU[xi] = V[xi]^T @ dM[xi]`` with ``dM = (A (x) A) dY`` summed over tiles, then ``dg = G^T dU G``.

Accuracy in float32 (max error relative to max |y|, against float64, random N(0, 1) data, 16-256
input channels, measured for forward / backward_input / backward_weight): ``gemm`` 1e-7 - 6e-7;
F(2x2, 3x3) 2e-7 - 8e-7, like ``gemm``; F(4x4, 3x3) 4e-6 - 1.1e-5, 10-20x larger (the points
+-2 put 4s, 5s and 8s into its transforms), growing slowly with the channel count.  float64: about
1e-15.  Both stay well within the library's float32 tolerance of 1e-4 (tests/test_winograd.py).

NaN/Inf: a transform mixes a whole tile, so a result holding a non-finite value is recomputed by
``gemm`` (detected by one sum over the result), keeping NaN/Inf local to their receptive field.

Eligible: 1-D and 2-D, kernel 3 (3x3), stride 1, dilation 1, any groups.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from .._spec import ConvSpec
from . import gemm
from ._common import adjoint_spec, backward_input_as_forward, copy_seconds, gemm_seconds, io_bytes

KERNEL = 3
# Interpolation points for alpha - 1 finite points (the last point is infinity).
POINTS = {2: (0, 1, -1), 4: (0, 1, -1, 2, -2)}
BLOCK_BYTES = 4 * 2**20  # cap on one tile buffer (transformed input or product) per block
MIN_BLOCK_BYTES = 2**18
MIN_BLOCK_TILES = 64
CACHED_BYTES_PER_S = 4e10  # read-modify-write of dU, which stays in L2/L3


def _vandermonde(points, columns: int) -> list[list[Fraction]]:
    """Rows ``[p^0, ..., p^(columns-1)]`` per finite point, then ``[0, ..., 0, 1]`` for infinity."""
    rows = [[Fraction(p) ** j for j in range(columns)] for p in points]
    return rows + [[Fraction(0)] * (columns - 1) + [Fraction(1)]]


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact Gauss-Jordan inverse."""
    n = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [row[n:] for row in rows]


@lru_cache(maxsize=None)
def transforms(m: int, r: int = KERNEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B^T, G, A^T)`` of F(m, r), float64 of shapes ``(alpha, alpha)``, ``(alpha, r)``,
    ``(m, alpha)`` with ``alpha = m + r - 1``, generated from the interpolation points.

    >>> BT, G, AT = transforms(2)
    >>> BT.astype(int).tolist()
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]
    >>> G.tolist()
    [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]
    >>> d, g = np.arange(4.0), np.array([1.0, 2.0, -1.0])
    >>> AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid")
    (array([0., 2.]), array([0., 2.]))
    """
    alpha = m + r - 1
    points = POINTS[m][: alpha - 1]
    inverse = _inverse(_vandermonde(points, alpha))
    bt = [list(col) for col in zip(*inverse)]  # B^T = (V^-1)^T
    g = _vandermonde(points, r)
    for row in range(alpha):  # scale B^T's rows to coprime integers, compensate in G
        scale = math.lcm(*(v.denominator for v in bt[row]))
        scale = Fraction(scale, math.gcd(*(int(v * scale) for v in bt[row])))
        bt[row] = [v * scale for v in bt[row]]
        g[row] = [v / scale for v in g[row]]
    at = [list(col) for col in zip(*_vandermonde(points, m))]  # A^T = V_m^T
    return tuple(np.array(a, dtype=np.float64) for a in (bt, g, at))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Transforms of one tile size for a rank, as Kronecker products over the spatial dims."""

    m: int
    rank: int
    bt: np.ndarray  # (alpha^R, alpha^R): tile -> transformed tile
    g: np.ndarray  # (alpha^R, r^R): kernel -> transformed kernel
    at: np.ndarray  # (m^R, alpha^R): transformed product -> output tile

    @property
    def alpha(self) -> int:
        return self.m + KERNEL - 1


@lru_cache(maxsize=None)
def _plan(m: int, rank: int, dtype: np.dtype) -> _Plan:
    bt, g, at = transforms(m)
    kron = [bt, g, at]
    for _ in range(rank - 1):
        kron = [np.kron(a, b) for a, b in zip(kron, (bt, g, at))]
    return _Plan(m, rank, *(a.astype(dtype) for a in kron))


def _tiles_per_dim(spec: ConvSpec, m: int) -> tuple[int, ...]:
    return tuple(-(-o // m) for o in spec.out_spatial)


def _transformed_kernel(w: np.ndarray, plan: _Plan, spec: ConvSpec) -> np.ndarray:
    """``U = (G (x) G) g``: ``(G, *k, C_g, O_g)`` -> ``(alpha^R, G, C_g, O_g)``."""
    flat = w.reshape(spec.groups, KERNEL**plan.rank, -1).transpose(1, 0, 2)
    u = plan.g @ flat.reshape(KERNEL**plan.rank, -1)
    return u.reshape(-1, spec.groups, spec.in_per_group, spec.out_per_group)


def _extended(array: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """``array`` (N, *S, C) zero-extended at the end of each spatial dim to ``spatial`` (no copy if
    it already has that size)."""
    if array.shape[1:-1] == tuple(spatial):
        return array
    out = np.zeros((array.shape[0], *spatial, array.shape[-1]), array.dtype)
    out[(slice(None), *(slice(0, n) for n in array.shape[1:-1]))] = array
    return out


def _tile_view(xe: np.ndarray, m: int, alpha: int, tiles: tuple[int, ...]) -> np.ndarray:
    """Overlapping ``alpha``-tiles at stride ``m``: ``(N, *tiles, *[alpha]*R, C)`` (a view)."""
    strides = xe.strides
    spatial = strides[1:-1]
    return np.lib.stride_tricks.as_strided(
        xe,
        shape=(xe.shape[0], *tiles, *[alpha] * len(tiles), xe.shape[-1]),
        strides=(strides[0], *(s * m for s in spatial), *spatial, strides[-1]),
        writeable=False,
    )


def _block_bytes(spec: ConvSpec) -> int:
    """Bytes per tile buffer: an eighth of input + output (four buffers live at once), capped."""
    return min(BLOCK_BYTES, max(MIN_BLOCK_BYTES, io_bytes(spec) // 8))


def _tiles_per_block(spec: ConvSpec, plan: _Plan) -> int:
    """Tiles per block: ``_block_bytes`` per buffer, but at least ``MIN_BLOCK_TILES``: every block
    reads the whole transformed kernel (``alpha^R`` matrices ``(C_g, O_g)``; ``backward_weight``
    also adds as much into ``dU``), and with fewer tiles than channels that traffic, not the
    products, takes the time (measured, 8x512x7x7 -> 512: forward 71 -> 14 ms, filter gradient
    152 -> 24 ms; 8x256x14x14 -> 256 forward 35 -> 20 ms)."""
    return max(MIN_BLOCK_TILES, _block_bytes(spec) // _bytes_per_tile(spec, plan))


def _bytes_per_tile(spec: ConvSpec, plan: _Plan) -> int:
    """Bytes of one transformed tile in the widest of the block buffers."""
    return plan.alpha**plan.rank * max(spec.in_channels, spec.out_channels) * spec.item_bytes()


def _largest_block(spec: ConvSpec, tiles: tuple[int, ...], budget: int) -> int:
    """Tiles in the largest block :func:`_blocks` yields (a whole first-dim row when one exceeds ``budget``)."""
    return min(spec.batch * math.prod(tiles), max(budget, math.prod(tiles[1:])))


def _blocks(spec: ConvSpec, tiles: tuple[int, ...], budget: int):
    """Yield ``(batch slice, first-dim tile slice)`` blocks of at most ``budget`` tiles (whole
    first-dim tile rows when they fit, else rows of one image)."""
    inner = math.prod(tiles[1:])
    if inner * tiles[0] <= budget:  # whole images per block
        step = max(1, budget // (inner * tiles[0]))
        for n0 in range(0, spec.batch, step):
            yield slice(n0, min(n0 + step, spec.batch)), slice(0, tiles[0])
        return
    rows = max(1, budget // inner)
    for n in range(spec.batch):
        for t0 in range(0, tiles[0], rows):
            yield slice(n, n + 1), slice(t0, min(t0 + rows, tiles[0]))


def _gathered(tiles_view: np.ndarray, rank: int) -> np.ndarray:
    """Tiles ``(nb, *tb, *[size]*R, C)`` copied in-tile-position first: ``(size^R, tiles * C)``."""
    order = (*range(rank + 1, 2 * rank + 1), *range(rank + 1), 2 * rank + 1)
    return np.ascontiguousarray(tiles_view.transpose(order)).reshape(-1, math.prod(tiles_view.shape[: rank + 1]) * tiles_view.shape[-1])


def _transformed_tiles(view: np.ndarray, plan: _Plan, block) -> np.ndarray:
    """``V = (B^T (x) B^T) d`` for the tiles of one block: ``(alpha^R, tiles_in_block * C)``."""
    return plan.bt @ _gathered(view[block], plan.rank)


def _winograd_forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    plan = _plan(m, spec.rank, spec.dtype)
    tiles = _tiles_per_dim(spec, m)
    rank, alpha, groups = spec.rank, plan.alpha, spec.groups
    xe = _extended(xp, tuple(t * m + KERNEL - 1 for t in tiles))
    view = _tile_view(xe, m, alpha, tiles)
    u = _transformed_kernel(w, plan, spec)
    out = np.empty((spec.batch, *(t * m for t in tiles), spec.out_channels), spec.dtype)
    budget = _tiles_per_block(spec, plan)
    products = np.empty(alpha**rank * _largest_block(spec, tiles, budget) * spec.out_channels, spec.dtype)
    for batch, first in _blocks(spec, tiles, budget):
        block = (batch, first)
        v = _transformed_tiles(view, plan, block).reshape(alpha**rank, -1, groups, spec.in_per_group)
        # Written tile-major, (alpha^R, T, G, O_g): what A^T multiplies, without a transposing copy.
        product = products[: v.size // spec.in_channels * spec.out_channels].reshape(alpha**rank, -1, groups, spec.out_per_group)
        np.matmul(v.transpose(0, 2, 1, 3), u, out=product.transpose(0, 2, 1, 3))
        y = plan.at @ product.reshape(alpha**rank, -1)  # (m^R, T * O)
        block_tiles = (batch.stop - batch.start, first.stop - first.start, *tiles[1:])
        y = y.reshape(*[m] * rank, *block_tiles, spec.out_channels)
        # (m, m, nb, t0, t1, O) -> (nb, t0, m, t1, m, O): interleave tile index and in-tile offset
        order = (rank, *[i for d in range(rank) for i in (rank + 1 + d, d)], 2 * rank + 1)
        target = out[batch, first.start * m : first.stop * m]
        target.reshape(block_tiles[0], *[i for t in block_tiles[1:] for i in (t, m)], -1)[...] = y.transpose(order)
    if out.shape[1:-1] != spec.out_spatial:
        out = np.ascontiguousarray(out[(slice(None), *(slice(0, o) for o in spec.out_spatial))])
    return out


def _backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    """``dU[xi] = sum over tiles V[xi]^T dM[xi]`` with ``dM = (A (x) A) dY``; ``dw = (G (x) G)^T dU``."""
    plan = _plan(m, spec.rank, spec.dtype)
    tiles = _tiles_per_dim(spec, m)
    rank, alpha, groups = spec.rank, plan.alpha, spec.groups
    view = _tile_view(_extended(xp, tuple(t * m + KERNEL - 1 for t in tiles)), m, alpha, tiles)
    dy_tiles = _tile_view(_extended(np.ascontiguousarray(dy), tuple(t * m for t in tiles)), m, m, tiles)
    du = np.zeros((alpha**rank, groups, spec.in_per_group, spec.out_per_group), spec.dtype)
    product = np.empty_like(du)  # reused by every block: a fresh large array per block costs page faults
    a = np.ascontiguousarray(plan.at.T)
    for block in _blocks(spec, tiles, _tiles_per_block(spec, plan)):
        v = _transformed_tiles(view, plan, block).reshape(alpha**rank, -1, groups, spec.in_per_group)
        dm = (a @ _gathered(dy_tiles[block], rank)).reshape(alpha**rank, -1, groups, spec.out_per_group)
        du += np.matmul(v.transpose(0, 2, 3, 1), dm.transpose(0, 2, 1, 3), out=product)
    dw = plan.g.T @ du.reshape(alpha**rank, -1)  # (k^R, G * C_g * O_g)
    dw = dw.reshape(*[KERNEL] * rank, groups, spec.in_per_group, spec.out_per_group)
    return np.ascontiguousarray(np.moveaxis(dw, rank, 0))


def _local_nonfinite(result: np.ndarray, local_algorithm, *args) -> np.ndarray:
    """``result``, or, when it holds a NaN/Inf, ``local_algorithm(*args)``: a transform mixes a
    whole tile, so a non-finite input would spread over its tile (``inf - inf``, ``0 * nan``).
    One sum (a fast reduction) detects it; the rare recomputation keeps NaN/Inf local."""
    if np.isfinite(np.add.reduce(result, axis=None)):  # also False on overflow: harmless
        return result
    return local_algorithm(*args)


def eligible(spec: ConvSpec) -> bool:
    return (
        spec.rank in (1, 2)
        and all(k == KERNEL for k in spec.kernel_spatial)
        and all(s == 1 for s in spec.stride)
        and all(d == 1 for d in spec.dilation)
    )


def _cost(spec: ConvSpec, direction: str, m: int) -> float:
    """Seconds: the alpha^R GEMMs per block (thin when few tiles or channels per group), the tile
    and kernel transforms (GEMMs with the Kronecker matrices), gathering the tiles and scattering
    the outputs."""
    if direction == "backward_input":  # the forward of the padded dy with the channels swapped
        spec = adjoint_spec(spec)
    item, rank = spec.item_bytes(), spec.rank
    positions, outputs = (m + KERNEL - 1) ** rank, m**rank
    tiles = spec.batch * math.prod(_tiles_per_dim(spec, m))
    block_tiles = max(1, min(tiles, _tiles_per_block(spec, _plan(m, rank, spec.dtype))))
    blocks = -(-tiles // block_tiles)
    count = positions * spec.groups * blocks
    if direction == "backward_weight":  # products, and adding each block's into dU (in cache)
        main = gemm_seconds(spec.in_per_group, block_tiles, spec.out_per_group, spec.dtype, count)
        main += count * spec.in_per_group * spec.out_per_group * item * 2 / CACHED_BYTES_PER_S
        output_side = gemm_seconds(positions, outputs, tiles * spec.out_channels, spec.dtype)
    else:
        main = gemm_seconds(block_tiles, spec.in_per_group, spec.out_per_group, spec.dtype, count)
        output_side = gemm_seconds(outputs, positions, tiles * spec.out_channels, spec.dtype)
    input_side = gemm_seconds(positions, positions, tiles * spec.in_channels, spec.dtype)
    gather = copy_seconds(positions * tiles * spec.in_channels * item, spec.in_channels * item)
    scatter = copy_seconds(outputs * tiles * spec.out_channels * item, spec.out_channels * item)
    kernel_side = gemm_seconds(positions, KERNEL**rank, spec.in_per_group * spec.out_channels, spec.dtype)
    return main + input_side + output_side + kernel_side + gather + scatter + blocks * 3e-5 + 5e-5


def _variant(m: int) -> SimpleNamespace:
    """The algorithm functions of the F(m^R, 3^R) variant."""

    def forward(xp, w, spec):
        return _local_nonfinite(_winograd_forward(xp, w, spec, m), gemm.forward, xp, w, spec)

    def backward_input(dy, w, spec):
        dx = backward_input_as_forward(dy, w, spec, lambda *args: _winograd_forward(*args, m))
        return _local_nonfinite(dx, gemm.backward_input, dy, w, spec)

    def backward_weight(xp, dy, spec):
        return _backward_weight(xp, dy, spec, m)

    def cost(spec, direction="forward"):
        return _cost(spec, direction, m)

    def workspace_bytes(spec):
        plan = _plan(m, spec.rank, spec.dtype)
        tiles = _largest_block(spec, _tiles_per_dim(spec, m), _tiles_per_block(spec, plan))
        blocks = tiles * _bytes_per_tile(spec, plan) * 4  # gathered tiles, V, product, output tiles
        extension = spec.batch * math.prod(t * m + KERNEL - 1 for t in _tiles_per_dim(spec, m)) * spec.in_channels
        kernel = plan.alpha**spec.rank * spec.in_per_group * spec.out_channels  # U (dU and its product buffer: twice)
        return blocks + (extension + 2 * kernel) * spec.item_bytes()

    return SimpleNamespace(
        __doc__=f"``winograd`` F({m}x{m}, 3x3) (1-D F({m}, 3)): minimal filtering on tiles, GEMMs per transformed position",
        forward=forward,
        backward_input=backward_input,
        backward_weight=backward_weight,
        cost=cost,
        eligible=eligible,
        workspace_bytes=workspace_bytes,
    )


F4X4 = _variant(4)
F2X2 = _variant(2)
