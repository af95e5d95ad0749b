"""Keras activation functions on :class:`~npconv.autograd.Tensor`, each with its vjp.

``get("relu")`` returns the function; layers accept the same names as Keras (``None`` means
``"linear"``).  ``softmax`` and ``sigmoid`` keep their input in ``output.logits``, so that a
cross-entropy loss computed from their output can use the logits instead (stable and exact).

>>> import numpy as np
>>> from npconv import activations
>>> from npconv.autograd import Tensor
>>> activations.get("relu")(Tensor(np.array([-1.0, 2.0]))).data
array([0., 2.])
>>> activations.get("softmax")(Tensor(np.zeros((1, 4)))).data
array([[0.25, 0.25, 0.25, 0.25]])
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .autograd import Tensor, as_tensor, record, relu_node

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _elementwise(x, y: np.ndarray, derivative) -> Tensor:
    """An elementwise ``y = f(x)`` whose vjp is ``g * derivative()`` (called only when needed)."""
    return record(y, (x,), lambda g: (g * derivative(),))


def linear(x):
    """Identity."""
    return as_tensor(x)


def relu(x, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0):
    """``max(x, 0)``; Keras' general form: ``negative_slope * (x - threshold)`` below ``threshold``,
    ``x`` above, clipped at ``max_value``."""
    x = as_tensor(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return relu_node(x, np.maximum(x.data, 0))
    below = x.data < threshold
    y = np.where(below, negative_slope * (x.data - threshold), x.data).astype(x.dtype, copy=False)
    slope = np.where(below, negative_slope, 1.0).astype(x.dtype)
    if max_value is not None:
        slope[y >= max_value] = 0
        y = np.minimum(y, max_value).astype(x.dtype, copy=False)
    return _elementwise(x, y, lambda: slope)


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return relu(x, max_value=6.0)


def leaky_relu(x, negative_slope: float = 0.2):
    """``x`` if positive, else ``negative_slope * x`` (Keras' default slope 0.2)."""
    return relu(x, negative_slope=negative_slope, threshold=0.0)


def elu(x, alpha: float = 1.0):
    """``x`` if positive, else ``alpha * (exp(x) - 1)``."""
    x = as_tensor(x)
    y = np.where(x.data > 0, x.data, alpha * np.expm1(np.minimum(x.data, 0))).astype(x.dtype, copy=False)
    return _elementwise(x, y, lambda: np.where(x.data > 0, 1.0, y + alpha).astype(x.dtype))


def selu(x):
    """Scaled ELU with the self-normalising constants."""
    x = as_tensor(x)
    negative = SELU_ALPHA * np.expm1(np.minimum(x.data, 0))
    y = (SELU_SCALE * np.where(x.data > 0, x.data, negative)).astype(x.dtype, copy=False)
    return _elementwise(x, y, lambda: (SELU_SCALE * np.where(x.data > 0, 1.0, negative + SELU_ALPHA)).astype(x.dtype))


def gelu(x, approximate: bool = False):
    """``x * Phi(x)`` (exact, Keras' default) or its tanh approximation."""
    x = as_tensor(x)
    v = x.data
    if approximate:
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (v + 0.044715 * v**3))
        y = 0.5 * v * (1 + t)
        return _elementwise(
            x,
            y.astype(x.dtype),
            lambda: (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v)).astype(x.dtype),
        )
    cdf = special.ndtr(v)
    y = (v * cdf).astype(x.dtype, copy=False)
    return _elementwise(x, y, lambda: (cdf + v * np.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)).astype(x.dtype))


def sigmoid(x):
    """``1 / (1 + exp(-x))``; the output keeps ``x`` as its ``logits``."""
    x = as_tensor(x)
    y = special.expit(x.data)
    out = _elementwise(x, y, lambda: y * (1 - y))
    out.logits = x
    return out


def hard_sigmoid(x):
    """``relu6(x + 3) / 6`` (Keras 3)."""
    x = as_tensor(x)
    y = (np.clip(x.data + 3, 0, 6) / 6).astype(x.dtype, copy=False)
    return _elementwise(x, y, lambda: (((x.data > -3) & (x.data < 3)) / 6).astype(x.dtype))


def silu(x):
    """``x * sigmoid(x)`` (also called swish)."""
    x = as_tensor(x)
    s = special.expit(x.data)
    return _elementwise(x, x.data * s, lambda: s * (1 + x.data * (1 - s)))


def tanh(x):
    """Hyperbolic tangent."""
    x = as_tensor(x)
    y = np.tanh(x.data)
    return _elementwise(x, y, lambda: 1 - y * y)


def softplus(x):
    """``log(1 + exp(x))``, computed without overflow."""
    x = as_tensor(x)
    return _elementwise(x, np.logaddexp(0, x.data).astype(x.dtype, copy=False), lambda: special.expit(x.data))


def softsign(x):
    """``x / (1 + |x|)``."""
    x = as_tensor(x)
    d = 1 + np.abs(x.data)
    return _elementwise(x, x.data / d, lambda: 1 / (d * d))


def exponential(x):
    """``exp(x)``."""
    x = as_tensor(x)
    y = np.exp(x.data)
    return _elementwise(x, y, lambda: y)


def softmax(x, axis: int = -1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (shifted by the max: no overflow); keeps ``logits``."""
    x = as_tensor(x)
    y = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y /= y.sum(axis=axis, keepdims=True)
    out = record(y, (x,), lambda g: (y * (g - (g * y).sum(axis=axis, keepdims=True)),))
    out.logits = x if axis in (-1, x.ndim - 1) else None
    return out


def log_softmax(x, axis: int = -1):
    """``x - logsumexp(x)`` along ``axis``."""
    x = as_tensor(x)
    y = x.data - special.logsumexp(x.data, axis=axis, keepdims=True)
    return record(y, (x,), lambda g: (g - np.exp(y) * g.sum(axis=axis, keepdims=True),))


ACTIVATIONS = {
    "linear": linear,
    "relu": relu,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "silu": silu,
    "swish": silu,
    "tanh": tanh,
    "softplus": softplus,
    "softsign": softsign,
    "exponential": exponential,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def apply_in_place(activation, x: Tensor) -> Tensor:
    """``activation(x)`` for an ``x`` that a layer has just computed and that no vjp reads (a
    convolution's or matmul's output): relu then overwrites ``x.data`` instead of allocating."""
    if activation is not relu:
        return activation(x)
    return relu_node(x, np.maximum(x.data, 0, out=x.data))


def get(identifier):
    """The activation function for a Keras name (``None`` -> linear) or a callable (returned as is).

    >>> get(None).__name__, get("swish").__name__
    ('linear', 'silu')
    >>> get("rleu")
    Traceback (most recent call last):
    ...
    ValueError: Could not interpret activation function identifier: 'rleu'. Expected a callable or one of [...]
    """
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in ACTIVATIONS:
        return ACTIVATIONS[identifier.lower()]
    raise ValueError(
        f"Could not interpret activation function identifier: {identifier!r}. "
        f"Expected a callable or one of {sorted(ACTIVATIONS)}"
    )


def serialize(activation) -> str:
    """The name that :func:`get` maps back to ``activation`` (Keras configs store names)."""
    for name, function in ACTIVATIONS.items():
        if function is activation:
            return name
    return getattr(activation, "__name__", repr(activation))
