"""The ``depthwise`` algorithm: its NumPy and Numba paths against ``direct`` / ``gemm`` and each other.

The registry-driven suites run ``depthwise`` on every eligible configuration, but only with the
path that is active (Numba when installed); here both paths run on random depthwise and small-group
configurations (ranks 1-3, strides, dilations, channel multipliers, float32/64, empty batches),
plus determinism, blocking, eligibility, ``auto``'s choice and the memory bound.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import npconv as nc
from npconv._threads import PARALLEL_FLOPS
from npconv.algorithms import depthwise

from conftest import implementation_fixture

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}  # relative to the magnitude of the result


path = implementation_fixture(depthwise, "``depthwise``")


def random_config(rng):
    """``(x, w, dy, params)`` of a random depthwise (mostly) or small-group convolution."""
    rank = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 9))
    in_per_group = int(rng.choice([1, 1, 1, 2, 3, 8]))
    multiplier = int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, rank))
    stride = tuple(int(s) for s in rng.integers(1, 4, rank))
    dilation = tuple(int(d) for d in rng.integers(1, 3, rank))
    spatial = tuple(int(rng.integers((k - 1) * d + 1, (k - 1) * d + 9 - 2 * rank)) for k, d in zip(kernel, dilation))
    padding = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(rank))
    batch = int(rng.choice([0, 1, 2, 3]))
    dtype = rng.choice([np.float32, np.float64])
    x = rng.standard_normal((batch, *spatial, groups * in_per_group)).astype(dtype)
    w = rng.standard_normal((*kernel, in_per_group, groups * multiplier)).astype(dtype)
    params = dict(stride=stride, dilation=dilation, padding=padding, groups=groups)
    dy = rng.standard_normal(nc.explain(x.shape, w.shape, **params).output_shape).astype(dtype)
    return x, w, dy, params


def run_all(x, w, dy, params, algorithm):
    return (
        nc.conv(x, w, algorithm=algorithm, **params),
        nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params),
    )


def assert_close(got, expected, dtype):
    scale = 1.0 + np.abs(expected).max(initial=0.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype] * scale * 10)


def test_matches_direct_and_gemm_on_random_configurations(path):
    """Forward against ``direct``, both gradients against ``gemm``'s."""
    rng = np.random.default_rng(2024)
    for _ in range(60):
        x, w, dy, params = random_config(rng)
        got = run_all(x, w, dy, params, "depthwise")
        expected = (nc.conv(x, w, algorithm="direct", **params), *run_all(x, w, dy, params, "gemm")[1:])
        for g, e in zip(got, expected):
            assert g.shape == e.shape and g.dtype == e.dtype
            assert_close(g, e, x.dtype.type)


def test_numpy_and_numba_paths_agree(monkeypatch):
    """The forward adds in the same order on both paths: the same bits; gradients within rounding."""
    if not depthwise.NUMBA_ENABLED:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(7)
    for _ in range(40):
        x, w, dy, params = random_config(rng)
        results = {}
        for use_numba in (False, True):
            monkeypatch.setattr(depthwise, "USE_NUMBA", use_numba)
            results[use_numba] = run_all(x, w, dy, params, "depthwise")
        assert np.array_equal(results[False][0], results[True][0])
        for g, e in zip(results[True][1:], results[False][1:]):
            assert_close(g, e, x.dtype.type)


@pytest.mark.parametrize("mode", ["zeros", "constant", "reflect", "circular"])
def test_unrolled_forward_matches_the_segment_loops(mode, monkeypatch):
    """Channel multiplier 1: the unrolled kernel (zero padding read implicitly, other modes from the
    padded copy) gives the segment loops' bits, at every border, for ranks 1-3 and up to 27 taps."""
    if not depthwise.NUMBA_ENABLED:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(17)
    for _ in range(12):
        x, w, _, params = random_config(rng)
        channels = int(rng.choice([32, 40]))
        x = rng.standard_normal((*x.shape[:-1], channels)).astype(x.dtype)
        w = rng.standard_normal((*w.shape[:-2], 1, channels)).astype(x.dtype)
        params = dict(params, groups=channels, padding_mode=mode, pad_value=0.5)
        if mode in ("reflect", "circular"):  # pads must stay within the input
            params["padding"] = tuple((min(lo, n - 1), min(hi, n - 1)) for (lo, hi), n in zip(params["padding"], x.shape[1:-1]))
        spec = nc.explain(x.shape, w.shape, dtype=x.dtype, **params).spec
        assert depthwise._unrolled(spec) and depthwise.pads_implicitly(spec) == (mode == "zeros")
        unrolled = nc.conv(x, w, algorithm="depthwise", **params)
        monkeypatch.setattr(depthwise, "MAX_UNROLLED_TAPS", 0)
        assert np.array_equal(unrolled, nc.conv(x, w, algorithm="depthwise", **params))
        monkeypatch.undo()
    x = rng.standard_normal((2, 5, 6, 7, 32))
    for kernel, unrolled in (((3, 3, 3), True), ((2, 2, 7), False)):  # 27 taps; 28 take the segment loops
        w = rng.standard_normal((*kernel, 1, 32))
        assert depthwise._unrolled(nc.explain(x.shape, w.shape, groups=32, padding="same").spec) == unrolled
        expected = nc.conv(x, w, groups=32, padding="same", algorithm="direct")
        np.testing.assert_allclose(nc.conv(x, w, groups=32, padding="same", algorithm="depthwise"), expected, rtol=1e-12, atol=1e-12)
    assert not depthwise._unrolled(nc.explain((1, 9, 9, 16), (3, 3, 1, 16), groups=16).spec)  # too few channels


def test_deterministic_whatever_the_thread_count(path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64, 64, 48)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 96)).astype(np.float32)
    dy = rng.standard_normal((4, 32, 32, 96)).astype(np.float32)
    params = dict(padding=1, stride=2, groups=48)
    assert nc.explain(x.shape, w.shape, **params).flops >= PARALLEL_FLOPS  # runs in parallel
    first = run_all(x, w, dy, params, "depthwise")
    if path == "numba":
        threads = nc.get_num_threads()
        nc.set_num_threads(1)
        try:
            again = run_all(x, w, dy, params, "depthwise")
        finally:
            nc.set_num_threads(threads)
    else:
        again = run_all(x, w, dy, params, "depthwise")
    for a, b in zip(first, again):
        assert np.array_equal(a, b)


def test_small_blocks_and_segments(path, monkeypatch):
    """Smaller NumPy blocks and Numba segments split the work differently: same results."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 11, 13, 12))
    w = rng.standard_normal((3, 2, 2, 18))
    dy = rng.standard_normal((3, 6, 12, 18))
    params = dict(padding=((1, 1), (0, 1)), stride=(2, 1), dilation=(1, 2), groups=6)
    expected = run_all(x, w, dy, params, "depthwise")  # one block, one segment per line
    monkeypatch.setattr(depthwise, "BLOCK_BYTES", 100)
    for segment in (5, 30):  # segments of 1 position (16 blocks of dw partial sums); of 5, 5 and 2
        monkeypatch.setattr(depthwise, "SEGMENT", segment)
        for g, e in zip(run_all(x, w, dy, params, "depthwise"), expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_nonfinite_values_stay_in_their_receptive_field(path):
    x = np.ones((1, 9, 10, 4))
    x[0, 4, 5, 2] = np.nan
    w = np.ones((3, 3, 1, 8))
    y = nc.conv(x, w, padding=1, groups=4, algorithm="depthwise")
    bad = ~np.isfinite(y)
    assert bad[0, 3:6, 4:7, 4:6].all() and bad.sum() == 18
    dy = np.ones(y.shape)
    dy[0, 0, 0, 7] = np.inf
    dx = nc.conv_backprop_input(dy, w, x.shape, padding=1, groups=4, algorithm="depthwise")
    assert (~np.isfinite(dx)).sum() == 4 and not np.isfinite(dx[0, :2, :2, 3]).any()


def test_eligibility_and_auto():
    assert "depthwise" in nc.explain((8, 28, 28, 256), (3, 3, 1, 256), padding=1, groups=256).candidates
    assert "depthwise" in nc.explain((8, 28, 28, 64), (3, 3, 8, 64), padding=1, groups=8).candidates
    grouped = nc.explain((8, 28, 28, 128), (3, 3, 16, 128), padding=1, groups=8)  # in_per_group 16: gemm's
    assert "depthwise" not in grouped.candidates
    with pytest.raises(ValueError, match="algorithm='depthwise'"):
        nc.conv(np.zeros((1, 4, 4, 32)), np.zeros((3, 3, 16, 32)), groups=2, algorithm="depthwise")
    if not depthwise.NUMBA_ENABLED:  # the NumPy path's picks are measured in test_auto_choice.py
        return
    for shape, kernel, params in [
        ((8, 28, 28, 256), (3, 3, 1, 256), dict(padding=1, groups=256)),
        ((8, 112, 112, 32), (3, 3, 1, 32), dict(padding=1, groups=32)),
        ((8, 56, 56, 64), (3, 3, 1, 128), dict(padding=1, stride=2, groups=64)),
        ((16, 256, 64), (7, 1, 64), dict(padding=3, groups=64)),
    ]:
        assert nc.explain(shape, kernel, **params).algorithm == "depthwise", (shape, kernel)
    # eligible, but one group of 8 channels gives vectors of one channel: gemm is 5x faster
    assert nc.explain((8, 56, 56, 8), (3, 3, 8, 64), padding=1).algorithm != "depthwise"


@pytest.mark.parametrize("op", ["forward", "backprop_input", "backprop_filter"])
def test_peak_memory_is_bounded(path, op):
    """Extra memory <= 3 x (input + output), with every layout copy (multiplier, stride 2, C_g 2)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 48, 48, 64), dtype=np.float32)
    w = rng.standard_normal((3, 3, 2, 64), dtype=np.float32)
    params = dict(padding=1, stride=2, groups=32)
    dy = rng.standard_normal(nc.explain(x.shape, w.shape, **params).output_shape, dtype=np.float32)
    run = {
        "forward": lambda: nc.conv(x, w, algorithm="depthwise", **params),
        "backprop_input": lambda: nc.conv_backprop_input(dy, w, x.shape, algorithm="depthwise", **params),
        "backprop_filter": lambda: nc.conv_backprop_filter(x, dy, w.shape, algorithm="depthwise", **params),
    }[op]
    run()  # compile first: Numba's own allocations are not what is measured
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 3 * (x.nbytes + dy.nbytes), (peak, x.nbytes + dy.nbytes)
