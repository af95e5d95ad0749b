"""The ``few_channels`` algorithm (Numba only): its forward against the independent reference.

The registry-driven suites run it wherever it is eligible, but random configurations rarely have
``O_g`` a multiple of 16; here a sweep does (ranks 1-3, strides, dilations, groups, every padding
mode, every block size, one-pixel tails, float32/64, empty batches), plus its generated kernels,
determinism, thread-count independence, NaN locality, eligibility and ``auto``'s choice.
"""

from __future__ import annotations

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import _auto_choice, _cached_choice, candidates, few_channels

from reference import conv_reference

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}  # relative to the magnitude of the result

needs_numba = pytest.mark.skipif(not few_channels.NUMBA_ENABLED, reason="numba is not installed")


def random_config(rng):
    """``(x, w, params)``: a few-channel convolution with ``O_g`` a multiple of 16."""
    rank = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2, 3]))
    in_per_group = int(rng.choice([1, 2, 3, 5]))
    out_per_group = int(rng.choice([16, 32, 48, 64]))
    kernel = tuple(int(k) for k in rng.integers(1, 5, rank))
    stride = tuple(int(s) for s in rng.integers(1, 4, rank))
    dilation = tuple(int(d) for d in rng.integers(1, 3, rank))
    spatial = tuple(int(rng.integers((k - 1) * d + 1, (k - 1) * d + 12 - 2 * rank)) for k, d in zip(kernel, dilation))
    padding = tuple((int(rng.integers(0, k)), int(rng.integers(0, k))) for k in kernel)
    mode = str(rng.choice(["zeros", "zeros", "constant", "reflect", "replicate", "circular"]))
    if mode in ("reflect", "circular"):  # pads must stay within the input
        padding = tuple((min(lo, n - 1), min(hi, n - 1)) for (lo, hi), n in zip(padding, spatial))
    batch = int(rng.choice([0, 1, 2, 3]))
    dtype = rng.choice([np.float32, np.float64])
    x = rng.standard_normal((batch, *spatial, groups * in_per_group)).astype(dtype)
    w = rng.standard_normal((*kernel, in_per_group, groups * out_per_group)).astype(dtype)
    params = dict(stride=stride, dilation=dilation, padding=padding, groups=groups, padding_mode=mode, pad_value=0.5)
    return x, w, params


@needs_numba
@pytest.mark.parametrize("direction", ["forward", "backward_weight"])
def test_matches_reference_on_random_configurations(direction):
    """The forward against the reference; the filter gradient ``dw`` through the adjoint identity
    ``<dw, v> == <conv_reference(x, v), dy>`` for a random ``v``, and against ``gemm``'s."""
    rng = np.random.default_rng(11 if direction == "forward" else 12)
    block = few_channels._block if direction == "forward" else few_channels._gradient_block
    table = few_channels.FORWARD_BLOCKS if direction == "forward" else few_channels.GRADIENT_BLOCKS
    blocks = set()
    for _ in range(80 if direction == "forward" else 60):
        x, w, params = random_config(rng)
        blocks.add(block(nc.explain(x.shape, w.shape, dtype=x.dtype, **params).spec))
        expected = conv_reference(x, w, **params)
        if direction == "forward":
            got = nc.conv(x, w, algorithm="few_channels", **params)
            assert got.dtype == x.dtype
        else:
            dy = rng.standard_normal(expected.shape).astype(x.dtype)
            got = nc.conv_backprop_filter(x, dy, w.shape, algorithm="few_channels", **params)
            assert got.dtype == x.dtype
            wide = [a.astype(np.float64) for a in (x, dy)]
            v = rng.standard_normal(w.shape)
            expected = np.vdot(conv_reference(wide[0], v, **params), wide[1])
            assert np.vdot(got.astype(np.float64), v) == pytest.approx(expected, rel=TOLERANCE[x.dtype.type], abs=1e-6)
            got, expected = got.astype(np.float64), nc.conv_backprop_filter(*wide, w.shape, algorithm="gemm", **params)
        assert got.shape == expected.shape
        scale = 1.0 + np.abs(expected).max(initial=0.0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[x.dtype.type] * scale)
    assert blocks == {block for sizes in table.values() for block in sizes.items()}  # every kernel ran


@needs_numba
def test_input_gradient_is_gemms_and_auto_picks_the_filter_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 8, 3))
    w = rng.standard_normal((3, 3, 3, 32))
    dy = rng.standard_normal((2, 9, 8, 32))
    got = nc.conv_backprop_input(dy, w, x.shape, padding="same", algorithm="few_channels")
    np.testing.assert_array_equal(got, nc.conv_backprop_input(dy, w, x.shape, padding="same", algorithm="gemm"))
    estimates = candidates(nc.explain(x.shape, w.shape, padding="same").spec, "backward_input")
    assert estimates["few_channels"] > estimates["gemm"]  # auto names gemm for the input gradient
    fmnist1 = nc.explain((64, 28, 28, 1), (3, 3, 1, 32), padding="same", dtype="float32").spec
    assert _auto_choice(fmnist1, "backward_weight") == "few_channels"


@needs_numba
def test_deterministic_and_thread_count_independent():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 30, 29, 3)).astype(np.float32)
    w = rng.standard_normal((5, 5, 3, 64)).astype(np.float32)
    dy = rng.standard_normal((4, 30, 29, 64)).astype(np.float32)
    runs = (
        lambda: nc.conv(x, w, padding="same", algorithm="few_channels"),
        lambda: nc.conv_backprop_filter(x, dy, w.shape, padding="same", algorithm="few_channels"),
    )
    for run in runs:
        first = run()
        threads = nc.get_num_threads()
        nc.set_num_threads(1)
        try:
            single = run()
        finally:
            nc.set_num_threads(threads)
        np.testing.assert_array_equal(first, single)
        np.testing.assert_array_equal(first, run())


@needs_numba
def test_nonfinite_inputs_stay_local():
    x = np.ones((1, 9, 9, 1))
    x[0, 4, 4, 0] = np.nan
    y = nc.conv(x, np.ones((3, 3, 1, 16)), padding="same", algorithm="few_channels")
    assert np.isnan(y[0, 3:6, 3:6]).all() and np.isfinite(y).sum() == y.size - 9 * 16


@pytest.fixture
def fresh_auto():
    """auto's cached picks forgotten before and after (they depend on ``USE_NUMBA``)."""
    _cached_choice.cache_clear()
    yield
    _cached_choice.cache_clear()


def test_eligibility(monkeypatch, fresh_auto):
    spec = nc.explain((8, 28, 28, 1), (3, 3, 1, 32), padding="same").spec
    assert few_channels.eligible(spec) == (few_channels.NUMBA_ENABLED)
    monkeypatch.setattr(few_channels, "USE_NUMBA", False)  # no numba: gemm is the path
    assert not few_channels.eligible(spec)
    _cached_choice.cache_clear()
    assert nc.explain((8, 28, 28, 1), (3, 3, 1, 32), padding="same").algorithm == "gemm"
    monkeypatch.setattr(few_channels, "USE_NUMBA", True)
    assert not few_channels.eligible(nc.explain((8, 28, 28, 1), (3, 3, 1, 24)).spec)  # O_g not a multiple of 16


@needs_numba
def test_auto_takes_it_for_a_first_layer(fresh_auto):
    assert nc.explain((64, 28, 28, 1), (3, 3, 1, 32), padding="same", dtype="float32").algorithm == "few_channels"


def test_kernel_source_has_one_sum_per_pixel_and_lane():
    source = few_channels._kernel_source(16, 4)
    assert source.count("s3_15 += x3 * w15") == 1 and "s1_0 +=" in source  # block, then one-pixel tail
    compile(source, "<few_channels>", "exec")
