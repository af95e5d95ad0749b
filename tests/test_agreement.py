"""Every algorithm against the independent reference on a broad random sweep.

2100 seeded configurations: ranks 1-3, both layouts (and the NHWC-style names, explicit kernel
formats), strides and dilations 1-3, every padding form and mode, groups incl. depthwise with a
multiplier, bias, flip, float16/32/64, int and bool inputs, batch 0-3.  Each configuration runs
every algorithm ``nc.explain`` lists as eligible, plus ``"auto"``.
"""

import numpy as np
import pytest

import npconv as nc
from reference import conv_reference, conv_transpose_reference, expected_dtype
from sweep import describe, random_config

CHUNKS, PER_CHUNK = 21, 100
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4, np.float16: 1e-2}


def check_close(got, expected, scale, dtype, message):
    tol = TOLERANCE[np.dtype(dtype).type]
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=0, atol=tol * (scale + 1.0), err_msg=message)


def magnitude(config):
    """Max over outputs of sum |x| |w| (the scale of rounding errors), by the reference."""
    params = {**config["params"], "pad_value": abs(config["params"]["pad_value"])}
    return float(np.max(conv_reference(np.abs(config["x"].astype(float)), np.abs(config["w"].astype(float)), **params), initial=0.0))


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_conv_matches_reference(chunk):
    rng = np.random.default_rng(1000 + chunk)
    checked = 0
    for _ in range(PER_CHUNK):
        config = random_config(rng)
        x, w, bias, params = config["x"], config["w"], config["bias"], config["params"]
        expected = conv_reference(x, w, bias=bias, **params)
        scale = magnitude(config) + (0.0 if bias is None else float(np.abs(bias.astype(float)).max()))
        out_dtype = expected_dtype(x.dtype, w.dtype)
        eligible = nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates
        assert set(eligible) <= set(nc.algorithms()) and eligible
        for algorithm in [*eligible, "auto"]:
            y = nc.conv(x, w, bias=bias, algorithm=algorithm, **params)
            assert y.shape == expected.shape and y.dtype == out_dtype, describe(config)
            check_close(y, expected, scale, out_dtype, f"{algorithm}: {describe(config)}")
            checked += 1
    assert checked >= 2 * PER_CHUNK


def test_sweep_size():
    assert CHUNKS * PER_CHUNK >= 2000


@pytest.mark.parametrize("rank, function", [(1, nc.conv1d), (2, nc.conv2d), (3, nc.conv3d)])
def test_rank_wrappers(rank, function):
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, *[5] * rank, 3))
    w = rng.standard_normal((*[2] * rank, 3, 4))
    np.testing.assert_allclose(function(x, w, stride=2, padding="same"), conv_reference(x, w, stride=2, padding="same"), atol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_depthwise_and_separable_match_reference(seed):
    rng = np.random.default_rng(seed)
    channels, multiplier, out = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    channels_last = seed % 2 == 0
    data_format = "channels_last" if channels_last else "channels_first"
    spatial = tuple(int(v) for v in rng.integers(5, 8, 2))  # a dilated 3x3 spans 5
    x = rng.standard_normal((2, *spatial, channels) if channels_last else (2, channels, *spatial))
    dw = rng.standard_normal((3, 3, channels, multiplier))
    pw = rng.standard_normal((1, 1, channels * multiplier, out))
    bias = rng.standard_normal(out)
    params = dict(stride=int(rng.integers(1, 3)), padding=["valid", "same"][seed % 3 == 0], dilation=int(rng.integers(1, 3)))
    # depthwise = grouped conv with the kernel (kh, kw, 1, C * M) in HWIO; output channel c*M + m
    hwio = dw.reshape(3, 3, 1, channels * multiplier)
    expected_dw = conv_reference(x, hwio, groups=channels, data_format=data_format, kernel_format="HWIO", **params)
    np.testing.assert_allclose(nc.depthwise_conv2d(x, dw, data_format=data_format, **params), expected_dw, atol=1e-12)
    expected_sep = conv_reference(expected_dw, pw, data_format=data_format, kernel_format="HWIO", bias=bias)
    got = nc.separable_conv2d(x, dw, pw, data_format=data_format, bias=bias, **params)
    np.testing.assert_allclose(got, expected_sep, atol=1e-12)


def random_transpose_config(rng):
    rank = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 3))
    cin, out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    spatial = [int(v) for v in rng.integers(1, (6, 4, 3)[rank - 1] + 1, rank)]
    kernel = [int(v) for v in rng.integers(1, 4, rank)]
    stride = [int(v) for v in rng.integers(1, 4, rank)]
    dilation = [int(v) for v in rng.integers(1, 3, rank)]
    channels_last = rng.random() < 0.5
    if rng.random() < 0.5:
        padding = ["valid", "same"][rng.integers(2)]
    else:
        padding = [(int(a), int(b)) for a, b in rng.integers(0, 2, (rank, 2))]
    output_padding = None
    if rng.random() < 0.5:
        output_padding = [int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation)]
    x_shape = (2, *spatial, cin) if channels_last else (2, cin, *spatial)
    w_shape = (*kernel, out_g, cin) if channels_last else (cin, out_g, *kernel)
    params = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        data_format="channels_last" if channels_last else "channels_first",
    )
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(out_g * groups), params


def forward_consistent(x, w, params):
    """String padding with output_padding: Keras' output length L must map back to the input size
    under the forward convolution TF runs (SAME: ceil(L / s) == n; VALID: (L - k_eff) // s + 1 == n)."""
    if not isinstance(params["padding"], str) or params["output_padding"] is None:
        return True
    channels_last = params["data_format"] == "channels_last"
    spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    kernel = w.shape[:-2] if channels_last else w.shape[2:]
    for n, k, s, d, op in zip(spatial, kernel, params["stride"], params["dilation"], params["output_padding"]):
        extent = (k - 1) * d + 1
        pad = extent // 2 if params["padding"] == "same" else 0
        length = (n - 1) * s + extent - 2 * pad + op
        back = -(-length // s) if params["padding"] == "same" else (length - extent) // s + 1
        if back < n:
            return False
    return True


@pytest.mark.parametrize("chunk", range(6))
def test_conv_transpose_matches_scatter_reference(chunk):
    rng = np.random.default_rng(500 + chunk)
    done = 0
    while done < 50:
        x, w, bias, params = random_transpose_config(rng)
        if not forward_consistent(x, w, params):  # TF refuses these Keras sizes, and so does npconv
            with pytest.raises(ValueError, match="Received: padding="):
                nc.conv_transpose(x, w, bias=bias, **params)
            continue
        try:
            expected = conv_transpose_reference(x, w, bias=bias, **params)
        except ValueError:  # explicit padding larger than the output: npconv must refuse it too
            with pytest.raises(ValueError, match="Received: padding="):
                nc.conv_transpose(x, w, bias=bias, **params)
            continue
        if expected.size == 0:  # an empty dim: npconv refuses it as well
            with pytest.raises(ValueError, match="Received: padding="):
                nc.conv_transpose(x, w, bias=bias, **params)
            continue
        for algorithm in ["auto", *nc.algorithms()]:
            got = nc.conv_transpose(x, w, bias=bias, algorithm=algorithm, **params)
            np.testing.assert_allclose(got, expected, atol=1e-10, err_msg=f"{algorithm} {params} x{x.shape} w{w.shape}")
        done += 1
