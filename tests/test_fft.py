"""FFT convolution: overlap-save tiling, stride phases, gradients, memory, precision, determinism.

The agreement, gradient and golden suites already run ``fft`` on every configuration it is
eligible for (all of them, small ones included); these tests aim at what small random configs
miss: plans with several tiles and chunks, large kernels and images, and the documented bounds.
"""

import dataclasses
import math
import tracemalloc

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import fft, gemm
from npconv._spec import make_spec

GRADIENT_OPS = ("forward", "backward_input", "backward_weight")


@pytest.fixture
def plans(monkeypatch):
    """Set fft's planning constants (the plan cache is cleared before and after)."""

    def configure(**constants):
        for name, value in constants.items():
            monkeypatch.setattr(fft, name, value)
        fft._plan.cache_clear()

    yield configure
    monkeypatch.undo()
    fft._plan.cache_clear()


def run(op, x, w, dy, algorithm, **params):
    if op == "forward":
        return nc.conv(x, w, algorithm=algorithm, **params)
    if op == "backward_input":
        return nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params)
    return nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params)


def data(x_shape, w_shape, dtype=np.float64, seed=0, **params):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    dy = rng.standard_normal(nc.explain(x_shape, w_shape, **params).output_shape).astype(dtype)
    return x, w, dy


def relative_error(got, expected):
    return np.abs(got - expected).max() / np.abs(expected).max()


def current_plan(x_shape, w_shape, direction="forward", **params):
    return fft._plan_for(make_spec(x_shape, w_shape, **params), direction)


# Large kernels and large images: (x shape, w shape, params).
LARGE = {
    "kernel-31": ((1, 96, 80, 2), (31, 31, 2, 3), dict(padding="same")),
    "image-1d": ((2, 3000, 2), (41, 2, 2), dict(padding="same")),
    "image-2d": ((2, 150, 170, 3), (9, 7, 3, 4), dict(padding="valid")),
    "strided-dilated": ((2, 90, 70, 4), (7, 5, 2, 6), dict(stride=(2, 3), dilation=(3, 2), groups=2, padding=4)),
    "volume": ((1, 30, 26, 28, 2), (9, 7, 9, 2, 3), dict(padding="same")),
}


@pytest.mark.parametrize("case", list(LARGE))
def test_tiled_and_whole_plans_match_direct(plans, case):
    x_shape, w_shape, params = LARGE[case]
    x, w, dy = data(x_shape, w_shape, **params)
    expected = [run(op, x, w, dy, "direct", **params) for op in GRADIENT_OPS]
    plans(BLOCK_FACTORS=(1,))  # the smallest tiles
    assert math.prod(current_plan(x_shape, w_shape, **params).tiles) > 1
    got_tiled = [run(op, x, w, dy, "fft", **params) for op in GRADIENT_OPS]
    plans(BLOCK_FACTORS=(10**9,), MIN_WORKSPACE_BYTES=2**30)  # one tile: the whole output
    assert math.prod(current_plan(x_shape, w_shape, **params).tiles) == 1
    got_whole = [run(op, x, w, dy, "fft", **params) for op in GRADIENT_OPS]
    for tiled_result, whole_result, exact in zip(got_tiled, got_whole, expected):
        assert relative_error(tiled_result, exact) < 1e-12
        assert relative_error(whole_result, exact) < 1e-12


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "two-threads"])
@pytest.mark.parametrize("chunk", [(3, 1), (2, 1), (1, 1)], ids=["tile-by-tile", "batch-split", "item-by-item"])
def test_chunks_give_the_same_result(plans, monkeypatch, chunk, parallel):
    """Any chunking of (batch items, tiles), run two chunks at a time or not, computes the same
    (up to rounding: FFT and BLAS kernels may round a lane differently in a batch of another size)."""
    params = dict(padding="same", groups=2)
    x, w, dy = data((3, 40, 30, 4), (7, 5, 2, 6), **params)
    plans(BLOCK_FACTORS=(1,), MIN_WORKSPACE_BYTES=2**30, MAX_WORKERS=1)  # one chunk
    assert len(list(fft._chunks(3, current_plan(x.shape, w.shape, **params)))) == 1
    whole = [run(op, x, w, dy, "fft", **params) for op in GRADIENT_OPS]
    planned = fft._plan
    chunking = dict(batch_per_chunk=chunk[0], tiles_per_chunk=chunk[1], parallel=parallel)
    monkeypatch.setattr(fft, "_plan", lambda *a: dataclasses.replace(planned(*a), **chunking))
    for op, expected in zip(GRADIENT_OPS, whole):
        assert relative_error(run(op, x, w, dy, "fft", **params), expected) < 1e-14, op


CONFIGS = [
    ((2, 23, 3), (5, 3, 4), dict(stride=3, padding="causal")),
    ((2, 23, 3), (4, 1, 6), dict(stride=2, dilation=3, groups=3, padding=2)),
    ((2, 17, 14, 4), (5, 4, 4, 3), dict(stride=(2, 3), dilation=(1, 2), padding="same")),
    ((1, 17, 14, 6), (3, 3, 1, 12), dict(groups=6, padding="same")),  # depthwise, multiplier 2
    ((2, 17, 14, 4), (2, 2, 4, 2), dict(stride=2, dilation=2, padding="full")),  # gcd(s, d) > 1: one phase
    ((2, 9, 8, 7, 4), (3, 2, 4, 2, 8), dict(stride=(1, 2, 3), dilation=(2, 1, 1), groups=2)),
    ((1, 6, 7, 5, 2), (6, 7, 5, 2, 3), {}),  # kernel as large as the input: one output
    ((3, 16, 16, 2), (16, 16, 2, 1), dict(stride=16)),  # patch embedding: one tap per phase
]


@pytest.mark.parametrize("op", GRADIENT_OPS)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{len(c[0]) - 2}d-{c[2]}")
def test_strides_dilations_groups_ranks(config, op):
    x_shape, w_shape, params = config
    x, w, dy = data(x_shape, w_shape, **params)
    got = run(op, x, w, dy, "fft", **params)
    assert relative_error(got, run(op, x, w, dy, "direct", **params)) < 1e-12


def test_backward_matches_gemm_on_a_wide_layer():
    params = dict(padding="same", groups=2)
    x, w, dy = data((2, 40, 36, 16), (11, 11, 8, 12), **params)
    for op in ("backward_input", "backward_weight"):
        assert relative_error(run(op, x, w, dy, "fft", **params), run(op, x, w, dy, "gemm", **params)) < 1e-12


def test_empty_batch():
    x, w, dy = data((0, 12, 9, 2), (5, 5, 2, 3), padding="same")
    for op in GRADIENT_OPS:
        assert np.array_equal(run(op, x, w, dy, "fft", padding="same"), run(op, x, w, dy, "direct", padding="same"))


# Documented precision (module docstring): max error relative to max |result|, N(0, 1) data.
BOUNDS = {np.float32: 1e-6, np.float64: 1e-14}


@pytest.mark.parametrize("dtype", list(BOUNDS))
def test_precision_is_as_documented(dtype):
    params = dict(padding="same")
    x, w, dy = data((2, 64, 64, 8), (15, 15, 8, 8), **params)
    for op in GRADIENT_OPS:
        exact = run(op, x, w, dy, "gemm", **params)
        got = run(op, *(a.astype(dtype) for a in (x, w, dy)), "fft", **params)
        assert got.dtype == dtype
        assert relative_error(got, exact) < BOUNDS[dtype], op


@pytest.mark.parametrize("op", GRADIENT_OPS)
def test_peak_memory_is_bounded(op):
    """Peak extra memory of the whole call (padding, workspace, result) <= 3 x (input + output)."""
    params = dict(padding="same")
    x, w, dy = data((4, 256, 256, 8), (15, 15, 8, 8), np.float32, **params)
    assert math.prod(current_plan(x.shape, w.shape, op, **params, dtypes=(x.dtype, w.dtype)).tiles) > 1
    tracemalloc.start()
    try:
        run(op, x, w, dy, "fft", **params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3 * (x.nbytes + dy.nbytes), f"{peak / 2**20:.1f} MiB"


def test_deterministic():
    params = dict(stride=2, padding="same", groups=2)
    x, w, dy = data((3, 70, 60, 4), (9, 9, 2, 6), np.float32, **params)
    for op in GRADIENT_OPS:
        first = run(op, x, w, dy, "fft", **params)
        nc.conv(x[:1, :20], w, algorithm="fft", padding="valid", groups=2)  # another plan in between
        assert np.array_equal(first, run(op, x, w, dy, "fft", **params)), op


def test_plans_tile_large_images_and_keep_small_ones_whole():
    assert current_plan((1, 64, 64, 1), (31, 31, 1, 1), padding="same").tiles == (1, 1)
    large = current_plan((1, 2048, 2048, 1), (9, 9, 1, 1), padding="same")
    assert math.prod(large.tiles) > 1 and max(large.fft_shape) < 2048
    assert fft.workspace_bytes(make_spec((1, 2048, 2048, 1), (9, 9, 1, 1), padding="same")) <= (2056**2 + 2048**2) * 4


def test_cost_model_prefers_fft_for_large_kernels_only():
    def fft_over_gemm(x_shape, w_shape, **params):  # estimated seconds, fft / gemm
        spec = make_spec(x_shape, w_shape, **params)
        return fft.cost(spec) / gemm.cost(spec)

    assert fft_over_gemm((1, 512, 512, 1), (31, 31, 1, 1), padding="same") < 0.01
    assert fft_over_gemm((4, 256, 256, 8), (15, 15, 8, 8), padding="same") < 0.1
    assert fft_over_gemm((1, 28, 28, 1), (3, 3, 1, 8)) > 1
    assert nc.explain((1, 512, 512, 1), (31, 31, 1, 1), padding="same").algorithm == "fft"
    assert nc.explain((4, 256, 256, 8), (15, 15, 8, 8), padding="same").algorithm == "fft"
