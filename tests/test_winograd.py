"""Winograd: generated transforms, tiling edge cases, blocking, gradients and measured accuracy.

The agreement, gradient and golden suites already run ``winograd`` / ``winograd_2x2`` on every
eligible configuration; these tests aim at what a random sweep may miss.
"""

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import winograd

from conftest import implementation_fixture
from reference import conv_reference

ALGORITHMS = ["winograd", "winograd_2x2"]


path = implementation_fixture(winograd, "the 2-D tile transforms")


@pytest.mark.parametrize("m", [2, 4])
def test_transforms_compute_a_1d_correlation_exactly(m):
    bt, g, at = winograd.transforms(m)
    rng = np.random.default_rng(m)
    for _ in range(20):
        d, kernel = rng.standard_normal(m + 2), rng.standard_normal(3)
        np.testing.assert_allclose(at @ ((g @ kernel) * (bt @ d)), np.correlate(d, kernel, "valid"), atol=1e-13)
    assert np.array_equal(bt, np.round(bt)), "B^T is scaled to integers"


def test_f4x4_transforms_are_lavins_up_to_row_signs():
    """Lavin & Gray's published F(4x4, 3x3) B^T, up to the sign of each row (Toom-Cook's freedom)."""
    lavin_bt = np.array([
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ])
    bt, _, _ = winograd.transforms(4)
    assert np.array_equal(np.abs(bt), np.abs(lavin_bt))


@pytest.mark.skipif(not winograd.NUMBA_ENABLED, reason="numba is not installed")
@pytest.mark.parametrize("name, m", sorted(winograd._ROWS))
def test_numba_row_transforms_are_the_generated_matrices(name, m):
    """Each straight-line 1-D transform of the Numba kernels applies its generated matrix exactly."""
    bt, _, at = winograd.transforms(m)
    matrix = {"bt": bt, "at": at, "a": at.T}[name]
    rows, size = matrix.shape
    for dtype in (np.float32, np.float64):
        source = np.eye(size, dtype=dtype)[:, None, :].repeat(3, axis=1).reshape(size, 3 * size)  # basis vectors as channels
        target = np.full((rows, 2, 3 * size), np.nan, dtype)
        winograd._rows(winograd._ROWS[name, m], source, 0, target, 1)
        np.testing.assert_array_equal(target[:, 1].reshape(rows, 3, size)[:, 0], matrix.astype(dtype))
        assert np.isnan(target[:, 0]).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_and_numpy_paths_agree(monkeypatch, algorithm, dtype):
    """Random shapes, groups, paddings and block budgets: the two implementations give the same
    results to rounding, in every direction."""
    if not winograd.NUMBA_ENABLED:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    tolerance = 1e-10 if dtype == np.float64 else 2e-4
    for _ in range(6):
        groups = int(rng.integers(1, 4))
        c, o = groups * int(rng.integers(1, 6)), groups * int(rng.integers(1, 6))
        x = rng.standard_normal((int(rng.integers(1, 4)), *rng.integers(1, 15, 2), c)).astype(dtype)
        w = rng.standard_normal((3, 3, c // groups, o)).astype(dtype)
        params = dict(padding=[(int(a), int(b)) for a, b in rng.integers(0, 4, (2, 2))], groups=groups, algorithm=algorithm)
        if any(n + lo + hi < 3 for n, (lo, hi) in zip(x.shape[1:3], params["padding"])):
            continue
        monkeypatch.setattr(winograd, "BLOCK_BYTES", int(rng.choice([2000, 2**22])))
        monkeypatch.setattr(winograd, "KERNEL_CHUNK_BYTES", int(rng.choice([1, 2**20])))  # 1: a row of positions per chunk
        results = {}
        for use_numba in (False, True):
            monkeypatch.setattr(winograd, "USE_NUMBA", use_numba)
            y = nc.conv(x, w, **params)
            dy = np.cos(np.arange(y.size)).reshape(y.shape).astype(dtype)
            results[use_numba] = (y, nc.conv_backprop_input(dy, w, x.shape, **params), nc.conv_backprop_filter(x, dy, w.shape, **params))
        for numpy_result, numba_result in zip(results[False], results[True]):
            scale = np.abs(numpy_result).max() + 1
            np.testing.assert_allclose(numba_result, numpy_result, rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [(1, 1), (3, 3), (4, 4), (5, 7), (9, 2), (13, 17)])
def test_output_sizes_that_do_not_fill_whole_tiles(path, algorithm, size):
    rng = np.random.default_rng(sum(size))
    x = rng.standard_normal((2, *(n + 2 for n in size), 3))
    w = rng.standard_normal((3, 3, 3, 5))
    got = nc.conv(x, w, algorithm=algorithm)
    np.testing.assert_allclose(got, conv_reference(x, w), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kernel_chunk_bytes", [1, 2**20])
def test_blocks_smaller_than_an_image(path, monkeypatch, algorithm, kernel_chunk_bytes):
    """A tiny block budget splits images into tile rows, and the transformed kernel is made whole or
    a row of positions at a time, again per block: forward and both gradients unchanged."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 19, 23, 6))
    w = rng.standard_normal((3, 3, 3, 8))
    dy = rng.standard_normal((2, 19, 23, 8))
    params = dict(padding="same", groups=2)
    expected = [
        nc.conv(x, w, algorithm="gemm", **params),
        nc.conv_backprop_input(dy, w, x.shape, algorithm="gemm", **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm="gemm", **params),
    ]
    monkeypatch.setattr(winograd, "BLOCK_BYTES", 2000)
    monkeypatch.setattr(winograd, "KERNEL_CHUNK_BYTES", kernel_chunk_bytes)
    got = [
        nc.conv(x, w, algorithm=algorithm, **params),
        nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params),
    ]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_blocks_shared_by_threads_give_the_result_of_one_thread(path, monkeypatch, algorithm):
    """Threads share the blocks of tiles (the Numba path, one-chunk ``U``): forward and input
    gradient write disjoint blocks; the filter gradient sums fixed lanes of blocks in order. So
    every bit is the same on any thread count, and matches ``gemm``."""
    from npconv import _threads

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 13, 11, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    dy = rng.standard_normal((5, 13, 11, 6)).astype(np.float32)
    params = dict(padding="same", groups=2)
    runs = (
        lambda algorithm: nc.conv(x, w, algorithm=algorithm, **params),
        lambda algorithm: nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params),
        lambda algorithm: nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params),
    )
    monkeypatch.setattr(winograd, "BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_BLOCK_TILES", 3)  # 3 tiles a block: many blocks, lanes of several
    results = {}
    for threads in (1, 3):
        for module in (winograd, _threads):
            monkeypatch.setattr(module, "threads_for", lambda flops, threads=threads: threads)
        results[threads] = [run(algorithm) for run in runs]
    for one, shared, run in zip(results[1], results[3], runs):
        np.testing.assert_array_equal(one, shared)
        np.testing.assert_allclose(shared, run("gemm"), rtol=1e-4, atol=1e-4 * np.abs(shared).max())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_1d(algorithm):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 29, 4))
    w = rng.standard_normal((3, 4, 6))
    dy = rng.standard_normal((3, 29, 6))
    for padding in ["same", "causal"]:
        np.testing.assert_allclose(
            nc.conv(x, w, padding=padding, algorithm=algorithm), nc.conv(x, w, padding=padding, algorithm="direct"), rtol=1e-10, atol=1e-10
        )
    np.testing.assert_allclose(
        nc.conv_backprop_filter(x, dy, w.shape, padding="same", algorithm=algorithm),
        nc.conv_backprop_filter(x, dy, w.shape, padding="same", algorithm="direct"),
        rtol=1e-10,
        atol=1e-10,
    )


def test_ineligible_configurations():
    x = np.zeros((1, 8, 8, 2))
    for params, w_shape in [
        (dict(stride=2), (3, 3, 2, 2)),
        (dict(dilation=2), (3, 3, 2, 2)),
        ({}, (5, 5, 2, 2)),
        ({}, (3, 1, 2, 2)),
    ]:
        assert "winograd" not in nc.explain(x.shape, w_shape, **params).candidates
        with pytest.raises(ValueError, match="algorithm='winograd'"):
            nc.conv(x, np.zeros(w_shape), algorithm="winograd", **params)
    assert "winograd" not in nc.explain((1, 4, 4, 4, 2), (3, 3, 3, 2, 2)).candidates  # 3-D


# Documented float32 accuracy (module docstring): max error relative to max |y| on N(0, 1) data.
FLOAT32_BOUNDS = {"winograd": 3e-5, "winograd_2x2": 2e-6}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_accuracy_is_as_documented(path, algorithm):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 20, 20, 128))
    w = rng.standard_normal((3, 3, 128, 32))
    exact = nc.conv(x, w, padding=1, algorithm="gemm")
    got = nc.conv(x.astype(np.float32), w.astype(np.float32), padding=1, algorithm=algorithm)
    error = np.abs(got - exact).max() / np.abs(exact).max()
    assert error < FLOAT32_BOUNDS[algorithm], error
    dy = rng.standard_normal(exact.shape)
    exact_dw = nc.conv_backprop_filter(x, dy, w.shape, padding=1, algorithm="gemm")
    got_dw = nc.conv_backprop_filter(x.astype(np.float32), dy.astype(np.float32), w.shape, padding=1, algorithm=algorithm)
    assert np.abs(got_dw - exact_dw).max() / np.abs(exact_dw).max() < FLOAT32_BOUNDS[algorithm]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fallback_runs_exactly_when_the_result_is_not_finite(path, algorithm, monkeypatch):
    """The Numba output pass reports non-finite values as it writes them (the NumPy path sums the
    result): finite results never pay for the fallback, an overflow to inf does."""
    calls = []
    local_forward = winograd._local_forward
    monkeypatch.setattr(winograd, "_local_forward", lambda *args: calls.append(1) or local_forward(*args))
    x, w = np.ones((2, 9, 10, 3), np.float32), np.ones((3, 3, 3, 4), np.float32)
    np.testing.assert_allclose(nc.conv(x, w, padding=1, algorithm=algorithm), nc.conv(x, w, padding=1, algorithm="direct"), rtol=1e-5)
    assert not calls
    x[1, 4, 4, 0] = 3e38  # finite input, infinite sums around it
    y = nc.conv(x, w, padding=1, algorithm=algorithm)
    assert calls and np.array_equal(np.isinf(y), np.isinf(nc.conv(x, w, padding=1, algorithm="direct")))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nonfinite_input_falls_back_to_a_local_result(path, algorithm):
    x = np.ones((1, 12, 12, 2))
    x[0, 5, 6, 1] = np.inf
    w = np.ones((3, 3, 2, 1))
    y = nc.conv(x, w, padding=1, algorithm=algorithm)
    assert np.array_equal(~np.isfinite(y[0, :, :, 0]), ~np.isfinite(nc.conv(x, w, padding=1, algorithm="direct")[0, :, :, 0]))
    assert (~np.isfinite(y)).sum() == 9
    dy = np.ones(y.shape)
    dy[0, 2, 3, 0] = np.nan
    dx = nc.conv_backprop_input(dy, w, x.shape, padding=1, algorithm=algorithm)
    assert np.array_equal(np.isnan(dx), np.isnan(nc.conv_backprop_input(dy, w, x.shape, padding=1, algorithm="direct")))
    assert np.isnan(dx).sum() == 9 * 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("mode, value", [("zeros", 0.0), ("constant", 0.0), ("constant", 2.5), ("reflect", 0.0)])
def test_padding_modes_with_and_without_implicit_padding(path, algorithm, mode, value):
    """Zero padding (``zeros``, or ``constant`` 0) is read implicitly on the Numba path; any other
    border comes padded; either way the results and both gradients match ``gemm``."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 10, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    params = dict(padding=[(2, 1), (0, 3)], padding_mode=mode, pad_value=value)
    spec = nc.explain(x.shape, w.shape, **params).spec
    assert winograd.pads_implicitly(spec) == (path == "numba" and value == 0.0 and mode != "reflect")
    y = nc.conv(x, w, algorithm="gemm", **params)
    dy = rng.standard_normal(y.shape)
    for op, expected in [
        (lambda a: nc.conv(x, w, algorithm=a, **params), y),
        (lambda a: nc.conv_backprop_input(dy, w, x.shape, algorithm=a, **params), nc.conv_backprop_input(dy, w, x.shape, algorithm="gemm", **params)),
        (lambda a: nc.conv_backprop_filter(x, dy, w.shape, algorithm=a, **params), nc.conv_backprop_filter(x, dy, w.shape, algorithm="gemm", **params)),
    ]:
        np.testing.assert_allclose(op(algorithm), expected, rtol=1e-10, atol=1e-10)
