"""Layer behaviour beyond the golden values: Keras defaults and weight layouts, the three ways to
call a layer, training-only behaviour (Dropout, BatchNormalization), TF's max-pool tie rule,
config round trips, seeds, and clear errors for bad arguments and inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.make_keras_golden import LAYER_CASES

import npconv as nc
from npconv import layers
from npconv.autograd import Tensor
from npconv.layers.base import SymbolicTensor


@pytest.mark.parametrize(
    "layer, input_shape, shapes",
    [
        (layers.Conv2D(8, 3), (1, 5, 5, 3), [(3, 3, 3, 8), (8,)]),
        (layers.Conv2D(8, 3, groups=2, use_bias=False), (1, 5, 5, 4), [(3, 3, 2, 8)]),
        (layers.Conv1D(4, 5), (1, 9, 2), [(5, 2, 4), (4,)]),
        (layers.Conv3D(2, (1, 2, 3)), (1, 4, 4, 4, 3), [(1, 2, 3, 3, 2), (2,)]),
        (layers.Conv2DTranspose(6, 3), (1, 4, 4, 2), [(3, 3, 6, 2), (6,)]),
        (layers.DepthwiseConv2D(3, depth_multiplier=2), (1, 5, 5, 3), [(3, 3, 3, 2), (6,)]),
        (layers.SeparableConv2D(5, 3, depth_multiplier=2), (1, 5, 5, 3), [(3, 3, 3, 2), (1, 1, 6, 5), (5,)]),
        (layers.BatchNormalization(), (2, 4, 7), [(7,)] * 4),
        (layers.BatchNormalization(center=False), (2, 7), [(7,)] * 3),
        (layers.Dense(3), (2, 5), [(5, 3), (3,)]),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, layers.Layer) else None,
)
def test_keras_weight_shapes_order_and_defaults(layer, input_shape, shapes):
    layer(np.zeros(input_shape))
    weights = layer.get_weights()
    assert [w.shape for w in weights] == shapes
    assert all(w.dtype == np.float32 for w in weights)
    names = [w.name for w in layer.weights]
    if isinstance(layer, layers.BatchNormalization):
        assert names[-2:] == ["moving_mean", "moving_variance"] and not layer.weights[-1].trainable
        assert np.array_equal(weights[-1], np.ones(7)) and np.array_equal(weights[-2], np.zeros(7))
    if "bias" in names:
        assert not weights[names.index("bias")].any()  # zeros
    kernel = weights[0]
    if kernel.ndim >= 2 and not isinstance(layer, layers.BatchNormalization):
        fan_in, fan_out = nc.initializers.compute_fans(kernel.shape)
        limit = np.sqrt(6 / (fan_in + fan_out))  # glorot_uniform
        assert 0.5 * limit < np.abs(kernel).max() <= limit


def test_numpy_in_numpy_out_tensor_in_tensor_out_symbolic_in_symbolic_out():
    dense = layers.Dense(2)
    assert isinstance(dense(np.ones((3, 4))), np.ndarray)
    t = dense(Tensor(np.ones((3, 4), dtype=np.float32)))
    assert isinstance(t, Tensor) and t.requires_grad  # reaches the kernel
    s = dense(layers.Input((4,)))
    assert isinstance(s, SymbolicTensor) and s.shape == (None, 2)
    assert dense(np.ones((3, 4), dtype=np.int64)).dtype == np.float32  # ints computed in float32


def test_dropout_only_in_training_inverted_scaling_and_masked_gradient():
    x = np.ones((200, 50), dtype=np.float32)
    drop = layers.Dropout(0.25, seed=3)
    assert np.array_equal(drop(x), x)  # inference: identity
    t = Tensor(x, requires_grad=True)
    y = drop(t, training=True)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    assert np.allclose(y.data[kept], 1 / 0.75)
    y.backward(np.ones_like(x))
    assert np.array_equal(t.grad, y.data)  # d(x * mask / 0.75) / dx
    again = layers.Dropout(0.25, seed=3)(t, training=True)
    assert np.array_equal(again.data, y.data)  # same seed, same mask
    shared = layers.Dropout(0.5, noise_shape=(None, 1), seed=0)(x, training=True)
    assert all(len(set(row)) == 1 for row in shared)  # one decision per row


def test_batchnorm_frozen_layer_runs_in_inference_mode():
    bn = layers.BatchNormalization()
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32) * 5 + 2
    bn(x, training=True)
    moving = [w.copy() for w in bn.get_weights()]
    bn.trainable = False
    y = bn(x, training=True)
    assert all(np.array_equal(a, b) for a, b in zip(bn.get_weights(), moving))
    gamma, beta, mean, var = moving
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-5, atol=1e-6)
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4


def test_max_pool_gradient_goes_to_the_first_maximum_like_tensorflow():
    x = Tensor(np.zeros((1, 4, 4, 1), dtype=np.float32), requires_grad=True)  # every window is a tie
    layers.MaxPooling2D()(x).backward(np.ones((1, 2, 2, 1)))
    assert np.array_equal(x.grad[0, :, :, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    x1 = Tensor(np.array([[[1.0], [3.0], [3.0], [2.0]]]), requires_grad=True)
    layers.MaxPooling1D(2, strides=1, dtype="float64")(x1).backward(np.ones((1, 3, 1)))  # overlapping windows
    assert np.array_equal(x1.grad[0, :, 0], [0, 2, 1, 0])


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_get_config_from_config_round_trip_through_json(case):
    _, class_name, kwargs, shapes, _ = case
    layer = getattr(layers, class_name)(**kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    xs = [np.random.default_rng(0).standard_normal(s) for s in shapes]
    inputs = xs if layer.list_input else xs[0]
    layer(inputs)
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(inputs), layer(inputs))


def test_set_random_seed_makes_initial_weights_reproducible():
    def weights():
        nc.set_random_seed(42)
        model = nc.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
        return model.get_weights()

    first, second = weights(), weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    nc.set_random_seed(43)
    other = nc.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3)]).get_weights()
    assert not np.array_equal(other[0], first[0])
    seeded = nc.initializers.GlorotUniform(seed=1)
    assert np.array_equal(seeded((3, 3)), seeded((3, 3)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: layers.Conv2D(0, 3), "Received: filters=0"),
        (lambda: layers.Conv2D(8, 3, strides=0), "Received: strides=0"),
        (lambda: layers.Conv2D(8, (3, 3, 3)), "kernel_size"),
        (lambda: layers.Conv2D(8, 3, padding="full"), "Received: padding='full'"),
        (lambda: layers.Conv2D(8, 3, padding="causal"), "Received: padding='causal'"),
        (lambda: layers.Conv2D(8, 3, data_format="NHWC"), "Received: data_format='NHWC'"),
        (lambda: layers.Conv2D(8, 3, activation="rleu"), "Could not interpret activation function identifier: 'rleu'"),
        (lambda: layers.Conv2D(8, 3, groups=3), "groups=3, filters=8"),
        (lambda: layers.Conv2D(8, 3, kernel_initializer="glorot"), "Could not interpret initializer identifier"),
        (lambda: layers.Dense(-1), "Received: units=-1"),
        (lambda: layers.Dropout(1.5), "Received: rate=1.5"),
        (lambda: layers.MaxPooling2D(0), "Received: pool_size=0"),
        (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "Received: depth_multiplier=0"),
        (lambda: layers.ZeroPadding2D((1, 2, 3)), "Received: padding=(1, 2, 3)"),
        (lambda: layers.ReLU(max_value=-1), "Received: max_value=-1"),
        (lambda: layers.BatchNormalization(momentum=2), "Received: momentum=2"),
        (lambda: layers.Activation("nope"), "Could not interpret activation"),
    ],
)
def test_bad_constructor_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_unknown_keyword_and_missing_pool_size_are_type_errors():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Conv2D: {'kernel': 3}"):
        layers.Conv2D(8, 3, kernel=3)
    with pytest.raises(TypeError, match="pool_size"):
        layers.AveragePooling2D()


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (layers.Conv2D(4, 3), (2, 28, 28), "expected ndim=4, found ndim=3. Full shape received: (None, 28, 28)"),
        (layers.Conv1D(4, 3), (2, 5, 5, 1), "expected ndim=3, found ndim=4"),
        (layers.MaxPooling2D(), (2, 8), "expected ndim=4, found ndim=2"),
        (layers.Dense(3), (4,), "expected min_ndim=2, found ndim=1"),
        (layers.MaxPooling2D(4), (1, 3, 3, 1), "does not fit"),
        (layers.Conv2D(4, 5), (1, 3, 3, 1), "larger than the padded input"),
    ],
)
def test_wrong_input_rank_or_size_raises_before_computing(layer, shape, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        layer(np.zeros(shape))


def test_input_channels_are_fixed_once_built():
    conv = layers.Conv2D(4, 3)
    conv(np.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        conv(np.zeros((1, 5, 5, 2)))
    with pytest.raises(ValueError, match="matching shapes"):
        layers.Add()([layers.Input((4,)), layers.Input((5,))])
    with pytest.raises(ValueError, match="expects a list"):
        layers.Add()(np.zeros((2, 3)))
