"""Regression tests for promises that once broke under adversarial use: NaN/Inf locality and
overflow on the transform algorithms, read-only arrays, huge strides, zero input channels and
``algorithm="measure"`` raced from many threads."""

import threading

import numpy as np
import pytest

import npconv as nc


def test_one_nan_pixel_stays_in_its_receptive_field_when_auto_picks_fft():
    image = np.random.default_rng(0).random((300, 300))
    image[150, 150] = np.nan
    assert nc.explain((1, 300, 300, 1), (21, 21, 1, 1), padding="same").algorithm == "fft"
    assert np.isnan(nc.image.filter2d(image, np.ones((21, 21)) / 441)).sum() == 21 * 21


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fft_keeps_nonfinite_values_local_in_every_direction(bad):
    rng = np.random.default_rng(1)
    x, w = rng.random((1, 40, 40, 1)) + 0.5, rng.random((15, 15, 1, 3)) + 0.5
    x[0, 20, 20, 0] = bad
    y = nc.conv(x, w, padding="same", algorithm="fft")
    assert (~np.isfinite(y)).sum() == 15 * 15 * 3
    dy = rng.random((1, 40, 40, 3)) + 0.5
    dy[0, 20, 20, 0] = bad
    dx = nc.conv_backprop_input(dy, w, x.shape, padding="same", algorithm="fft")
    assert (~np.isfinite(dx)).sum() == 15 * 15
    model = nc.Sequential([nc.Input((40, 40, 1)), nc.layers.Conv2D(3, 15, padding="same")])
    assert (~np.isfinite(model.predict(x, verbose=0))).sum() == 15 * 15 * 3


@pytest.mark.filterwarnings("error")  # nor does it warn about the overflow it avoided
@pytest.mark.parametrize("algorithm", ["fft", "winograd", "winograd_2x2"])
@pytest.mark.parametrize("direction", ["forward", "input gradient", "filter gradient"])
def test_no_overflow_where_the_exact_result_is_finite(algorithm, direction):
    rng = np.random.default_rng(2)
    size = 3 if algorithm != "fft" else 9
    x = (rng.random((2, 16, 16, 4)) * 1e36).astype(np.float32)
    w = (rng.random((size, size, 4, 4)) * 1e-3).astype(np.float32)
    dy = rng.random((2, 16, 16, 4)).astype(np.float32)
    params = {"padding": "same", "algorithm": algorithm}
    if direction == "forward":
        result, exact = nc.conv(x, w, **params), nc.conv(x.astype(float), w.astype(float), padding="same")
    elif direction == "input gradient":
        result = nc.conv_backprop_input(dy * 1e36, w, x.shape, **params)
        exact = nc.conv_backprop_input(dy.astype(float) * 1e36, w.astype(float), x.shape, padding="same")
    else:
        result = nc.conv_backprop_filter(x, dy, w.shape, **params)
        exact = nc.conv_backprop_filter(x.astype(float), dy.astype(float), w.shape, padding="same")
    assert np.isfinite(exact).all() and np.abs(exact).max() < np.finfo(np.float32).max
    np.testing.assert_allclose(result, exact, rtol=1e-4)


@pytest.mark.parametrize("size", [3, 15])
def test_float32_inputs_and_kernel_near_1e18_through_fft_stay_finite(size):
    rng = np.random.default_rng(3)
    x = (rng.random((1, 32, 32, 1)) * 1e18).astype(np.float32)
    w = (rng.random((size, size, 1, 1)) * 1e18).astype(np.float32)
    exact = nc.conv(x.astype(float), w.astype(float), padding="same")
    assert np.abs(exact).max() < np.finfo(np.float32).max  # finite in float32: 6e37 at most
    np.testing.assert_allclose(nc.conv(x, w, padding="same", algorithm="fft"), exact, rtol=1e-4)


def read_only(array):
    array = np.array(array)
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("shapes", [((4, 28, 28, 1), (3, 3, 1, 32), 1), ((2, 12, 12, 8), (3, 3, 1, 8), 8), ((2, 10, 10, 4), (3, 3, 4, 16), 1)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_read_only_arrays_are_accepted_by_every_algorithm(shapes, padding):
    x_shape, w_shape, groups = shapes
    rng = np.random.default_rng(4)
    x, w = read_only(rng.standard_normal(x_shape, dtype=np.float32)), read_only(rng.standard_normal(w_shape, dtype=np.float32))
    params = {"padding": padding, "groups": groups}
    dy = read_only(nc.conv(x, w, **params))
    for algorithm in nc.explain(x.shape, w.shape, **params).candidates:
        expected = nc.conv(np.array(x), np.array(w), algorithm=algorithm, **params)
        np.testing.assert_array_equal(nc.conv(x, w, algorithm=algorithm, **params), expected, err_msg=algorithm)
        nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params)
        nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params)


@pytest.mark.parametrize("stride", [2**20, 2**31, 2**63])
@pytest.mark.parametrize("algorithm", ["auto", "depthwise", "fft", "gemm", "direct"])
def test_huge_strides_cost_what_the_output_costs(stride, algorithm):
    import tracemalloc

    x, w = np.ones((1, 64, 64, 4)), np.ones((3, 3, 1, 4))
    tracemalloc.start()
    y = nc.conv(x, w, stride=stride, groups=4, algorithm=algorithm)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert y.shape == (1, 1, 1, 4) and (y == 9).all()
    assert peak < 2**20


@pytest.mark.parametrize("params", [{"stride": 5}, {"stride": (7, 2), "padding": "same"}, {"stride": 4, "dilation": (1, 2), "padding": 2}])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_strides_beyond_the_kernel_agree_with_the_reference_in_every_direction(params, mode):
    from reference import conv_reference

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 23, 19, 3)), rng.standard_normal((2, 2, 3, 4))
    params = {**params, "padding_mode": mode}
    if mode != "zeros" and "padding" not in params:
        params["padding"] = 1
    y = nc.conv(x, w, **params)
    np.testing.assert_allclose(y, conv_reference(x, w, **params), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y.shape)
    dx = nc.conv_backprop_input(dy, w, x.shape, **params)
    dw = nc.conv_backprop_filter(x, dy, w.shape, **params)
    # the adjoint identity: <conv(x), dy> = <x, dx> = <w, dw>
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, dx), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(w, dw), rtol=1e-10)


def test_zero_input_channels_give_zeros_and_the_bias():
    x, w, bias = np.ones((1, 8, 8, 0)), np.ones((3, 3, 0, 4)), np.arange(4.0)
    assert nc.explain(x.shape, w.shape).algorithm == "direct"
    np.testing.assert_array_equal(nc.conv(x, w, bias=bias), np.broadcast_to(bias, (1, 6, 6, 4)))
    for algorithm in nc.algorithms():
        try:
            y = nc.conv(x, w, algorithm=algorithm)
        except ValueError:  # not eligible
            continue
        np.testing.assert_array_equal(y, np.zeros((1, 6, 6, 4)))
    assert nc.conv_backprop_input(np.ones((1, 6, 6, 4)), w, x.shape).shape == (1, 8, 8, 0)
    np.testing.assert_array_equal(nc.conv_backprop_filter(x, np.ones((1, 6, 6, 4)), w.shape), np.zeros((3, 3, 0, 4)))


def test_measure_raced_from_many_threads_gives_one_result():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((4, 24, 24, 16), dtype=np.float32), rng.standard_normal((3, 3, 16, 16), dtype=np.float32)
    results, start = [None] * 8, threading.Barrier(8)

    def call(index):
        start.wait()
        results[index] = nc.conv(x, w, padding=((1, 2), (2, 1)), algorithm="measure")

    threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(result, results[0]) for result in results)
