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
direct convolution (4x for F(4x4, 3x3), 2.25x for F(2x2, 3x3)).  Tiles are processed in blocks of
bounded size so the working set stays small.  The transformed kernel ``U`` is ``alpha^R / r^R`` times
the kernel (4x for F(4x4, 3x3)): beyond ``KERNEL_CHUNK_BYTES`` it is made a row of positions at a
time right before that row's products, again for every block, and the filter gradient's adjoint
is applied the same way, so neither holds a whole ``U`` or ``dU`` (8x14x14x256 -> 256, F(4x4):
workspace 14.2 -> 6.4 MB, within ``auto``'s budget of twice input + output; forward as fast,
filter gradient 17.9 -> 8.8 ms).  The tile transforms run one of two ways:

* Numba (2-D float32/float64, when ``numba`` imports; ``USE_NUMBA`` switches it): one pass per
  tile applies the 1-D transform along the tile's rows, then its columns, as straight-line code
  over the vector of channels (``_rows``; tests check each against its generated matrix).  The
  input side reads the unpadded input and treats the zero padding as implicit (no padded copy;
  the input gradient likewise comes straight from the unpadded ``dy``), the output side writes
  the cropped result.  The blocks are shared among the npconv threads (:func:`_share_blocks`),
  each with its own buffers and BLAS on one thread (8x56x56x64 -> 64 forward 7.0 -> 4.1 ms on
  two cores; the filter gradient sums fixed lanes of blocks, so results do not depend on the
  thread count).  An earlier try of this was slower in the seeds' CNN (training 0.80x against
  0.93x PyTorch): the dense layers' multi-threaded products left OpenBLAS's worker spinning on
  the second core.  They now run BLAS on one thread too (``npconv._threads.blas_on_one_thread``),
  and the CNN trains at 1.06-1.23x PyTorch.  A chunked ``U`` stays serial (two threads would need
  a chunk buffer and larger blocks each; 8x14x14x256 -> 256 ran no faster on two).
* NumPy (always there): GEMMs with the Kronecker products ``B^T (x) B^T`` and ``A^T (x) A^T`` on
  tiles gathered in-tile-position first, from the padded input.

Measured (2-core Zen 4, float32, interleaved A/B, NumPy -> Numba path, ms): 8x64x56x56 -> 64
F(4x4) forward 10.7 -> 7.9, input gradient 19 -> 8.9, filter gradient 11.8 -> 9.0; 64x32x14x14 ->
64 forward 7.0 -> 4.4; 8x128x28x28 -> 128 in 8 groups input gradient 16 -> 5.3.

Gradients: ``backward_input`` of a stride-1 correlation is the forward correlation of ``dy``
zero-padded by ``r - 1`` with the kernel rotated 180 degrees and its channel axes swapped
(``_common.backward_input_as_forward``), run by the same forward.  ``backward_weight`` is the exact adjoint of the forward's kernel path:
``dU[xi] = V[xi]^T @ dM[xi]`` with ``dM = (A (x) A) dY`` summed over tiles, then ``dg = G^T dU G``.

Accuracy in float32 (max error relative to max |y|, against float64, random N(0, 1) data, 16-256
input channels, measured for forward / backward_input / backward_weight): ``gemm`` 1e-7 - 6e-7;
F(2x2, 3x3) 2e-7 - 8e-7, like ``gemm``; F(4x4, 3x3) 4e-6 - 1.1e-5, 10-20x larger (the points
+-2 put 4s, 5s and 8s into its transforms), growing slowly with the channel count.  float64: about
1e-15.  Both stay well within the library's float32 tolerance of 1e-4 (tests/test_winograd.py).

NaN/Inf and overflow: a transform mixes a whole tile, and its sums can overflow where the exact
result does not, so a forward or input-gradient result holding a non-finite value is recomputed by
``gemm`` (the Numba output pass reports it as it writes; elsewhere one sum over the result), keeping
NaN/Inf local to their receptive field; the registry does the same for the filter gradient.

Eligible: 1-D and 2-D, kernel 3 (3x3), stride 1, dilation 1, any groups.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from .. import _padding
from .._numba import ENABLED as NUMBA_ENABLED
from .._numba import jit
from .._spec import ConvSpec
from .._threads import blas_on_one_thread, matmul_stacked, run_claimed_products, threads_for
from . import gemm
from ._common import adjoint_spec, backward_input_as_forward, copy_seconds, gemm_seconds, io_bytes, rotated_kernel

USE_NUMBA = NUMBA_ENABLED  # tests switch this off to check the NumPy path

KERNEL = 3
# Interpolation points for alpha - 1 finite points (the last point is infinity).
POINTS = {2: (0, 1, -1), 4: (0, 1, -1, 2, -2)}
BLOCK_BYTES = 4 * 2**20  # cap on one tile buffer (transformed input or product) per block
MIN_BLOCK_BYTES = 2**18
MIN_BLOCK_TILES = 64
KERNEL_CHUNK_BYTES = 2**20  # the transformed kernel is made in chunks of this size when larger
CHUNKED_BLOCK_TILES = 256
CHUNKED_BLOCK_RATIO = 1.5
KERNEL_RUN = 2048  # values per pass of the Numba kernel transform (three rows of them in L1)
# Numba tile transforms, seconds per float32 element written (measured 8x56x56x64, F(4x4, 3x3):
# input tiles 2.5 ms for 3.6M transformed values, outputs 0.8 ms for 1.6M results)
NUMBA_INPUT_SECONDS = 7e-10
NUMBA_OUTPUT_SECONDS = 5e-10
# ... and per float32 element of U (kernel transform, or its adjoint; 8x14x14x256 -> 256: 0.45 ms for 2.4M)
NUMBA_KERNEL_SECONDS = 2e-10
CACHED_BYTES_PER_S = 4e10  # read-modify-write of dU, which stays in L2/L3
# The filter gradient's further fixed steps (dU's allocation and zeroing, G^T dU G): measured
# 1x16x16x16 -> 16, 0.30 ms against 0.13 estimated without them
FILTER_GRADIENT_SECONDS = 1.5e-4
FILTER_GRADIENT_LANES = 4  # fixed runs of blocks summed apart (see _backward_weight)
# Blocks shared by two threads ran 1.6-1.8x as fast as on one (8x56x56x64 -> 64, 64x14x14x32 -> 64,
# 8x128x28x28 -> 128 in 8 groups; forward and both gradients)
PARALLEL_EFFICIENCY = 0.7


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
    g1: np.ndarray  # (alpha, r): the 1-D G, for the Numba kernel transform

    @property
    def alpha(self) -> int:
        return self.m + KERNEL - 1


@lru_cache(maxsize=None)
def _plan(m: int, rank: int, dtype: np.dtype) -> _Plan:
    bt, g, at = transforms(m)
    kron = [bt, g, at]
    for _ in range(rank - 1):
        kron = [np.kron(a, b) for a, b in zip(kron, (bt, g, at))]
    return _Plan(m, rank, *(a.astype(dtype) for a in (*kron, g)))


def _tiles_per_dim(spec: ConvSpec, m: int) -> tuple[int, ...]:
    return tuple(-(-o // m) for o in spec.out_spatial)


def _position_chunks(spec: ConvSpec, plan: _Plan) -> list[slice]:
    """Transformed positions whose kernel matrices are made and used together: all of them when
    ``U`` fits ``KERNEL_CHUNK_BYTES``, else whole rows of positions (``alpha^(R-1)`` each) up to
    that size.  A chunk of ``U`` is made right before its products and read back from cache
    (8x14x14x256 -> 256, F(4x4): all of ``U``, 9 MiB, took 0.8-1.3 ms to make at once)."""
    positions, row = plan.alpha**plan.rank, plan.alpha ** (plan.rank - 1)
    row_bytes = row * spec.groups * spec.in_per_group * spec.out_per_group * spec.item_bytes()
    size = row * max(1, KERNEL_CHUNK_BYTES // row_bytes)
    return [slice(p, min(p + size, positions)) for p in range(0, positions, size)]


def _chunk_elements(spec: ConvSpec, chunks: list[slice]) -> int:
    """Elements of the largest chunk of ``U`` (or of the filter gradient's product)."""
    return (chunks[0].stop - chunks[0].start) * spec.groups * spec.in_per_group * spec.out_per_group


def _kernel_taps(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(G, *k, C_g, O_g)`` -> ``(G, taps, C_g, O_g)``, C-contiguous (once per call: every chunk reads it)."""
    return np.ascontiguousarray(w.reshape(spec.groups, KERNEL**spec.rank, spec.in_per_group, spec.out_per_group))


def _chunk_view(buffer: np.ndarray, spec: ConvSpec, chunk: slice) -> np.ndarray:
    """The start of ``buffer`` as ``(G, positions in chunk, C_g, O_g)``: a chunk of ``U`` or ``dU``."""
    count = chunk.stop - chunk.start
    return buffer[: _chunk_elements(spec, [chunk])].reshape(spec.groups, count, spec.in_per_group, spec.out_per_group)


def _transformed_kernel(taps: np.ndarray, plan: _Plan, spec: ConvSpec, chunk: slice, out: np.ndarray) -> np.ndarray:
    """``U = (G (x) G) g`` at the transformed positions ``chunk``, in ``out``'s memory: ``taps``
    (:func:`_kernel_taps`) -> ``(G, positions, C_g, O_g)``.  Numba: ``G`` along the kernel's rows,
    then its columns, as 3-term vector sums (8x14x14x256 -> 256, F(4x4): 0.4-0.5 ms for all of
    ``U`` against 0.6-0.9 ms for one BLAS product with the 36 x 9 matrix)."""
    u = _chunk_view(out, spec, chunk)
    if _numba_handles(spec):
        _transform_kernel_rows(plan.g1, taps, chunk.start // plan.alpha, chunk.stop // plan.alpha, u)
    else:
        np.matmul(plan.g[chunk], taps.reshape(*taps.shape[:2], -1), out=u.reshape(*u.shape[:2], -1))
    return u


def _add_filter_gradient(product: np.ndarray, plan: _Plan, spec: ConvSpec, chunk: slice, dw: np.ndarray) -> None:
    """``dw += (G (x) G)[chunk]^T dU[chunk]`` for ``product = dU[chunk]`` ``(G, positions, C_g,
    O_g)``: the adjoint of :func:`_transformed_kernel` (Numba: along columns, then rows)."""
    if _numba_handles(spec):
        _add_kernel_rows_adjoint(plan.g1, product, chunk.start // plan.alpha, chunk.stop // plan.alpha, dw)
    else:
        dw.reshape(*dw.shape[:2], -1)[...] += np.matmul(plan.g[chunk].T, product.reshape(*product.shape[:2], -1))


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
    also adds as much into ``dw``), and with fewer tiles than channels that traffic, not the
    products, takes the time (measured, 8x512x7x7 -> 512: forward 71 -> 14 ms, filter gradient
    152 -> 24 ms; 8x256x14x14 -> 256 forward 35 -> 20 ms).  Where the kernel is transformed in
    chunks, every block transforms it again: blocks then grow to ``CHUNKED_BLOCK_TILES`` as far as
    their two buffers stay within ``CHUNKED_BLOCK_RATIO`` x input + output."""
    per_tile = _bytes_per_tile(spec, plan)
    tiles = max(MIN_BLOCK_TILES, _block_bytes(spec) // per_tile)
    if len(_position_chunks(spec, plan)) > 1:
        tiles = max(tiles, min(CHUNKED_BLOCK_TILES, int(CHUNKED_BLOCK_RATIO * io_bytes(spec)) // (2 * per_tile)))
    return tiles


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


def _numba_handles(spec: ConvSpec) -> bool:
    """Whether the Numba tile kernels run ``spec`` (2-D, float32/float64); else the NumPy GEMMs."""
    return USE_NUMBA and spec.rank == 2 and spec.dtype in (np.float32, np.float64)


class _Tiles:
    """The ``size^R`` tiles at stride ``m`` of ``source`` ``(N, *S, C)`` (zero past its end), each
    transformed by ``L (x) ... (x) L`` (``kron``) for a 1-D transform ``L`` (``(alpha, size)``,
    ``_ROWS[name, m]``): the input tiles ``V = (B^T (x) B^T) d`` (``"bt"``, ``size = alpha``), or
    ``dM = (A (x) A) dY`` (``"a"``, ``size = m``).

    NumPy: gather a block's tiles in-tile-position first, then one GEMM with ``kron``: ``(alpha^R,
    T, C)`` in memory.  Numba: one pass per tile straight from ``source``: ``(T, alpha^R, C)`` in
    memory (one contiguous write per tile; the GEMMs take either layout at the same speed)."""

    def __init__(self, source: np.ndarray, name: str, kron: np.ndarray, m: int, tiles: tuple[int, ...], spec: ConvSpec, origin=None):
        """``origin``: where the first tile starts in ``source`` (Numba path only: negative where
        ``source`` is unpadded and its zero padding is read implicitly); default 0."""
        self.kind, self.kron, self.m, self.tiles = _ROWS[name, m], kron, m, tiles
        self.origin = origin or (0,) * len(tiles)
        self.alpha, self.size = m + KERNEL - 1, (m if name == "a" else m + KERNEL - 1)
        self.numba = _numba_handles(spec)
        if self.numba:
            self.source = np.ascontiguousarray(source)
        else:
            extended = _extended(source, tuple(t * m + self.size - m for t in tiles))
            self.view = _tile_view(extended, m, self.size, tiles)

    def transformed(self, block, buffer: np.ndarray) -> np.ndarray:
        """The block's transformed tiles as ``(alpha^R, T, C)`` (stored in ``buffer`` on the Numba path)."""
        if not self.numba:
            return (self.kron @ _gathered(self.view[block], len(self.tiles))).reshape(self.kron.shape[0], -1, self.view.shape[-1])
        batch, first = block
        count = (batch.stop - batch.start) * (first.stop - first.start) * math.prod(self.tiles[1:])
        v = _block_array(buffer, self.alpha**2, count, self.source.shape[-1], tile_major=True)
        tile_range = (batch.start, batch.stop, first.start, first.stop, self.tiles[1])
        out = v.transpose(1, 0, 2).reshape(count, self.alpha, self.alpha, -1)
        _transform_tiles_kernel(self.source, self.kind, self.alpha, self.size, self.m, *self.origin, *tile_range, out)
        return v


def _block_array(buffer: np.ndarray, positions: int, tiles: int, channels: int, tile_major: bool) -> np.ndarray:
    """A view ``(positions, tiles, channels)`` of the start of ``buffer``, stored tile-major or position-major."""
    if tile_major:
        return buffer[: positions * tiles * channels].reshape(tiles, positions, channels).transpose(1, 0, 2)
    return buffer[: positions * tiles * channels].reshape(positions, tiles, channels)


def _by_group(block: np.ndarray, groups: int) -> np.ndarray:
    """``(positions, T, G * c)`` -> the view ``(positions, G, T, c)`` that the per-group GEMMs take."""
    if groups == 1:
        return block[:, None]  # a plain view: as_strided's Python overhead, 16 calls per block, is not free
    positions, tiles, channels = block.shape
    return np.lib.stride_tricks.as_strided(
        block,
        shape=(positions, groups, tiles, channels // groups),
        strides=(block.strides[0], block.strides[2] * (channels // groups), block.strides[1], block.strides[2]),
    )


def _store_output_tiles(product: np.ndarray, plan: _Plan, block, tiles: tuple[int, ...], out: np.ndarray, numba_path: bool) -> bool | None:
    """``Y = (A^T (x) A^T) M`` for one block's products ``(alpha^R, T, O)``, written into ``out``: on
    the Numba path cropped to its extent, and whether all it wrote is finite; else ``out`` spans
    whole tiles, and None (not checked)."""
    batch, first = block
    rank, m, alpha = plan.rank, plan.m, plan.alpha
    if numba_path:
        tile_major = product.transpose(1, 0, 2).reshape(-1, alpha, alpha, out.shape[-1])
        return _untile_kernel(tile_major, _ROWS["at", m], m, alpha, batch.start, batch.stop, first.start, first.stop, tiles[1], out)
    y = plan.at @ product.reshape(product.shape[0], -1)  # (m^R, T * O)
    block_tiles = (batch.stop - batch.start, first.stop - first.start, *tiles[1:])
    y = y.reshape(*[m] * rank, *block_tiles, out.shape[-1])
    # (m, m, nb, t0, t1, O) -> (nb, t0, m, t1, m, O): interleave tile index and in-tile offset
    order = (rank, *[i for d in range(rank) for i in (rank + 1 + d, d)], 2 * rank + 1)
    target = out[batch, first.start * m : first.stop * m]
    target.reshape(block_tiles[0], *[i for t in block_tiles[1:] for i in (t, m)], -1)[...] = y.transpose(order)
    return None


def _block_threads(spec: ConvSpec, plan: _Plan) -> int:
    """Threads that share the blocks of tiles, each with its own block buffers: npconv's count
    (:func:`~npconv._threads.threads_for`) on the Numba path when ``U`` is one chunk, else 1.  A
    chunked ``U`` is made again per block, into one more chunk buffer per thread; its blocks stay
    serial, within the memory its larger blocks already take, and the threads share the
    positions of each chunk's products instead (:func:`_chunk_products`)."""
    if not _numba_handles(spec) or len(_position_chunks(spec, plan)) > 1:
        return 1
    return threads_for(spec.flops)


def _share_blocks(function, spec: ConvSpec, plan: _Plan, pieces: int, *args) -> None:
    """``function(indices, *args)`` over the pieces ``[0, pieces)``: on :func:`_block_threads`
    threads, each claiming pieces as it goes (:func:`~npconv._threads.run_claimed`), with BLAS on
    one thread each; or on this thread alone.  The Numba tile kernels and NumPy's BLAS release the
    GIL, so the threads run side by side (two cores: 8x56x56x64 -> 64 forward 7.0 -> 4.1 ms,
    8x128x28x28 -> 128 in 8 groups 2.0 -> 1.4 ms)."""
    if _block_threads(spec, plan) > 1:
        run_claimed_products(function, spec.flops, pieces, *args)
    elif _numba_handles(spec):  # a chunked U: BLAS on one thread here too (_chunk_products)
        with blas_on_one_thread():
            function(range(pieces), *args)
    else:
        function(range(pieces), *args)


def _chunk_products(a: np.ndarray, b: np.ndarray, out: np.ndarray, serial_blocks: bool) -> None:
    """A chunk's products, one per transformed position (axis 0): on npconv's threads where the
    blocks run serially (a chunked ``U`` on the Numba path), else on this thread."""
    if serial_blocks:
        matmul_stacked(a, b, out)
    else:
        np.matmul(a, b, out=out)


def _winograd_forward(x: np.ndarray, w: np.ndarray, spec: ConvSpec, m: int) -> tuple[np.ndarray, bool | None]:
    """The forward of ``spec`` on ``x`` (padded, or unpadded when :func:`pads_implicitly`), and
    whether the result is all finite (None where unchecked: the NumPy path)."""
    plan = _plan(m, spec.rank, spec.dtype)
    tiles = _tiles_per_dim(spec, m)
    source = _Tiles(x, "bt", plan.bt, m, tiles, spec, _origin(spec))
    chunks, taps = _position_chunks(spec, plan), _kernel_taps(w, spec)
    single = len(chunks) == 1  # U made once; else a chunk at a time, again for every block
    u = _transformed_kernel(taps, plan, spec, chunks[0], np.empty(_chunk_elements(spec, chunks), spec.dtype)) if single else None
    out_spatial = spec.out_spatial if source.numba else tuple(t * m for t in tiles)
    out = np.empty((spec.batch, *out_spatial, spec.out_channels), spec.dtype)
    budget = _tiles_per_block(spec, plan)
    blocks = list(_blocks(spec, tiles, budget))
    finite = np.ones(len(blocks), bool)  # per block, on the Numba path
    _share_blocks(_forward_blocks, spec, plan, len(blocks), blocks, source, taps, u, plan, spec, chunks, _largest_block(spec, tiles, budget), out, finite)
    if out.shape[1:-1] != spec.out_spatial:
        out = np.ascontiguousarray(out[(slice(None), *(slice(0, o) for o in spec.out_spatial))])
    return out, bool(finite.all()) if source.numba else None


def _forward_blocks(indices, blocks, source, taps, u, plan, spec, chunks, largest, out, finite) -> None:
    """The forward's blocks numbered ``indices``, in buffers of their own for ``largest`` tiles:
    transform the tiles, multiply by ``U`` (or by each chunk of it, made here), store the outputs."""
    positions = plan.alpha**spec.rank
    products = np.empty(positions * largest * spec.out_channels, spec.dtype)
    inputs = np.empty(positions * largest * spec.in_channels if source.numba else 0, spec.dtype)
    kernel = np.empty(_chunk_elements(spec, chunks), spec.dtype) if u is None else None
    for index in indices:
        v = source.transformed(blocks[index], inputs)
        product = _block_array(products, positions, v.shape[1], spec.out_channels, tile_major=source.numba)
        for chunk in chunks:
            u_chunk = u if u is not None else _transformed_kernel(taps, plan, spec, chunk, kernel)
            _chunk_products(_by_group(v[chunk], spec.groups), u_chunk.transpose(1, 0, 2, 3), _by_group(product[chunk], spec.groups), u is None and source.numba)
        finite[index] = _store_output_tiles(product, plan, blocks[index], source.tiles, out, source.numba) is not False


def pads_implicitly(spec: ConvSpec) -> bool:
    """The Numba path reads zero padding straight from the unpadded input (see the registry)."""
    return spec.zero_padding and _numba_handles(spec)


def _origin(spec: ConvSpec) -> tuple[int, ...]:
    """Where the first tile starts in the array the algorithm receives (negative: implicit padding)."""
    return tuple(-lo for lo, _ in spec.padding) if pads_implicitly(spec) else (0,) * spec.rank


def _input_gradient(dy: np.ndarray, w: np.ndarray, spec: ConvSpec, m: int) -> tuple[np.ndarray, bool | None]:
    """The input gradient as a forward of ``dy`` (:func:`~._common.backward_input_as_forward`);
    with implicit padding, of the unpadded input straight from the unpadded ``dy``."""
    if pads_implicitly(spec):
        return _winograd_forward(dy, rotated_kernel(w, spec.rank), adjoint_spec(spec, cropped=True), m)
    return backward_input_as_forward(dy, w, spec, lambda *args: _winograd_forward(*args, m))


def _backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    """``dU[xi] = sum over tiles V[xi]^T dM[xi]`` with ``dM = (A (x) A) dY``; ``dw = (G (x) G)^T dU``
    (the adjoint of the forward's kernel transform): once on the summed ``dU`` when it is one
    chunk, else per block and chunk of positions, so no whole ``dU`` is held.

    A one-chunk ``dU`` is summed in ``FILTER_GRADIENT_LANES`` fixed runs of blocks, each into its
    own ``dU``, then these in order: the threads share the lanes, and the result does not depend
    on their number."""
    plan = _plan(m, spec.rank, spec.dtype)
    tiles = _tiles_per_dim(spec, m)
    source = _Tiles(xp, "bt", plan.bt, m, tiles, spec, _origin(spec))
    gradient = _Tiles(dy, "a", np.ascontiguousarray(plan.at.T), m, tiles, spec)
    chunks = _position_chunks(spec, plan)
    single = len(chunks) == 1
    budget = _tiles_per_block(spec, plan)
    blocks = list(_blocks(spec, tiles, budget))
    lanes = max(1, min(FILTER_GRADIENT_LANES, len(blocks))) if single else 1
    bounds = [len(blocks) * lane // lanes for lane in range(lanes + 1)]
    dw = np.zeros((spec.groups, KERNEL**spec.rank, spec.in_per_group, spec.out_per_group), spec.dtype)
    du = np.zeros((lanes, _chunk_elements(spec, chunks)), spec.dtype) if single else None
    largest = _largest_block(spec, tiles, budget) if source.numba else 0
    _share_blocks(_filter_gradient_lanes, spec, plan, lanes, bounds, blocks, source, gradient, plan, spec, chunks, largest, du, dw)
    if single:
        _add_filter_gradient(_chunk_view(du.sum(axis=0), spec, chunks[0]), plan, spec, chunks[0], dw)
    return dw.reshape(spec.groups, *[KERNEL] * spec.rank, spec.in_per_group, spec.out_per_group)


def _filter_gradient_lanes(indices, bounds, blocks, source, gradient, plan, spec, chunks, largest, du, dw) -> None:
    """The filter gradient's lanes numbered ``indices`` (lane ``i``: blocks ``bounds[i]:bounds[i + 1]``),
    in buffers of their own for ``largest`` tiles: each block's products ``V^T dM`` added into the
    lane's ``du[i]``, or, without ``du`` (chunked), their adjoint added into ``dw``."""
    positions = plan.alpha**spec.rank
    inputs = np.empty(positions * largest * spec.in_channels, spec.dtype)
    gradients = np.empty(positions * largest * spec.out_channels, spec.dtype)
    products = np.empty(_chunk_elements(spec, chunks), spec.dtype)  # reused: fresh large arrays cost page faults
    for lane in indices:
        for block in blocks[bounds[lane] : bounds[lane + 1]]:
            v = _by_group(source.transformed(block, inputs), spec.groups)
            dm = _by_group(gradient.transformed(block, gradients), spec.groups)
            for chunk in chunks:
                product = _chunk_view(products, spec, chunk)
                _chunk_products(v[chunk].transpose(0, 1, 3, 2), dm[chunk], product.transpose(1, 0, 2, 3), du is None and source.numba)
                if du is not None:
                    du[lane] += products
                else:
                    _add_filter_gradient(product, plan, spec, chunk, dw)


def _local_forward(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``gemm``'s forward (NaN/Inf stay local) on the input as this algorithm received it."""
    if pads_implicitly(spec):
        x = _padding.pad(x, spec.padding, "zeros", 0.0, spec.dtype)
    return gemm.forward(x, w, spec)


def _local_input_gradient(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``gemm``'s input gradient, of the input as this algorithm receives it (unpadded if implicit)."""
    dx = gemm.backward_input(dy, w, spec)
    return _padding.pad_adjoint(dx, spec.padding, "zeros") if pads_implicitly(spec) else dx


def _local_nonfinite(outcome: tuple[np.ndarray, bool | None], local_algorithm, *args) -> np.ndarray:
    """The result of ``outcome = (result, finite)``, or, when it holds a NaN/Inf,
    ``local_algorithm(*args)``: a transform mixes a whole tile, so a non-finite input would spread
    over its tile (``inf - inf``, ``0 * nan``).  The Numba output pass reports ``finite`` as it
    writes (a separate sum over the result cost 1 ms of the seeds' second layer's 13 per batch of
    256); elsewhere one sum detects it.  The rare recomputation keeps NaN/Inf local."""
    result, finite = outcome
    if finite is None:
        finite = np.isfinite(np.add.reduce(result, axis=None))  # also False on overflow: harmless
    return result if finite else local_algorithm(*args)


def eligible(spec: ConvSpec) -> bool:
    return (
        spec.rank in (1, 2)
        and all(k == KERNEL for k in spec.kernel_spatial)
        and all(s == 1 for s in spec.stride)
        and all(d == 1 for d in spec.dilation)
    )


def _cost(spec: ConvSpec, direction: str, m: int) -> float:
    """Seconds: the alpha^R GEMMs per block (thin when few tiles or channels per group), the kernel
    transform, and the tile transforms: Numba passes, or GEMMs with the Kronecker matrices plus
    gathering the tiles and scattering the outputs."""
    if direction == "backward_input":  # the forward of dy with the channels swapped
        spec = adjoint_spec(spec, cropped=pads_implicitly(spec))
    item, rank = spec.item_bytes(), spec.rank
    positions, outputs = (m + KERNEL - 1) ** rank, m**rank
    tiles = spec.batch * math.prod(_tiles_per_dim(spec, m))
    plan = _plan(m, rank, spec.dtype)
    block_tiles = max(1, min(tiles, _tiles_per_block(spec, plan)))
    blocks = -(-tiles // block_tiles)
    count = positions * spec.groups * blocks
    filter_gradient = direction == "backward_weight"
    if filter_gradient:
        main = gemm_seconds(spec.in_per_group, block_tiles, spec.out_per_group, spec.dtype, count)
    else:
        main = gemm_seconds(block_tiles, spec.in_per_group, spec.out_per_group, spec.dtype, count)
    if _numba_handles(spec):  # one pass per tile each side, no gathering or scattering copies
        scale = item / 4
        input_side = positions * tiles * spec.in_channels * NUMBA_INPUT_SECONDS * scale
        if filter_gradient:  # dM = (A (x) A) dY, like the input side
            output_side = positions * tiles * spec.out_channels * NUMBA_INPUT_SECONDS * scale
        else:
            output_side = outputs * tiles * spec.out_channels * NUMBA_OUTPUT_SECONDS * scale
        gather = scatter = 0.0
    else:
        input_side = gemm_seconds(positions, positions, tiles * spec.in_channels, spec.dtype)
        if filter_gradient:
            output_side = gemm_seconds(positions, outputs, tiles * spec.out_channels, spec.dtype)
        else:
            output_side = gemm_seconds(outputs, positions, tiles * spec.out_channels, spec.dtype)
        gather = copy_seconds(positions * tiles * spec.in_channels * item, spec.in_channels * item)
        scatter = copy_seconds(outputs * tiles * spec.out_channels * item, spec.out_channels * item)
    # the kernel transform (the filter gradient: its adjoint), once, or per block where chunked
    chunked = len(_position_chunks(spec, plan)) > 1
    passes = blocks if chunked else 1
    if filter_gradient and not chunked:  # adding each block's products into dU (in cache)
        main += count * spec.in_per_group * spec.out_per_group * item * 2 / CACHED_BYTES_PER_S
    if _numba_handles(spec):
        kernel_side = passes * positions * spec.in_per_group * spec.out_channels * NUMBA_KERNEL_SECONDS * item / 4
    else:
        kernel_side = passes * gemm_seconds(positions, KERNEL**rank, spec.in_per_group * spec.out_channels, spec.dtype)
    fixed = 5e-5 + FILTER_GRADIENT_SECONDS * filter_gradient
    sharing = min(_block_threads(spec, plan), blocks)  # threads that share the blocks
    speedup = 1 + (sharing - 1) * PARALLEL_EFFICIENCY
    return (main + input_side + output_side + gather + scatter + blocks * 3e-5) / speedup + kernel_side + fixed


def _variant(m: int) -> SimpleNamespace:
    """The algorithm functions of the F(m^R, 3^R) variant."""

    def forward(x, w, spec):
        with np.errstate(all="ignore"):  # what overflows or turns NaN is recomputed by gemm
            outcome = _winograd_forward(x, w, spec, m)
        return _local_nonfinite(outcome, _local_forward, x, w, spec)

    def backward_input(dy, w, spec):
        with np.errstate(all="ignore"):
            outcome = _input_gradient(dy, w, spec, m)
        return _local_nonfinite(outcome, _local_input_gradient, dy, w, spec)

    def backward_weight(x, dy, spec):
        return _backward_weight(x, dy, spec, m)

    def cost(spec, direction="forward"):
        return _cost(spec, direction, m)

    def workspace_bytes(spec, direction="forward"):
        plan = _plan(m, spec.rank, spec.dtype)
        tiles = _largest_block(spec, _tiles_per_dim(spec, m), _tiles_per_block(spec, plan))
        threads = _block_threads(spec, plan)  # each with its own block buffers
        if _numba_handles(spec):  # transformed tiles and products (or dM); no padded copy, no gathering
            blocks, extension = tiles * _bytes_per_tile(spec, plan) * 2 * threads, 0
        else:  # gathered tiles, V, product, output tiles; the input zero-extended to whole tiles
            blocks = tiles * _bytes_per_tile(spec, plan) * 4
            extension = spec.batch * math.prod(t * m + KERNEL - 1 for t in _tiles_per_dim(spec, m)) * spec.in_channels
        chunks = _position_chunks(spec, plan)
        if direction == "backward_weight":  # each thread's products, and a dU per lane when one chunk
            kernel = _chunk_elements(spec, chunks) * (threads + (FILTER_GRADIENT_LANES if len(chunks) == 1 else 0))
        else:  # U, or the chunk of it being made
            kernel = _chunk_elements(spec, chunks)
        return blocks + (extension + kernel) * spec.item_bytes()

    return SimpleNamespace(
        __doc__=f"``winograd`` F({m}x{m}, 3x3) (1-D F({m}, 3)): minimal filtering on tiles, GEMMs per transformed position",
        forward=forward,
        backward_input=backward_input,
        backward_weight=backward_weight,
        cost=cost,
        eligible=eligible,
        workspace_bytes=workspace_bytes,
        pads_implicitly=pads_implicitly,
        CHECKED_FINITE=("backward_weight",),  # the registry checks it (forward, input gradient: here)
    )


F4X4 = _variant(4)
F2X2 = _variant(2)


# The Numba kernels apply each 1-D transform as straight-line code per channel (a generic sparse
# matrix loop runs 3-5x slower); ``_ROWS`` numbers them, and tests check each against its matrix.
_ROWS = {("bt", 2): 0, ("at", 2): 1, ("a", 2): 2, ("bt", 4): 3, ("at", 4): 4, ("a", 4): 5}


@jit(cache=True, nogil=True)
def _rows(kind, s, s0, t, ti):
    """``t[p, ti] = sum_i L[p, i] * s[s0 + i]`` over channel vectors for the 1-D transform
    ``L`` number ``kind`` of ``_ROWS`` (``s`` ``(>= s0 + size, C)``, ``t`` ``(rows, >= ti, C)``)."""
    two, four, five, eight = np.float32(2), np.float32(4), np.float32(5), np.float32(8)
    channels = s.shape[1]
    if kind == 0:  # F(2, 3) B^T
        for k in range(channels):
            t[0, ti, k] = s[s0, k] - s[s0 + 2, k]
            t[1, ti, k] = s[s0 + 1, k] + s[s0 + 2, k]
            t[2, ti, k] = s[s0 + 2, k] - s[s0 + 1, k]
            t[3, ti, k] = s[s0 + 3, k] - s[s0 + 1, k]
    elif kind == 1:  # F(2, 3) A^T
        for k in range(channels):
            t[0, ti, k] = s[s0, k] + s[s0 + 1, k] + s[s0 + 2, k]
            t[1, ti, k] = s[s0 + 1, k] - s[s0 + 2, k] + s[s0 + 3, k]
    elif kind == 2:  # F(2, 3) A
        for k in range(channels):
            t[0, ti, k] = s[s0, k]
            t[1, ti, k] = s[s0, k] + s[s0 + 1, k]
            t[2, ti, k] = s[s0, k] - s[s0 + 1, k]
            t[3, ti, k] = s[s0 + 1, k]
    elif kind == 3:  # F(4, 3) B^T
        for k in range(channels):
            s1, s2, s3, s4 = s[s0 + 1, k], s[s0 + 2, k], s[s0 + 3, k], s[s0 + 4, k]
            t[0, ti, k] = four * s[s0, k] - five * s2 + s4
            t[1, ti, k] = four * (s1 + s2) - (s3 + s4)
            t[2, ti, k] = four * (s2 - s1) + (s3 - s4)
            t[3, ti, k] = two * (s3 - s1) + (s4 - s2)
            t[4, ti, k] = two * (s1 - s3) + (s4 - s2)
            t[5, ti, k] = four * s1 - five * s3 + s[s0 + 5, k]
    elif kind == 4:  # F(4, 3) A^T
        for k in range(channels):
            s1, s2, s3, s4 = s[s0 + 1, k], s[s0 + 2, k], s[s0 + 3, k], s[s0 + 4, k]
            t[0, ti, k] = s[s0, k] + (s1 + s2) + (s3 + s4)
            t[1, ti, k] = (s1 - s2) + two * (s3 - s4)
            t[2, ti, k] = (s1 + s2) + four * (s3 + s4)
            t[3, ti, k] = (s1 - s2) + eight * (s3 - s4) + s[s0 + 5, k]
    else:  # F(4, 3) A
        for k in range(channels):
            s0_, s1, s2, s3 = s[s0, k], s[s0 + 1, k], s[s0 + 2, k], s[s0 + 3, k]
            t[0, ti, k] = s0_
            t[1, ti, k] = (s0_ + s2) + (s1 + s3)
            t[2, ti, k] = (s0_ + s2) - (s1 + s3)
            t[3, ti, k] = (s0_ + four * s2) + two * (s1 + four * s3)
            t[4, ti, k] = (s0_ + four * s2) - two * (s1 + four * s3)
            t[5, ti, k] = s3

@jit(cache=True, nogil=True)
def _transform_kernel_rows(g, w, row0, row1, u):
    """``u[grp, alpha (i - row0) + j] = sum_{a, b} g[i, a] g[j, b] w[grp, 3 a + b]`` for the
    position rows ``i`` in ``row0:row1`` (``g`` the 1-D G, ``(alpha, 3)``; arrays ``(G, rows,
    C_g, O_g)``, C-contiguous): along the kernel's rows into ``half``, then along its columns,
    over runs of ``KERNEL_RUN`` values (as many channels as fit) that stay in L1."""
    groups, _, channels, outputs = w.shape
    alpha, size = g.shape[0], channels * outputs
    run = max(outputs, KERNEL_RUN // outputs * outputs)
    half = np.empty((KERNEL, run), w.dtype)
    for grp in range(groups):
        source = w[grp].reshape(KERNEL * KERNEL, size)
        target = u[grp].reshape(u.shape[1], size)
        for start in range(0, size, run):
            stop = min(start + run, size)
            for i in range(row0, row1):
                g0, g1, g2 = g[i, 0], g[i, 1], g[i, 2]
                for b in range(KERNEL):
                    s0, s1, s2, h = source[b, start:stop], source[KERNEL + b, start:stop], source[2 * KERNEL + b, start:stop], half[b]
                    for k in range(stop - start):
                        h[k] = g0 * s0[k] + g1 * s1[k] + g2 * s2[k]
                for j in range(alpha):
                    g0, g1, g2 = g[j, 0], g[j, 1], g[j, 2]
                    h0, h1, h2, t = half[0], half[1], half[2], target[alpha * (i - row0) + j, start:stop]
                    for k in range(stop - start):
                        t[k] = g0 * h0[k] + g1 * h1[k] + g2 * h2[k]

@jit(cache=True, nogil=True)
def _add_kernel_rows_adjoint(g, du, row0, row1, dw):
    """``dw[grp, 3 a + b] += sum_{i, j} g[i, a] g[j, b] du[grp, alpha (i - row0) + j]`` over the
    position rows ``i`` in ``row0:row1``: the adjoint of :func:`_transform_kernel_rows`."""
    groups, _, channels, outputs = dw.shape
    alpha = g.shape[0]
    half = np.empty((KERNEL, outputs), dw.dtype)
    for grp in range(groups):
        for c in range(channels):
            for i in range(row0, row1):
                half[:] = 0
                for j in range(alpha):
                    g0, g1, g2, source = g[j, 0], g[j, 1], g[j, 2], du[grp, alpha * (i - row0) + j, c]
                    h0, h1, h2 = half[0], half[1], half[2]
                    for o in range(outputs):
                        value = source[o]
                        h0[o] += g0 * value
                        h1[o] += g1 * value
                        h2[o] += g2 * value
                for a in range(KERNEL):
                    weight = g[i, a]
                    for b in range(KERNEL):
                        h, target = half[b], dw[grp, KERNEL * a + b, c]
                        for o in range(outputs):
                            target[o] += weight * h[o]

@jit(cache=True, nogil=True)
def _transform_tiles_kernel(source, kind, alpha, size, step, top, left, n0, n1, r0, r1, columns, out):
    """``out[t, p, q] = sum_{i, j} L[p, i] L[q, j] source[n, y0 + i, x0 + j]`` for the tiles
    ``t`` of images ``n0:n1`` and tile rows ``r0:r1``, corner ``(y0, x0) = (top, left) + step *
    (row, column)``, zero outside the source; ``L`` is ``_ROWS`` number ``kind`` (``(alpha,
    size)``); ``out`` ``(T, alpha, alpha, C)``.  Applies ``L`` along the tile's rows, then its
    columns.  A tile row outside the source transforms to zeros; one cut by its side is
    copied, zero-extended, into ``edge`` first (64x14x14x32, F(4x4): 12 of the 16 tiles of
    each image cross the border: 830 -> 600 ns a tile, against copying each such tile whole)."""
    _, height, width, channels = source.shape
    edge = np.zeros((size, channels), source.dtype)  # a tile row cut by the source's side
    half = np.empty((alpha, size, channels), source.dtype)  # half[q, i] = sum_j L[q, j] tile[i, j]
    t = 0
    for n in range(n0, n1):
        for r in range(r0, r1):
            for c in range(columns):
                y0, x0 = top + r * step, left + c * step
                j0, j1 = max(0, -x0), min(size, width - x0)  # the tile's columns inside
                for i in range(size):
                    if not 0 <= y0 + i < height:
                        half[:, i] = 0
                    elif j0 == 0 and j1 == size:
                        _rows(kind, source[n, y0 + i], x0, half, i)
                    else:
                        edge[:j0] = 0
                        edge[j1:] = 0
                        edge[j0:j1] = source[n, y0 + i, x0 + j0 : x0 + j1]
                        _rows(kind, edge, 0, half, i)
                for q in range(alpha):
                    _rows(kind, half[q], 0, out[t], q)
                t += 1

@jit(cache=True, nogil=True)
def _untile_kernel(product, kind, m, alpha, n0, n1, r0, r1, columns, out):
    """``out[n, m * row + p, m * column + q] = sum_{i, j} A^T[p, i] A^T[q, j] product[t, i, j]``
    for the block's tiles (``product`` ``(T, alpha, alpha, O)``), cropped to ``out``'s extent;
    ``A^T`` is ``_ROWS`` number ``kind``.  Returns whether every value written is finite."""
    nonfinite = False
    _, height, width, channels = out.shape
    half = np.empty((m, alpha, channels), out.dtype)  # half[q, i] = sum_j A^T[q, j] product[t, i, j]
    tile = np.empty((m, m, channels), out.dtype)
    t = 0
    for n in range(n0, n1):
        for r in range(r0, r1):
            for c in range(columns):
                for i in range(alpha):
                    _rows(kind, product[t, i], 0, half, i)
                for q in range(m):
                    _rows(kind, half[q], 0, tile, q)
                for p in range(min(m, height - r * m)):
                    for q in range(min(m, width - c * m)):
                        source, target = tile[p, q], out[n, r * m + p, c * m + q]
                        for k in range(channels):
                            value = source[k]
                            target[k] = value
                            nonfinite |= value - value != 0  # NaN for NaN and +-inf
                t += 1
    return not nonfinite
