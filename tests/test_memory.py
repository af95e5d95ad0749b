"""gemm's memory bound: peak extra memory <= max(3 x (input + output) bytes, 64 MiB), measured."""

import tracemalloc

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import winograd

MiB = 2**20


def peak_bytes(function):
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


CASES = {
    # in + out large: the bound is 3 x (input + output)
    "large-activations": ((2, 96, 96, 64), (3, 3, 64, 64), {"padding": "same"}),
    # a full im2col would be 49 x the input (~200 MiB): chunking must keep it under 64 MiB
    "wide-kernel": ((1, 64, 64, 256), (7, 7, 256, 8), {"padding": "same"}),
    "strided-grouped": ((4, 64, 64, 32), (3, 3, 8, 32), {"stride": 2, "groups": 4, "padding": 1}),
}


@pytest.mark.parametrize("op", ["forward", "backprop_input", "backprop_filter"])
@pytest.mark.parametrize("case", list(CASES))
def test_gemm_peak_memory_is_bounded(case, op):
    x_shape, w_shape, params = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    y_shape = nc.explain(x_shape, w_shape, **params).output_shape
    dy = rng.standard_normal(y_shape, dtype=np.float32)
    run = {
        "forward": lambda: nc.conv(x, w, algorithm="gemm", **params),
        "backprop_input": lambda: nc.conv_backprop_input(dy, w, x.shape, algorithm="gemm", **params),
        "backprop_filter": lambda: nc.conv_backprop_filter(x, dy, w.shape, algorithm="gemm", **params),
    }[op]
    bound = max(3 * (x.nbytes + dy.nbytes), 64 * MiB)
    peak = peak_bytes(run)
    assert peak <= bound, f"peak {peak / MiB:.1f} MiB > bound {bound / MiB:.1f} MiB"


def test_auto_passes_over_algorithms_beyond_its_memory_budget():
    """Winograd's transformed kernel for 512 -> 512 channels on 7x7, even one row of positions of it
    (6 MiB for F(4x4, 3x3)), exceeds twice input + output (1.6 MiB): auto passes over both variants
    there, and its pick's measured peak stays within 3x input + output."""
    x_shape, w_shape = (8, 7, 7, 512), (3, 3, 512, 512)
    explanation = nc.explain(x_shape, w_shape, padding=1)
    assert {"winograd", "winograd_2x2"} <= set(explanation.over_memory)
    assert explanation.algorithm not in explanation.over_memory
    assert "passed over for memory" in str(explanation)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    nc.conv(x, w, padding=1)  # warm-up: Numba kernels compile or load on their first call
    peak = peak_bytes(lambda: nc.conv(x, w, padding=1))
    assert peak <= 3 * 2 * x.nbytes, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.skipif(not winograd.USE_NUMBA, reason="the row-by-row kernel transform is the Numba path's")
def test_winograd_makes_a_large_transformed_kernel_in_chunks():
    """F(4x4, 3x3)'s whole transformed kernel for 256 -> 256 channels (9 MiB) is 3x input + output
    on 8x14x14: made a row of positions at a time, its workspace is within auto's budget and its
    measured peak, forward and filter gradient, within 3x input + output."""
    x_shape, w_shape = (8, 14, 14, 256), (3, 3, 256, 256)
    assert "winograd" not in nc.explain(x_shape, w_shape, padding=1).over_memory
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    runs = [lambda: nc.conv(x, w, padding=1, algorithm="winograd"), lambda: nc.conv_backprop_filter(x, x, w.shape, padding=1, algorithm="winograd")]
    for run in runs:
        run()  # warm-up: Numba kernels compile or load on their first call
        peak = peak_bytes(run)
        assert peak <= 3 * 2 * x.nbytes, f"peak {peak / MiB:.1f} MiB"
