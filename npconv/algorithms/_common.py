"""Helpers shared by the algorithms: tap windows and chunking of the output positions.

An algorithm computes a *valid* convolution of an already padded input ``xp`` of shape
``(N, *padded_spatial, C)`` (or of the unpadded input, for an algorithm whose
``pads_implicitly(spec)`` holds: see the registry) with the internal kernel ``w`` of shape
``(groups, *kernel_spatial, C // groups, out_channels // groups)``.  Kernel tap ``t`` (a tuple of
spatial offsets) at output position ``o`` reads input position ``o * stride + t * dilation``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np

from .._numba import load_numba
from .._spec import ConvSpec


def tap_window(xp: np.ndarray, spec: ConvSpec, tap, out_ranges, batch_range=slice(None)) -> np.ndarray:
    """View of ``xp`` that kernel tap ``tap`` multiplies, for the output positions ``out_ranges``.

    ``xp`` is ``(N, *spatial, ...)``: any trailing channel dims are kept.

    ``out_ranges`` is one ``(start, stop)`` per spatial dim; the view has shape
    ``(batch, *(stop - start), C)`` — a strided slice, never a copy.
    """
    key = [batch_range]
    for (start, stop), t, s, d in zip(out_ranges, tap, spec.stride, spec.dilation):
        first = start * s + t * d
        key.append(slice(first, first + (stop - start - 1) * s + 1, s))
    key.append(slice(None))
    return xp[tuple(key)]


def windows(xp: np.ndarray, spec: ConvSpec, out_ranges, batch_range=slice(None)) -> np.ndarray:
    """Every tap's :func:`tap_window` at once: ``(batch, *(stop - start), *kernel, C)``, a strided
    view of ``xp`` ``(N, *spatial, C)`` (overlapping when windows overlap; read-only)."""
    first = tap_window(xp, spec, (0,) * spec.rank, out_ranges, batch_range)
    spatial = xp.strides[1 : 1 + spec.rank]
    kernel_strides = tuple(s * d for s, d in zip(spatial, spec.dilation))
    shape = (*first.shape[:-1], *spec.kernel_spatial, first.shape[-1])
    strides = (*first.strides[:-1], *kernel_strides, first.strides[-1])
    return np.lib.stride_tricks.as_strided(first, shape, strides, writeable=False)


def full_ranges(spec: ConvSpec) -> tuple[tuple[int, int], ...]:
    return tuple((0, o) for o in spec.out_spatial)


def taps(spec: ConvSpec) -> Iterator[tuple[int, ...]]:
    """Kernel taps in C order (the order of the flattened kernel)."""
    return np.ndindex(*spec.kernel_spatial)


def dims_3d(spec: ConvSpec):
    """Padded input, output, kernel, stride and dilation as 3-D tuples (1-D and 2-D convolutions are
    3-D ones with leading size 1), for kernels written for rank 3."""
    lead = (1,) * (3 - spec.rank)
    return tuple(lead + t for t in (spec.padded_spatial, spec.out_spatial, spec.kernel_spatial, spec.stride, spec.dilation))


def tap_offsets(spatial, kernel, dilation, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Element offsets in a flat channels-last array of 3-D ``spatial`` dims and ``channels``: of
    each kernel tap (C order) from its window's corner, and of one unit of ``d, h, w``."""
    pixel = np.array([spatial[1] * spatial[2], spatial[2], 1], np.int64) * channels
    return np.array(list(np.ndindex(*kernel)), np.int64).reshape(-1, 3) * dilation @ pixel, pixel


def kernel_signature(dtype, *arguments: str):
    """The Numba signature ``void(arguments)`` of a generated kernel, for floating ``dtype``:
    ``"int"`` an int64, ``"ints"`` a contiguous int64 array, ``"value"`` a ``dtype`` number,
    ``"in"``/``"in2d"`` a contiguous 1-D/2-D ``dtype`` array typed read-only (so a read-only array,
    e.g. from ``np.load(..., mmap_mode="r")``, is accepted as is), ``"out"`` a writable 1-D one."""
    types = load_numba().types
    number = getattr(types, np.dtype(dtype).name)
    kinds = {
        "int": types.int64,
        "ints": types.int64[::1],
        "value": number,
        "in": types.Array(number, 1, "C", readonly=True),
        "in2d": types.Array(number, 2, "C", readonly=True),
        "out": types.Array(number, 1, "C"),
    }
    return types.void(*(kinds[argument] for argument in arguments))


def compile_generated(source: str, name: str, module, signature, **options):
    """Numba-compile the function ``kernel`` of the generated ``source`` for ``signature``, named
    ``name`` in ``module`` (``nogil``, cached on disk).  Compiled under the module's file name, so
    Numba's cache (next to it) keeps it between processes: the source is a function of that file
    alone, whose changes invalidate the cache."""
    namespace = {"np": np}
    exec(compile(source.replace("def kernel(", f"def {name}("), module.__file__, "exec"), namespace)
    namespace[name].__module__ = module.__name__
    return load_numba().njit([signature], nogil=True, cache=True, **options)(namespace[name])


def io_bytes(spec: ConvSpec) -> int:
    """Bytes of the (unpadded) input plus the output: the scale workspaces are bounded by."""
    inputs = spec.batch * math.prod(spec.in_spatial) * spec.in_channels
    return (inputs + spec.output_positions * spec.out_channels) * spec.item_bytes()


def output_chunks(spec: ConvSpec, bytes_per_position: int, budget_bytes: int):
    """Split the output positions ``(N, *out_spatial)`` into blocks of bounded working memory.

    Yields ``(batch_range, out_ranges)`` with ``batch_range`` a slice and ``out_ranges`` one
    ``(start, stop)`` per spatial dim.  Leading dims are split first; a block holds at most
    ``budget_bytes // bytes_per_position`` positions (at least one), and is contiguous in a C-order
    ``(N, *out_spatial, ...)`` array (fixed leading indices, one split range, whole trailing dims).
    """
    dims = (spec.batch, *spec.out_spatial)
    max_positions = max(1, budget_bytes // max(1, bytes_per_position))
    # Find the first dim to split: everything after it fits in the budget as a whole.
    split = len(dims) - 1
    while split > 0 and math.prod(dims[split:]) <= max_positions:
        split -= 1
    inner = math.prod(dims[split + 1 :])
    step = max(1, max_positions // max(1, inner))
    for outer in np.ndindex(*dims[:split]):
        for start in range(0, dims[split], step):
            block = [(i, i + 1) for i in outer] + [(start, min(start + step, dims[split]))]
            block += [(0, n) for n in dims[split + 1 :]]
            yield slice(*block[0]), tuple(block[1:])


def adjoint_spec(spec: ConvSpec, cropped: bool = False) -> ConvSpec:
    """The forward convolution that computes a stride-1 ``spec``'s input gradient (see
    :func:`backward_input_as_forward`): ``dy`` zero-padded by ``(k - 1) * d`` on both sides,
    channels swapped, giving the gradient of the padded input; ``cropped``: padded by
    ``(k - 1) * d - pad`` instead (a negative pad crops), giving that of the unpadded input."""
    pads = tuple(
        ((k - 1) * d - lo * cropped, (k - 1) * d - hi * cropped)
        for k, d, (lo, hi) in zip(spec.kernel_spatial, spec.dilation, spec.padding)
    )
    return dataclasses.replace(
        spec,
        in_channels=spec.out_channels,
        out_channels=spec.in_channels,
        in_spatial=spec.out_spatial,
        padding=pads,
        out_spatial=spec.in_spatial if cropped else spec.padded_spatial,  # stride 1: the windows cover the input
    )


def rotated_kernel(w: np.ndarray, rank: int) -> np.ndarray:
    """The internal kernel rotated 180 degrees with its channel axes swapped (contiguous): the
    kernel of :func:`adjoint_spec`'s forward."""
    rotated = w[(slice(None), *[slice(None, None, -1)] * rank)]
    return np.ascontiguousarray(np.swapaxes(rotated, -1, -2))


def backward_input_as_forward(dy: np.ndarray, w: np.ndarray, spec: ConvSpec, forward):
    """Gradient w.r.t. the padded input of a stride-1 correlation, run by ``forward`` (whatever
    ``forward`` returns: Winograd's also says whether the result is finite).

    Input position ``p = o + t * d`` receives ``dy[o] @ w[t].T``, so ``dx`` is the full correlation
    of ``dy`` (zero-padded by ``(k - 1) * d`` on both sides) with the kernel rotated 180 degrees and
    its channel axes swapped: a forward convolution, with no scatter-add.
    """
    assert all(s == 1 for s in spec.stride), "stride-1 convolutions only"
    adjoint = adjoint_spec(spec)
    dy_padded = np.zeros((spec.batch, *adjoint.padded_spatial, spec.out_channels), spec.dtype)
    dy_padded[(slice(None), *(slice(lo, lo + o) for o, (lo, _) in zip(spec.out_spatial, adjoint.padding)))] = dy
    return forward(dy_padded, rotated_kernel(w, spec.rank), adjoint)


# ---------------------------------------------------------------- machine model for cost(spec)
# Set from benchmarks/calibrate.py on a 2-core AVX-512 machine (float32); only the ratios between
# algorithms matter to ``auto``, and those carry over between CPUs better than absolute times.
BLAS_FLOPS = 1.4e11  # float32 GEMM with large matrices (float64: half)
SHORT_COPY_BYTES_PER_S = 1.5e9  # strided copies whose contiguous runs are <= 32 bytes
MEMORY_BYTES_PER_S = 1.2e10  # streaming a large operand from memory
CACHE_BYTES = 2**22  # operands beyond this are streamed from memory


def gemm_seconds(m: int, k: int, n: int, dtype, count: int = 1) -> float:
    """Estimated seconds of one call of ``count`` stacked products ``(m, k) @ (k, n)``: BLAS slows
    down on thin shapes; thin products whose operands do not fit the caches run at memory speed
    (measured 8 x (6272x144)@(144x16): 67 GFLOP/s; Winograd's few tiles per block against large
    transformed kernels likewise); stacked small products cost ~0.1 us each beyond their
    arithmetic (288 x (25x16)@(16x16): 47 us)."""
    if min(m, k, n, count) <= 0:
        return 0.0
    itemsize = np.dtype(dtype).itemsize
    efficiency = (min(1.0, m / 64) * min(1.0, k / 32) * min(1.0, n / 32)) ** 0.5
    arithmetic = 2.0 * m * k * n / (BLAS_FLOPS * efficiency / (2 if itemsize == 8 else 1))
    operand_bytes = (m * k + k * n) * itemsize
    memory = (operand_bytes + m * n * itemsize) / MEMORY_BYTES_PER_S if count * operand_bytes > CACHE_BYTES else 0.0
    return count * (max(arithmetic, memory) + 1e-7) + 2e-6


def copy_seconds(nbytes: int, run_bytes: int) -> float:
    """Estimated seconds of a strided copy of ``nbytes`` made of contiguous runs of ``run_bytes``."""
    return nbytes / (SHORT_COPY_BYTES_PER_S * max(1.0, run_bytes / 32) ** 0.6)
