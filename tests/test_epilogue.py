"""The fused epilogue ``conv(..., bias=b, activation="relu")``: equal to ``max(conv(x) + b, 0)`` on
the Numba and NumPy paths, NaN kept, and the layers' fused relu differentiates like the plain one."""

import numpy as np
import pytest

import npconv as nc
from npconv import _epilogue, layers
from npconv.autograd import Tensor


@pytest.mark.parametrize("use_numba", [False, True] if _epilogue.NUMBA_ENABLED else [False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_relu_equals_separate_ops(use_numba, dtype, data_format, monkeypatch):
    monkeypatch.setattr(_epilogue, "USE_NUMBA", use_numba)
    monkeypatch.setattr(_epilogue, "CHUNK_ELEMENTS", 7)  # several chunks on the NumPy path
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 4) if data_format == "channels_last" else (3, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((3, 3, 4, 6) if data_format == "channels_last" else (6, 4, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    x[0, 1, 1, 1] = np.nan
    params = dict(padding="same", data_format=data_format)
    y = nc.conv(x, w, bias=b, activation="relu", **params)
    expected = np.maximum(nc.conv(x, w, bias=b, **params), 0)
    np.testing.assert_array_equal(y, expected)
    assert np.isnan(y).any() and (np.nan_to_num(y) >= 0).all()
    np.testing.assert_array_equal(nc.conv(x, w, activation="relu", **params), np.maximum(nc.conv(x, w, **params), 0))
    np.testing.assert_array_equal(nc.conv(x, w, activation="linear", **params), nc.conv(x, w, **params))


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="Received: activation='tanh'"):
        nc.conv(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 1)), activation="tanh")


def test_empty_batch():
    y = nc.conv(np.ones((0, 4, 4, 1)), np.ones((3, 3, 1, 2)), bias=np.ones(2), activation="relu")
    assert y.shape == (0, 2, 2, 2)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: layers.Conv2D(3, 3, padding="same", activation="relu", dtype="float64"),
        lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", dtype="float64"),
        lambda: layers.SeparableConv2D(3, 3, activation="relu", dtype="float64"),
    ],
)
def test_fused_relu_layer_gradients_equal_unfused(make_layer, monkeypatch):
    """A relu layer runs ``conv(..., activation="relu")``; forcing the separate relu gives the same
    output and gradients (inputs, kernels, biases)."""
    rng = np.random.default_rng(1)
    layer = make_layer()
    x = rng.standard_normal((2, 7, 7, 2))
    layer(x)  # builds the weights
    for weight in layer.weights:  # biases away from zero, so that the relu cuts somewhere
        weight.assign(rng.standard_normal(weight.shape))
    g = rng.standard_normal(layer(x).shape)
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(type(layer), "_fused_activation", lambda self: None)
        source = Tensor(x, requires_grad=True)
        y = layer(source)
        y.backward(g)
        results.append([y.data, source.grad, *(weight.grad for weight in layer.weights)])
        for weight in layer.weights:
            weight.grad = None
    assert (results[0][0] == 0).any() and (results[0][0] > 0).any()
    for fused, plain in zip(*results):
        np.testing.assert_array_equal(fused, plain)
