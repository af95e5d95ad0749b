"""Gradients: finite differences, the adjoint identities, and transpose == backprop_input.

``L(x, w) = <conv(x, w), y>`` is affine in x and linear in w, so its central differences along a
random direction equal the directional derivative up to rounding; they are compared with
``<v, conv_backprop_input(y, w, x.shape)>`` and ``<u, conv_backprop_filter(x, y, w.shape)>``.
"""

import numpy as np
import pytest

import npconv as nc
from reference import conv_reference
from sweep import describe, random_config

FD_CHUNKS, FD_PER_CHUNK = 8, 40  # 320 configurations
STEP = 1e-3


def vdot(a, b):
    return float(np.vdot(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()))


@pytest.mark.parametrize("chunk", range(FD_CHUNKS))
def test_finite_differences(chunk):
    rng = np.random.default_rng(2000 + chunk)
    for _ in range(FD_PER_CHUNK):
        config = random_config(rng, dtypes=("float64",))
        x, w, params = config["x"], config["w"], config["params"]
        y = rng.standard_normal(nc.conv(x, w, **params).shape)
        v, u = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

        def loss(x_, w_):
            return vdot(conv_reference(x_, w_, **params), y)  # FD of the independent reference

        fd_x = (loss(x + STEP * v, w) - loss(x - STEP * v, w)) / (2 * STEP)
        fd_w = (loss(x, w + STEP * u) - loss(x, w - STEP * u)) / (2 * STEP)
        scale = 1.0 + np.abs(y).sum() * (1.0 + np.abs(x).max(initial=0) + np.abs(w).max(initial=0)) * (1 + abs(params["pad_value"]))
        for algorithm in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates:
            dx = nc.conv_backprop_input(y, w, x.shape, algorithm=algorithm, **params)
            dw = nc.conv_backprop_filter(x, y, w.shape, algorithm=algorithm, **params)
            assert dx.shape == x.shape and dw.shape == w.shape
            assert abs(vdot(v, dx) - fd_x) <= 1e-9 * scale, f"dx {algorithm}: {describe(config)}"
            assert abs(vdot(u, dw) - fd_w) <= 1e-9 * scale, f"dw {algorithm}: {describe(config)}"


def test_finite_difference_count():
    assert FD_CHUNKS * FD_PER_CHUNK >= 300


@pytest.mark.parametrize("chunk", range(4))
def test_adjoint_identities(chunk):
    """<conv(x, w), y> == <x, backprop_input(y)> == <w, backprop_filter(x, y)> for zeros padding
    (the forward map is then bilinear)."""
    rng = np.random.default_rng(3000 + chunk)
    for _ in range(50):
        config = random_config(rng, dtypes=("float64",))
        x, w, params = config["x"], config["w"], {**config["params"], "padding_mode": "zeros", "pad_value": 0.0}
        for algorithm in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates:
            out = nc.conv(x, w, algorithm=algorithm, **params)
            y = rng.standard_normal(out.shape)
            forward = vdot(out, y)
            via_input = vdot(x, nc.conv_backprop_input(y, w, x.shape, algorithm=algorithm, **params))
            via_filter = vdot(w, nc.conv_backprop_filter(x, y, w.shape, algorithm=algorithm, **params))
            scale = 1.0 + np.abs(out).sum() * np.abs(y).max(initial=0)
            assert abs(forward - via_input) <= 1e-10 * scale, describe(config)
            assert abs(forward - via_filter) <= 1e-10 * scale, describe(config)


@pytest.mark.parametrize("seed", range(60))
def test_conv_transpose_equals_backprop_input_pytorch_conventions(seed):
    """channels_first, explicit padding: ConvTranspose's weight (in, out // g, *k) is the forward
    conv's OIHW kernel, and output_padding selects which forward input size it is the vjp of."""
    rng = np.random.default_rng(seed)
    rank = seed % 3 + 1
    groups = int(rng.integers(1, 3))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = [int(v) for v in rng.integers(1, 4, rank)]
    stride = [int(v) for v in rng.integers(1, 4, rank)]
    dilation = [int(v) for v in rng.integers(1, 3, rank)]
    pads = [(int(p), int(p)) for p in rng.integers(0, 2, rank)]
    spatial = [int(v) + (k - 1) * d + 1 for v, k, d in zip(rng.integers(0, 5, rank), kernel, dilation)]
    x_shape = (2, cin, *spatial)
    w = rng.standard_normal((cout, cin // groups, *kernel))
    params = dict(stride=stride, padding=pads, dilation=dilation, groups=groups, data_format="channels_first")
    dy = rng.standard_normal(nc.explain(x_shape, w.shape, **params).output_shape)
    # output_padding = what the forward size formula floors away
    output_padding = [(n + 2 * p - (k - 1) * d - 1) % s for n, (p, _), k, d, s in zip(spatial, pads, kernel, dilation, stride)]
    expected = nc.conv_backprop_input(dy, w, x_shape, **params)
    got = nc.conv_transpose(dy, w, output_padding=output_padding, **params)
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("seed", range(15))
def test_conv_transpose_equals_backprop_input_keras_conventions(padding, seed):
    """channels_last, string padding: Conv2DTranspose's kernel (*k, out, in) is the forward HWIO
    kernel, and Keras' output size is a forward input size that maps back to the input."""
    rng = np.random.default_rng(seed)
    n, k, s = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
    cin, cout = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((2, n, n + 1, cin))
    w = rng.standard_normal((k, k, cout, cin))  # transpose layout == forward (k, k, cout -> cin)
    y = nc.conv_transpose(x, w, stride=s, padding=padding)
    np.testing.assert_allclose(y, nc.conv_backprop_input(x, w, y.shape, stride=s, padding=padding), atol=1e-12)
    # and the sizes are Keras': same -> n * s; valid -> n * s + max(k - s, 0)
    expected_len = [m * s if padding == "same" else m * s + max(k - s, 0) for m in (n, n + 1)]
    assert list(y.shape[1:3]) == expected_len


def test_gradient_through_reflect_padding_by_hand():
    # x = [a, b, c], reflect pad 1 -> [b, a, b, c, b]; a 1-tap kernel [1] sums ones: gradient counts copies
    dx = nc.conv_backprop_input(np.ones((1, 5, 1)), np.ones((1, 1, 1)), (1, 3, 1), padding=1, padding_mode="reflect")
    np.testing.assert_array_equal(dx[0, :, 0], [1.0, 3.0, 1.0])
    dx = nc.conv_backprop_input(np.ones((1, 5, 1)), np.ones((1, 1, 1)), (1, 3, 1), padding=1, padding_mode="circular")
    np.testing.assert_array_equal(dx[0, :, 0], [2.0, 1.0, 2.0])  # [c, a, b, c, a]
    dx = nc.conv_backprop_input(np.ones((1, 5, 1)), np.ones((1, 1, 1)), (1, 3, 1), padding=1, padding_mode="constant", pad_value=5.0)
    np.testing.assert_array_equal(dx[0, :, 0], [1.0, 1.0, 1.0])  # the constant gets no gradient
