"""``fft``: FFT convolution (scipy.fft real transforms) with overlap-save tiling, for large kernels.

**Stride and dilation as channels.**  Tap ``t`` at output ``o`` reads ``xp[o*s + t*d]`` (per dim).
Writing ``t*d = s*q + r`` with ``0 <= r < s``:

    y[o] = sum_t xp[s*(o + q) + r] w[t] = sum_r sum_q u_r[o + q] v_r[q],
    u_r[m] = xp[s*m + r],   v_r[q] = w[t] where t*d = s*q + r, else 0

so a strided, dilated correlation is a stride-1 correlation whose input channels are the pairs
(phase ``r``, channel ``c``) -- only the ``R`` phases some tap uses -- with a kernel of
``Q = (k - 1) * d // s + 1`` taps: nothing is computed and then thrown away by the stride.  At
stride 1 the input is used as is (no copy) and dilation just leaves zeros in ``v``, which cost
nothing in the frequency domain.

**Overlap-save.**  For one channel pair, ``z[p] = sum_{q<Q} u[p + q] v[q]`` for ``0 <= p < B``
equals the circular correlation ``irfft(rfft(u) * conj(rfft(v)))[p]`` of length ``L >= B + Q - 1``:
``p + q <= B + Q - 2 < L`` never wraps around.  So the output is cut into tiles of ``B`` positions
per dim, each computed from its input tile of ``B + Q - 1`` positions (neighbours overlap by
``Q - 1``), zero-padded to a fast length ``L`` (``scipy.fft.next_fast_len``).  Every output is
computed once, exactly up to rounding.  One tile covering the whole output is the plain FFT
convolution; smaller tiles transform ``(L / B)^rank`` times more input, but with shorter
transforms, a smaller kernel spectrum and more rows per frequency in the channel products.
:func:`_plan` picks ``L`` by the cost model, within a memory budget.

**Channels.**  Per frequency ``f`` and group, ``Y[f] = X[f] @ W[f]`` with ``X[f]`` of shape
(items = tiles x batch, ``C_g``) and ``W[f] = conj(V[f])`` of shape (``C_g``, ``O_g``): one
``np.matmul`` with the frequencies (and groups) as its batch axes, then one inverse FFT per item
and output channel.  The product runs in real arithmetic on the interleaved real and imaginary
parts (``_real_matrix``): for the small per-frequency matrices, real BLAS calls are 3-7x faster
than complex ones.  One channel pair per group (single-channel images, depthwise) is a plain
in-place product.  Arrays keep the ``(items, *spatial, channels)`` layout throughout: tiles are
block copies (a single tile that fills the FFT length is read in place), the transforms run over
the spatial axes, and the matmul reads and writes the spectra through strided views.  The kernel
is transformed pruned (each axis zero-padded only once the axes after it are transformed: few rows
for a small kernel), and inverse transforms drop the rows they do not keep before the next axis.

**Gradients.**  ``backward_input`` is the full convolution of ``dy`` with ``v`` (``DU = DY @ W^H``
per frequency): the engine runs it as the forward correlation of ``dy`` zero-padded by ``Q - 1``
with the kernel rotated and its channel axes swapped (``_common.backward_input_as_forward``);
its phases are then scattered back into ``xp``.  ``backward_weight`` is
``dv[q] = sum_{items, p} u[p + q] dy[p]``, the circular correlation of an input tile with its
``dy`` tile zero-padded to ``L`` (no wrap for ``q < Q``, as above): per frequency
``X[f]^T @ conj(DY[f])`` summed over items by the (real) matmul and over chunks in order, then
one inverse FFT keeping ``Q`` taps.

**Precision** (max error relative to max |result|, N(0, 1) data against float64 ``gemm``,
forward / backward_input / backward_weight, kernels 7-63 taps, 1-D to 3-D, strided and grouped):
float32 (complex64 transforms) 2e-7 - 3.5e-7, float64 (complex128) 4e-16 - 4e-15; float16 is
computed in float32.  ``tests/test_fft.py`` checks 1e-6 and 1e-14.

**NaN/Inf and overflow**: a transform mixes a whole tile, so a non-finite input value makes every
output of each tile that reads it NaN, not only its receptive field, and the spectra's sums can
overflow where the exact result would not (float32 inputs near 1e18).  The registry therefore
checks each result (``CHECKED_FINITE``) and computes one holding NaN/Inf again with the fastest
local algorithm, so NaN/Inf stay in their receptive fields here too.

**Memory**: the kernel spectrum plus one chunk's buffers stay within
``max(MIN_WORKSPACE_BYTES, 3/4 of the input + output bytes)`` (chunks of tiles x batch items, each also
under ``MAX_CHUNK_BYTES``); configurations where even the smallest tiles do not fit (wide channels
on small images: the kernel spectrum is ``(L / k)^rank`` times the kernel) are not eligible.
**Threads**: at most ``MAX_WORKERS`` (2) at a time, whatever NumPy's BLAS uses.  Where the plan
says so (enough work), chunks run two at a time, in the calling thread and one of npconv's pool
threads (:func:`~npconv._threads.run_together`), each with single-threaded transforms; otherwise
arrays of ``PARALLEL_FFT_SIZE`` values or more are transformed with two ``scipy.fft`` workers.

**Deterministic**: plans, chunks and the order of every sum depend only on the shapes and the
number of cores (a one-core machine may round differently in the last bits).
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
import scipy.fft as sp_fft

from .._spec import ConvSpec
from .._threads import available_cores, blas_on_one_thread, matmul_stacked, run_together
from ._common import backward_input_as_forward, copy_seconds

CHECKED_FINITE = ("forward", "backward_input", "backward_weight")
MAX_WORKERS = 2
PARALLEL_FFT_SIZE = 2**18  # values in an array from which its transforms use several threads
MIN_WORKSPACE_BYTES = 16 * 2**20  # the budget is max(this, 3/4 of input + output bytes) ...
MAX_CHUNK_BYTES = 16 * 2**20  # ... and a chunk's buffers stay under this (faster: closer to cache)
# Candidate tile sizes: outputs per tile = factor x kernel taps (at least MIN_BLOCK), up to whole.
BLOCK_FACTORS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024)
MIN_BLOCK = 8

# Cost model (seconds), keyed by the real item size where it depends on the dtype; fitted to
# timings (medians and minima of interleaved runs) on a 2-core AVX-512 Xeon shared with other jobs.
# FFT: per complex point and pass over an axis of length L, (base, per log2 L, per log2 of how
# much one transform of L complex values exceeds FFT_CACHE_BYTES).
FFT_SECONDS = {4: (1.2e-9, 1.0e-10, 1.2e-9), 8: (7.7e-10, 2.4e-10, 1.3e-9)}
FFT_CACHE_BYTES = 2**16
MATMUL_CALL_SECONDS = 5e-8  # per (frequency, group) real matrix product in np.matmul
MATMUL_MAC_SECONDS = {4: 8e-11, 8: 1.9e-10}  # per complex multiply-add (4 real ones) in np.matmul
INPLACE_MAC_SECONDS = {4: 6e-10, 8: 1.2e-9}  # per complex product in place (one channel pair)
CALL_SECONDS = 1e-5  # one NumPy / scipy.fft call's overhead
PARALLEL_SPEEDUP = 1.3  # chunks two at a time in two threads (single-threaded transforms each) ...
THREAD_SECONDS = 3e-4  # ... at this cost (hand-over, and the GIL for small arrays)


def _workers() -> int:
    return min(MAX_WORKERS, available_cores())


# ---------------------------------------------------------------------------- stride phases


@lru_cache(maxsize=256)
def _phase_spec(spec: ConvSpec) -> tuple[ConvSpec, tuple[tuple[int, ...], ...]]:
    """The stride-1, dilation-1 problem (channels ``(g, phase, c)``) and the phases used per dim."""
    phases = tuple(
        tuple(sorted({t * d % s for t in range(k)})) for k, s, d in zip(spec.kernel_spatial, spec.stride, spec.dilation)
    )
    taps = tuple((k - 1) * d // s + 1 for k, s, d in zip(spec.kernel_spatial, spec.stride, spec.dilation))
    ones = (1,) * spec.rank
    phase_spec = dataclasses.replace(
        spec,
        in_channels=spec.in_channels * math.prod(map(len, phases)),
        in_spatial=tuple(o + q - 1 for o, q in zip(spec.out_spatial, taps)),
        kernel_spatial=taps,
        stride=ones,
        dilation=ones,
        padding=((0, 0),) * spec.rank,
    )
    return phase_spec, phases


def _phase_keys(spec: ConvSpec, phase_spec: ConvSpec, phases):
    """``(xp key, u key)`` per phase combination: ``u[u key] = xp[xp key]`` splits the phases.

    ``xp`` is viewed as ``(N, *padded, G, C_g)``, ``u`` as ``(N, *phase extent, G, *R, C_g)``; a
    phase has fewer positions than ``u`` holds where the padded input ends (those stay zero).
    """
    grids = [
        [(i, r, min(n, -(-(p - r) // s))) for i, r in enumerate(rs)]
        for rs, n, p, s in zip(phases, phase_spec.in_spatial, spec.padded_spatial, spec.stride)
    ]
    for combo in np.ndindex(*map(len, grids)):
        picked = [grid[j] for grid, j in zip(grids, combo)]
        xp_key = (slice(None), *(slice(r, r + s * (n - 1) + 1, s) for (_, r, n), s in zip(picked, spec.stride)))
        u_key = (slice(None), *(slice(0, n) for _, _, n in picked), slice(None), *(i for i, _, _ in picked))
        yield xp_key, u_key


def _phase_shape(spec: ConvSpec, phase_spec: ConvSpec, phases) -> tuple[int, ...]:
    return (spec.batch, *phase_spec.in_spatial, spec.groups, *map(len, phases), spec.in_per_group)


def _split_phases(xp: np.ndarray, spec: ConvSpec, phase_spec: ConvSpec, phases) -> np.ndarray:
    """``u`` of shape ``(N, *phase extent, C * R)``: a view of ``xp`` at stride 1, else a copy."""
    if all(s == 1 for s in spec.stride):
        return xp[(slice(None), *(slice(0, n) for n in phase_spec.in_spatial))]
    u = np.zeros(_phase_shape(spec, phase_spec, phases), spec.dtype)
    xg = xp.reshape(*xp.shape[:-1], spec.groups, spec.in_per_group)
    for xp_key, u_key in _phase_keys(spec, phase_spec, phases):
        u[u_key] = xg[xp_key]
    return u.reshape(*u.shape[: spec.rank + 1], phase_spec.in_channels)


def _merge_phases(du: np.ndarray, spec: ConvSpec, phase_spec: ConvSpec, phases) -> np.ndarray:
    """Adjoint of :func:`_split_phases`: ``dxp`` of shape ``(N, *padded, C)``, zero where no tap reads."""
    if all(s == 1 for s in spec.stride) and du.shape[1:-1] == spec.padded_spatial:
        return du
    dxg = np.zeros((spec.batch, *spec.padded_spatial, spec.groups, spec.in_per_group), spec.dtype)
    dug = du.reshape(_phase_shape(spec, phase_spec, phases))
    for xp_key, u_key in _phase_keys(spec, phase_spec, phases):
        dxg[xp_key] = dug[u_key]
    return dxg.reshape(*dxg.shape[:-2], spec.in_channels)


def _tap_index(spec: ConvSpec, phases) -> tuple:
    """Index of ``v`` viewed as ``(G, *Q, *R, C_g, O_g)`` that holds ``w[:, t]`` for every tap ``t``."""
    t = [np.arange(k) * d for k, d in zip(spec.kernel_spatial, spec.dilation)]
    q = [tk // s for tk, s in zip(t, spec.stride)]
    r = [np.searchsorted(rs, tk % s) for tk, rs, s in zip(t, phases, spec.stride)]
    return (slice(None), *np.ix_(*q), *np.ix_(*r))


def _phase_kernel(w: np.ndarray, spec: ConvSpec, phase_spec: ConvSpec, phases) -> np.ndarray:
    """``v`` of shape ``(G, *Q, C_g * R, O_g)``."""
    v = np.zeros((spec.groups, *phase_spec.kernel_spatial, *map(len, phases), spec.in_per_group, spec.out_per_group), spec.dtype)
    v[_tap_index(spec, phases)] = w
    return v.reshape(spec.groups, *phase_spec.kernel_spatial, phase_spec.in_per_group, spec.out_per_group)


# ---------------------------------------------------------------------------- plans and costs


@dataclasses.dataclass(frozen=True)
class _Plan:
    fft_shape: tuple[int, ...]  # L per dim
    block: tuple[int, ...]  # B: outputs per tile and dim
    tiles: tuple[int, ...]  # tiles per dim
    batch_per_chunk: int  # a chunk is a batch range of one tile, or
    tiles_per_chunk: int  # several tiles of the whole batch
    parallel: bool  # chunks run two at a time in two threads
    workspace: int  # bytes
    seconds: float

    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        return (*self.fft_shape[:-1], self.fft_shape[-1] // 2 + 1)

    @property
    def frequencies(self) -> int:
        return math.prod(self.spectrum_shape)


def _problem(spec: ConvSpec) -> tuple:
    """What a plan depends on, for a stride-1, dilation-1 spec."""
    return (spec.batch, spec.groups, spec.in_per_group, spec.out_per_group, spec.out_spatial, spec.kernel_spatial, spec.dtype)


def _fft_seconds(extent, fft_shape, lanes: int, item: int) -> float:
    """Multi-dim real FFT of ``lanes`` signals, pruned as :func:`_rfftn` / :func:`_irfftn` do: while
    axis ``a`` is transformed, the axes before it have size ``extent``, those after it ``L``."""
    (base, per_log, per_cache_log), rank = FFT_SECONDS[item], len(fft_shape)
    seconds = 0.0
    for axis, n in enumerate(fft_shape):
        # complex points per pass: the last axis is the real one (half the work)
        after = math.prod(fft_shape[axis + 1 : -1]) * (fft_shape[-1] // 2 + 1) if axis < rank - 1 else 0.5
        points = lanes * math.prod(extent[:axis]) * after * n
        seconds += points * (base + per_log * math.log2(n) + per_cache_log * max(0.0, math.log2(2 * item * n / FFT_CACHE_BYTES)))
    return seconds


def _product_seconds(frequencies: int, m: int, groups: int, cin: int, cout: int, inplace: bool, item: int) -> float:
    """One chunk's channel products: ``frequencies x groups`` real matmuls of ``(m, 2 cin) @ (2 cin,
    2 cout)``, or one in-place product."""
    macs = frequencies * m * groups * cin * cout
    if inplace:
        return macs * INPLACE_MAC_SECONDS[item] + CALL_SECONDS
    return frequencies * groups * MATMUL_CALL_SECONDS + macs * MATMUL_MAC_SECONDS[item]


def _chunk_sizes(batch: int, n_tiles: int, items: int) -> tuple[int, int]:
    """(batch items, tiles) per chunk for at most ``items`` items a chunk, spread evenly."""
    batch_per_chunk = -(-batch // -(-batch // min(batch, items)))
    tiles_per_chunk = max(1, min(n_tiles, items // batch))
    return batch_per_chunk, -(-n_tiles // -(-n_tiles // tiles_per_chunk))


def _sized_plan(batch, groups, cin, cout, out, taps, dtype, direction, reserved, fft_shape, halves) -> _Plan | None:
    """The plan with FFT lengths ``fft_shape`` and ``halves`` (1 or 2) chunks in flight: its chunks
    within the memory budget less ``reserved`` bytes (held by the caller: the phase-split input),
    and its cost."""
    item = np.dtype(dtype).itemsize
    batch = max(batch, 1)  # an empty batch computes nothing: plan it as one
    block = tuple(min(o, n - q + 1) for o, n, q in zip(out, fft_shape, taps))
    tiles = tuple(-(-o // b) for o, b in zip(out, block))
    size, frequencies, n_tiles = math.prod(fft_shape), math.prod(fft_shape[:-1]) * (fft_shape[-1] // 2 + 1), math.prod(tiles)
    c_in, c_out = groups * cin, groups * cout
    # Memory: the kernel spectrum (or its real form, twice as large), plus per chunk in flight the
    # buffers of its items at their peak (measured: a tile and its spectrum in every channel, or
    # the product and its inverse) and for backward_weight the gradient's real form and a chunk's
    # term of it.
    inplace = cin == cout == 1 and direction != "backward_weight"
    spectrum_bytes = frequencies * groups * cin * cout * 2 * item
    kernel_bytes = spectrum_bytes * (1 if inplace else 4 * halves if direction == "backward_weight" else 2)
    item_bytes = 2 * max(c_in, c_out) * size * item
    io = batch * (math.prod(o + q - 1 for o, q in zip(out, taps)) * c_in + math.prod(out) * c_out) * item
    room = min((max(MIN_WORKSPACE_BYTES, 3 * io // 4) - reserved - kernel_bytes) // halves, MAX_CHUNK_BYTES)
    if room < item_bytes:
        return None
    items = batch * n_tiles
    batch_per_chunk, tiles_per_chunk = _chunk_sizes(batch, n_tiles, min(room // item_bytes, -(-items // halves)))
    chunks = -(-batch // batch_per_chunk) * -(-n_tiles // tiles_per_chunk)
    m = batch_per_chunk * tiles_per_chunk
    # The kernel's transform and real form, then the chunks (two at a time with two cores): their
    # input tiles (zero-padded to L), output or dy tiles (block), products and copies.
    kernel = _fft_seconds(taps, fft_shape, groups * cin * cout, item)
    kernel += 0 if inplace else copy_seconds(2 * spectrum_bytes, 4 * cout * item)
    transforms = _fft_seconds(fft_shape, fft_shape, items * c_in, item) + _fft_seconds(block, fft_shape, items * c_out, item)
    copies = copy_seconds(items * size * (c_in + c_out) * item, block[-1] * min(c_in, c_out) * item)
    calls = chunks * (2 * len(fft_shape) + 4) + 2 * n_tiles * -(-batch // batch_per_chunk)
    product = chunks * _product_seconds(frequencies, m, groups, cin, cout, inplace, item)
    chunk_work = transforms + product + copies + calls * CALL_SECONDS
    parallel = halves == 2 and chunks > 1
    seconds = kernel + (chunk_work / PARALLEL_SPEEDUP + THREAD_SECONDS if parallel else chunk_work)
    workspace = kernel_bytes + m * item_bytes * min(halves, chunks)
    return _Plan(fft_shape, block, tiles, batch_per_chunk, tiles_per_chunk, parallel, workspace, seconds)


@lru_cache(maxsize=512)
def _plan(batch, groups, cin, cout, out, taps, dtype, direction="forward", reserved=0) -> _Plan | None:
    """The cheapest plan over tile sizes ``factor x taps`` (whole output at the largest), or None
    when even the smallest tiles do not fit the memory budget."""
    best = None
    for factor in BLOCK_FACTORS:
        target = [min(o, max(MIN_BLOCK, math.ceil(factor * q))) for o, q in zip(out, taps)]
        # Spread the outputs evenly over the tiles this target needs, then use the FFT length's slack.
        blocks = [-(-o // -(-o // b)) for o, b in zip(out, target)]
        shape = tuple(sp_fft.next_fast_len(b + q - 1, real=True) for b, q in zip(blocks, taps))
        for halves in sorted({1, min(2, _workers())}):
            plan = _sized_plan(batch, groups, cin, cout, out, taps, dtype, direction, reserved, shape, halves)
            if plan is not None and (best is None or plan.seconds < best.seconds):
                best = plan
        if target == list(out):
            break
    return best


# ---------------------------------------------------------------------------- transforms


def _rfftn(a: np.ndarray, fft_shape, workers: int) -> np.ndarray:
    """Real FFT of ``a`` ``(items, *spatial, ...)`` over its spatial axes, zero-padded to ``fft_shape``:
    the last axis first, so each axis is padded only after the ones after it were transformed.
    ``workers`` threads for large arrays (one for small ones: handing over would cost more)."""
    rank, workers = len(fft_shape), workers if a.size >= PARALLEL_FFT_SIZE else 1
    out = sp_fft.rfft(a, fft_shape[-1], axis=rank, workers=workers)
    for axis in reversed(range(1, rank)):
        out = sp_fft.fft(out, fft_shape[axis - 1], axis=axis, overwrite_x=True, workers=workers)
    return out


def _irfftn(spectrum: np.ndarray, fft_shape, keep, workers: int) -> np.ndarray:
    """Inverse of :func:`_rfftn`, keeping the first ``keep`` positions per axis (cropped as it goes)."""
    rank, workers = len(fft_shape), workers if spectrum.size >= PARALLEL_FFT_SIZE else 1
    for axis in range(1, rank):
        full = sp_fft.ifft(spectrum, axis=axis, overwrite_x=True, workers=workers)
        spectrum = full[(slice(None),) * axis + (slice(0, keep[axis - 1]),)]
    real = sp_fft.irfft(spectrum, fft_shape[-1], axis=rank, overwrite_x=True, workers=workers)
    return real[(slice(None),) * rank + (slice(0, keep[-1]),)]


def _chunks(batch: int, plan: _Plan):
    """``(batch slice, tiles)`` per chunk; its items are ordered tile-major, batch-minor."""
    tiles = list(np.ndindex(*plan.tiles))
    if plan.batch_per_chunk < batch:
        for tile in tiles:
            for start in range(0, batch, plan.batch_per_chunk):
                yield slice(start, min(start + plan.batch_per_chunk, batch)), [tile]
    else:
        for start in range(0, len(tiles), plan.tiles_per_chunk):
            yield slice(0, batch), tiles[start : start + plan.tiles_per_chunk]


def _tile_keys(batch: slice, tiles, plan: _Plan, length, limits):
    """``(key into (N, *spatial), key into the chunk's (items, *length))`` per tile: ``length``
    positions per dim from ``tile * block``, clipped to ``limits``."""
    nb = batch.stop - batch.start
    for i, tile in enumerate(tiles):
        region = tuple(slice(t * b, min(t * b + n, lim)) for t, b, n, lim in zip(tile, plan.block, length, limits))
        yield (batch, *region), (slice(i * nb, (i + 1) * nb), *(slice(0, r.stop - r.start) for r in region))


def _spectra(a: np.ndarray, batch: slice, tiles, length, plan: _Plan, groups: int, workers: int) -> np.ndarray:
    """Spectra ``(items, frequencies, G, channels per group)`` of the tiles of ``a``
    (``(N, *spatial, channels)``) that are ``length`` long per dim: copied into one zero-padded
    buffer, or, for a single tile, read in place (the FFT zero-pads it: 1x512x512 with 31x31 taps,
    0.3 ms of 2.8 less)."""
    keys = list(_tile_keys(batch, tiles, plan, length, a.shape[1:-1]))
    if len(keys) == 1:
        buffer = a[keys[0][0]]
    else:
        buffer = np.zeros((len(tiles) * (batch.stop - batch.start), *plan.fft_shape, a.shape[-1]), a.dtype)
        for source, target in keys:
            buffer[target] = a[source]
    spectrum = _rfftn(buffer, plan.fft_shape, workers)
    return spectrum.reshape(len(spectrum), plan.frequencies, groups, -1)


def _kernel_spectrum(v: np.ndarray, plan: _Plan) -> np.ndarray:
    """``conj(rfft(v))`` of shape ``(G, frequencies, C_g, O_g)`` from ``v`` ``(G, *Q, C_g, O_g)``."""
    spectrum = _rfftn(v, plan.fft_shape, _workers())
    return np.conjugate(spectrum, out=spectrum).reshape(len(v), plan.frequencies, *v.shape[-2:])


def _real_matrix(w: np.ndarray) -> np.ndarray:
    """``(..., C, O)`` complex -> ``(..., 2C, 2O)`` real ``R`` with ``a.view(real) @ R == (a @ w).view(real)``
    (real and imaginary parts interleaved): row pair ``(re, im)`` of channel ``c`` holds the
    interleaved ``w[c]`` and ``1j * w[c]``.  Real matmuls of these small matrices run 3-7x faster."""
    real = np.empty((*w.shape[:-1], 2, 2 * w.shape[-1]), w.real.dtype)
    real[..., 0, :] = w.view(real.dtype)
    np.multiply(w, 1j, out=real[..., 1, :].view(w.dtype))
    return real.reshape(*w.shape[:-2], 2 * w.shape[-2], 2 * w.shape[-1])


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, in_half: bool) -> None:
    """``np.matmul(a, b, out=out)`` over stacks (axis 0 and on), with BLAS on one thread: as is in
    one of two halves (:func:`_in_halves` holds BLAS on one thread), else the stack shared among
    npconv's threads.  Each matrix's product is then the same single-threaded BLAS call whatever
    the thread settings (a multi-threaded BLAS may split, and round, a product differently)."""
    if in_half:
        np.matmul(a, b, out=out)
    else:
        matmul_stacked(a, b, out)


def _product(x: np.ndarray, kernel: np.ndarray, in_half: bool) -> np.ndarray:
    """``(m, F, G, O_g)`` complex from ``x`` ``(m, F, G, C_g)`` and the kernel: its spectrum
    ``(G, F, 1, 1)`` (one channel pair: multiplied in place) or real matrix ``(G, F, 2 C_g, 2 O_g)``."""
    kernel = kernel.transpose(1, 0, 2, 3)  # (F, G, ., .)
    if kernel.dtype.kind == "c":
        return np.multiply(x, kernel[..., 0], out=x)
    real = x.real.dtype
    out = np.empty((*x.shape[:-1], kernel.shape[-1]), real)
    _matmul(x.view(real).transpose(1, 2, 0, 3), kernel, out.transpose(1, 2, 0, 3), in_half)
    return out.view(x.dtype)


def _in_halves(function, chunks: list, parallel: bool) -> list:
    """``[function(chunks[0::2], 1, True), function(chunks[1::2], 1, True)]``, the halves run in two
    threads (single-threaded transforms and BLAS each), if ``parallel``; else
    ``[function(chunks, workers, False)]``.  Every chunk goes to the same half on every call."""
    if not parallel:
        return [function(chunks, _workers(), False)]
    with blas_on_one_thread():
        return run_together([(function, chunks[0::2], 1, True), (function, chunks[1::2], 1, True)])


def _correlate(u: np.ndarray, v: np.ndarray, spec: ConvSpec, plan: _Plan) -> np.ndarray:
    """Stride-1 valid correlation (``spec`` has stride and dilation 1): the engine."""
    y = np.empty((spec.batch, *spec.out_spatial, spec.out_channels), spec.dtype)  # the tiles cover it
    if y.size == 0:
        return y
    kernel = _kernel_spectrum(v, plan)
    if kernel.shape[-2:] != (1, 1):
        kernel = _real_matrix(kernel)
    span = tuple(b + q - 1 for b, q in zip(plan.block, spec.kernel_spatial))

    def run(chunks, workers, in_half):
        for batch, tiles in chunks:
            product = _product(_spectra(u, batch, tiles, span, plan, spec.groups, workers), kernel, in_half)
            blocks = _irfftn(product.reshape(len(product), *plan.spectrum_shape, -1), plan.fft_shape, plan.block, workers)
            for target, source in _tile_keys(batch, tiles, plan, plan.block, spec.out_spatial):
                y[target] = blocks[source]
            del product, blocks  # before the next chunk's buffers

    _in_halves(run, list(_chunks(spec.batch, plan)), plan.parallel)
    return y


# ---------------------------------------------------------------------------- the interface


def forward(xp: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The correlation: its stride phases split into channels, then the overlap-save engine."""
    phase_spec, phases = _phase_spec(spec)
    u = _split_phases(xp, spec, phase_spec, phases)
    return _correlate(u, _phase_kernel(w, spec, phase_spec, phases), phase_spec, _plan_for(spec, "forward"))


def backward_input(dy: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Full convolution of ``dy`` with the phase kernel (the adjoint's forward), phases merged back."""
    phase_spec, phases = _phase_spec(spec)
    v = _phase_kernel(w, spec, phase_spec, phases)
    du = backward_input_as_forward(dy, v, phase_spec, forward)
    return _merge_phases(du, spec, phase_spec, phases)


def backward_weight(xp: np.ndarray, dy: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Correlation of the input tiles with their ``dy`` tiles, summed over tiles and batch."""
    phase_spec, phases = _phase_spec(spec)
    taps = phase_spec.kernel_spatial
    dv = np.zeros((spec.groups, *taps, phase_spec.in_per_group, spec.out_per_group), spec.dtype)
    if spec.batch:
        u = _split_phases(xp, spec, phase_spec, phases)
        plan = _plan_for(spec, "backward_weight")
        span = tuple(b + q - 1 for b, q in zip(plan.block, taps))
        # sum over items of x^T @ conj(d) per frequency, from the real products of the interleaved
        # parts: (a + ib)(c - id) = (ac + bd) + i(bc - ad)
        def run(chunks, workers, in_half):
            real = np.zeros((spec.groups, plan.frequencies, 2 * phase_spec.in_per_group, 2 * spec.out_per_group), spec.dtype)
            product = np.empty((plan.frequencies, spec.groups, *real.shape[2:]), spec.dtype)
            for batch, tiles in chunks:
                x = _spectra(u, batch, tiles, span, plan, spec.groups, workers)
                d = _spectra(dy, batch, tiles, plan.block, plan, spec.groups, workers)
                x, d = x.view(spec.dtype), d.view(spec.dtype)  # (items, F, G, 2 C_g), (items, F, G, 2 O_g)
                _matmul(x.transpose(1, 2, 3, 0), d.transpose(1, 2, 0, 3), product, in_half)
                real.transpose(1, 0, 2, 3)[...] += product
                del x, d  # before the next chunk's buffers
            return real

        real = sum(_in_halves(run, list(_chunks(spec.batch, plan)), plan.parallel))
        total = (real[..., 0::2, 0::2] + real[..., 1::2, 1::2]) + 1j * (real[..., 1::2, 0::2] - real[..., 0::2, 1::2])
        dv = _irfftn(total.reshape(spec.groups, *plan.spectrum_shape, *dv.shape[-2:]), plan.fft_shape, taps, _workers())
    dv = dv.reshape(spec.groups, *taps, *map(len, phases), spec.in_per_group, spec.out_per_group)
    return dv[_tap_index(spec, phases)]


def _split_bytes(spec: ConvSpec) -> int:
    """Bytes of the phase-split input (none at stride 1)."""
    phase_spec, _ = _phase_spec(spec)
    if all(s == 1 for s in spec.stride):
        return 0
    return spec.batch * math.prod(phase_spec.in_spatial) * phase_spec.in_channels * spec.item_bytes()


def _plan_for(spec: ConvSpec, direction: str) -> _Plan | None:
    phase_spec, _ = _phase_spec(spec)
    if direction == "backward_input":  # the adjoint's forward: channels swapped, the full-size output
        batch, groups, cin, cout, out, taps, dtype = _problem(phase_spec)
        return _plan(batch, groups, cout, cin, phase_spec.in_spatial, taps, dtype)
    return _plan(*_problem(phase_spec), direction, _split_bytes(spec))


def eligible(spec: ConvSpec) -> bool:
    return all(_plan_for(spec, direction) is not None for direction in ("forward", "backward_input", "backward_weight"))


def workspace_bytes(spec: ConvSpec, direction: str = "forward") -> int:
    plan = _plan_for(spec, "forward")
    return (plan.workspace if plan else 0) + _split_bytes(spec)


def cost(spec: ConvSpec, direction: str = "forward") -> float:
    """Seconds of the cheapest plan (:func:`_sized_plan`): with ``n`` complex points per pass over
    an axis of FFT length ``L``, ``sum n * (a + b log2 L + c log2+(L * complex bytes / 64 KiB))``
    over the passes of the input, output and kernel transforms (``FFT_SECONDS``), plus
    ``MATMUL_CALL`` per frequency, group and chunk and ``MATMUL_MAC`` per complex multiply-add
    (``INPLACE_MAC`` for one channel pair), the tile copies and the stride phases' split or merge
    (``_common.copy_seconds``) and ``CALL_SECONDS`` per NumPy / scipy call."""
    plan = _plan_for(spec, direction)
    split = copy_seconds(_split_bytes(spec), spec.in_per_group * spec.item_bytes())  # or merge
    return math.inf if plan is None else plan.seconds + split
