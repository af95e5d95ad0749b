"""Finite-difference checks, in float64, of every layer's gradients (inputs and weights), of the
losses and of the autograd engine's own operations.

The layer configurations are the golden fixture's (``fixtures/make_keras_golden.py``), built here
with ``dtype="float64"``.  :func:`check_gradients` compares ``d sum(f(...) * r) / d a`` from
``backward`` with central differences at up to ``COORDS`` random coordinates of every array.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from fixtures.make_keras_golden import LAYER_CASES

from npconv import activations, layers, losses
from npconv import autograd as ag
from npconv.autograd import Tensor

COORDS = 12
EPS = 1e-6


def check_gradients(function, arrays, rng, rtol=1e-6, atol=1e-7):
    """``function(*tensors) -> Tensor``: analytic gradients of ``sum(output * r)`` w.r.t. each array
    (or Variable) in ``arrays`` equal central differences."""
    tensors = [
        a if isinstance(a, Tensor) else Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays
    ]
    out = function(*tensors)
    cotangent = rng.standard_normal(out.shape)
    for t in tensors:
        t.grad = None
    out.backward(cotangent)
    for index, t in enumerate(tensors):
        assert t.grad is not None and t.grad.shape == t.shape, f"array {index}: no gradient"
        flat = t.data.reshape(-1)
        for i in rng.choice(flat.size, size=min(COORDS, flat.size), replace=False):
            saved = flat[i]
            flat[i] = saved + EPS
            up = float(np.vdot(function(*tensors).data, cotangent))
            flat[i] = saved - EPS
            down = float(np.vdot(function(*tensors).data, cotangent))
            flat[i] = saved
            numeric = (up - down) / (2 * EPS)
            analytic = t.grad.reshape(-1)[i]
            assert analytic == pytest.approx(numeric, rel=rtol, abs=atol), f"array {index}, flat index {i}"


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_gradients_finite_differences(case):
    name, class_name, kwargs, shapes, training = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    layer = getattr(layers, class_name)(dtype="float64", **kwargs)
    xs = [rng.standard_normal(s) for s in shapes]
    layer(xs if layer.list_input else xs[0])
    layer.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else rng.standard_normal(w.shape)
            for w in layer.weights
        ]
    )

    def run(*tensors):
        inputs = list(tensors[: len(xs)])
        return layer(inputs if layer.list_input else inputs[0], training=training)

    check_gradients(run, [*xs, *layer.trainable_weights], rng)


@pytest.mark.parametrize(
    "loss, kind",
    [
        (losses.CategoricalCrossentropy(), "softmax"),
        (losses.CategoricalCrossentropy(label_smoothing=0.1), "probs"),
        (losses.CategoricalCrossentropy(from_logits=True), "logits"),
        (losses.SparseCategoricalCrossentropy(), "softmax"),
        (losses.SparseCategoricalCrossentropy(), "probs"),
        (losses.SparseCategoricalCrossentropy(from_logits=True), "logits"),
        (losses.BinaryCrossentropy(), "sigmoid"),
        (losses.BinaryCrossentropy(), "probs"),
        (losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2), "logits"),
        (losses.MeanSquaredError(), "logits"),
        (losses.MeanAbsoluteError(), "logits"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_loss_gradients_finite_differences(loss, kind):
    rng = np.random.default_rng(7)
    z = rng.standard_normal((5, 4))
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        y = rng.integers(0, 4, 5)
    elif isinstance(loss, losses.BinaryCrossentropy):
        y = rng.integers(0, 2, (5, 4)).astype(float)
    else:
        y = np.eye(4)[rng.integers(0, 4, 5)] if "Categorical" in type(loss).__name__ else rng.standard_normal((5, 4))
    activate = {
        "softmax": activations.softmax,
        "sigmoid": activations.sigmoid,
        "logits": activations.linear,
        # probabilities not produced by an activation: the clipped-log path
        "probs": lambda t: ag.multiply(activations.sigmoid(t), 0.9) + 0.05,
    }[kind]
    check_gradients(lambda t: loss.call(y, activate(t)), [z], rng)


def test_autograd_operations_finite_differences():
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((4,)), rng.standard_normal((4, 2))
    check_gradients(lambda x, y: (x * y + x) / (y * y + 1.0) - y, [a, b], rng)
    check_gradients(lambda x, w: ag.transpose(x @ w, (1, 0)).reshape(-1, 1).sum(axis=1, keepdims=True), [a, c], rng)
    check_gradients(
        lambda x, y: ag.concatenate([x, ag.pad(y.reshape(1, 4), ((1, 1), (0, 0)))], axis=0).mean(axis=0), [a, b], rng
    )
    check_gradients(lambda x: ag.cast(ag.add_n([x, x * 2.0, -x]), np.float64), [a], rng)


@pytest.mark.parametrize("pool_args", [(2, None, "valid"), (3, 2, "same")], ids=["2x2", "3x3s2same"])
def test_max_pool_after_relu_sends_its_gradient_past_the_relu_exactly(pool_args):
    """pool(relu(z)) routes d/dz on the pooled tensor (npconv's shortcut); the reference is the same
    graph through a general ReLU (max_value far away), which takes the ordinary path."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 6, 2))
    pool = layers.MaxPooling2D(*pool_args, dtype="float64")
    conv = layers.Conv2D(3, 3, padding="same", dtype="float64")
    conv(x)

    def model(relu, t, kernel, bias):
        z = conv(t)  # linear conv; the relu is the layer under test
        a = relu(z)
        return pool(a).reshape(2, -1).sum(axis=1, keepdims=True) + a.sum(axis=(1, 2, 3)).reshape(
            2, 1
        )  # a has two consumers

    fast = layers.Activation("relu", dtype="float64")
    reference = layers.ReLU(max_value=1e9, dtype="float64")
    conv_weights = conv.trainable_weights
    grads = []
    for relu in (fast, reference):
        t = Tensor(x.copy(), requires_grad=True)
        for w in conv_weights:
            w.grad = None
        model(relu, t, *conv_weights).backward(np.ones((2, 1)))
        grads.append([t.grad, *(w.grad for w in conv_weights)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    check_gradients(lambda t, *w: model(fast, t, *w), [x, *conv_weights], rng)
