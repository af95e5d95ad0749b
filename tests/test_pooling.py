"""Max pooling: the Numba path (disjoint windows, channels last) against the NumPy path, which the
layer tests check against Keras and finite differences."""

import numpy as np
import pytest

from npconv import layers
from npconv.activations import relu as relu_activation
from npconv.autograd import Tensor
from npconv.layers import pooling

pytestmark = pytest.mark.skipif(not pooling.NUMBA_ENABLED, reason="numba is not installed")

LAYERS = {1: layers.MaxPooling1D, 2: layers.MaxPooling2D, 3: layers.MaxPooling3D}


def pooled_and_gradient(x, layer, g, use_numba, monkeypatch, relu=False):
    monkeypatch.setattr(pooling, "USE_NUMBA", use_numba)
    source = Tensor(x, requires_grad=True)
    inputs = relu_activation(source) if relu else source
    y = layer(inputs)
    y.backward(g)
    return y.data, source.grad


def random_case(rng):
    rank = int(rng.integers(1, 4))
    pool = tuple(int(v) for v in rng.integers(1, 4, rank))
    strides = tuple(k + int(rng.integers(0, 2)) for k in pool)  # disjoint windows, some gaps
    spatial = tuple(k * int(rng.integers(1, 4)) + int(rng.integers(0, 3)) for k in pool)  # remainders too
    dtype = rng.choice([np.float32, np.float64, np.float16])
    x = rng.standard_normal((2, *spatial, int(rng.integers(1, 6)))).astype(dtype)
    x[rng.random(x.shape) < 0.2] = 0.5  # ties: the first maximal tap wins
    return x, LAYERS[rank](pool, strides, dtype=np.dtype(dtype).name)


@pytest.mark.parametrize("seed", range(40))
def test_numba_max_pool_equals_numpy(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    x, layer = random_case(rng)
    relu = bool(rng.integers(0, 2))
    y_shape = layer.compute_output_shape(x.shape)
    g = rng.standard_normal(y_shape).astype(x.dtype)
    y_np, dx_np = pooled_and_gradient(x, layer, g, False, monkeypatch, relu)
    y_nb, dx_nb = pooled_and_gradient(x, layer, g, True, monkeypatch, relu)
    np.testing.assert_array_equal(y_nb, y_np)
    np.testing.assert_array_equal(dx_nb, dx_np)


def test_numba_max_pool_nan_stays_in_its_window(monkeypatch):
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2)
    x[0, 1, 1, 0] = np.nan
    g = np.ones((1, 2, 2, 2), np.float32)
    y_np, dx_np = pooled_and_gradient(x, layers.MaxPooling2D(), g, False, monkeypatch)
    y_nb, dx_nb = pooled_and_gradient(x, layers.MaxPooling2D(), g, True, monkeypatch)
    np.testing.assert_array_equal(y_nb, y_np)
    assert np.isnan(y_nb[0, 0, 0, 0]) and np.isfinite(np.delete(y_nb.ravel(), 0)).all()
    np.testing.assert_array_equal(dx_nb, dx_np)
    assert dx_nb[0, :2, :2, 0].sum() == 0  # a NaN window sends no gradient


@pytest.mark.parametrize("seed", range(20))
def test_inference_max_pool_equals_numpy(seed, monkeypatch):
    """Without a gradient to record, the Numba path computes only the maxima (on the npconv threads)."""
    rng = np.random.default_rng(100 + seed)
    x, layer = random_case(rng)
    x.ravel()[rng.random(x.size) < 0.05] = np.nan  # NaN wins its window, and stays there
    monkeypatch.setattr(pooling, "USE_NUMBA", False)
    expected = layer(x)
    monkeypatch.setattr(pooling, "USE_NUMBA", True)
    np.testing.assert_array_equal(layer(x), expected)
