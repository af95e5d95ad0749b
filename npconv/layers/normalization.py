"""``BatchNormalization`` with Keras 3's defaults, weights and training/inference behaviour.

Training (``fit``, or ``training=True``): normalise with the batch's mean and (biased) variance over
every axis but ``axis``, and update ``moving = moving * momentum + batch * (1 - momentum)``.
Inference (``predict``, ``evaluate``, a plain call, or a non-trainable layer): use the moving
statistics.  Weights, in ``get_weights()`` order: ``gamma`` (if ``scale``), ``beta`` (if
``center``), ``moving_mean``, ``moving_variance``, each ``(channels,)``.

>>> import numpy as np
>>> from npconv import layers
>>> bn = layers.BatchNormalization()
>>> x = np.array([[0.0, 10.0], [2.0, 30.0]])
>>> bn(x, training=True)                              # batch statistics: (x - mean) / sqrt(var + 0.001)
array([[-0.9995004, -0.999995 ],
       [ 0.9995004,  0.999995 ]], dtype=float32)
>>> bn.moving_mean.data.round(6)                     # 0.99 * 0 + 0.01 * batch mean
array([0.01, 0.2 ], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .. import initializers
from ..autograd import Tensor, record
from .base import Layer


def batch_norm_training(x: Tensor, gamma, beta, axis: int, epsilon: float):
    """``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the batch's statistics over every
    axis but ``axis``; returns ``(y, mean, var)``.  One fused vjp:
    ``dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))``."""
    data = x.data
    reduce = tuple(a for a in range(data.ndim) if a != axis)
    shape = [1] * data.ndim
    shape[axis] = data.shape[axis]
    mean = data.mean(axis=reduce, keepdims=True)
    centred = data - mean
    var = np.mean(np.square(centred), axis=reduce, keepdims=True)
    inv_std = 1 / np.sqrt(var + data.dtype.type(epsilon))
    xhat = centred
    xhat *= inv_std
    scale = inv_std if gamma is None else inv_std * gamma.data.reshape(shape)
    y = xhat * (1 if gamma is None else gamma.data.reshape(shape))
    if beta is not None:
        y += beta.data.reshape(shape)
    parents = tuple(p for p in (x, gamma, beta) if p is not None)

    def vjp(g):
        g_sum = g.sum(axis=reduce, keepdims=True)
        gx_sum = (g * xhat).sum(axis=reduce, keepdims=True)
        grads = []
        if x.requires_grad:
            count = data.size // data.shape[axis]
            dx = xhat * (gx_sum / count)
            dx += g_sum / count
            np.subtract(g, dx, out=dx)
            dx *= scale
            grads.append(dx)
        else:
            grads.append(None)
        if gamma is not None:
            grads.append(gx_sum.reshape(-1))
        if beta is not None:
            grads.append(g_sum.reshape(-1))
        return grads

    return record(y, parents, vjp), mean.reshape(-1), var.reshape(-1)


class BatchNormalization(Layer):
    """Keras ``BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True, ...)``."""

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"Invalid type for argument `axis`: expected an int. Received: axis={axis!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(
                f"Invalid value for argument `momentum`: expected a float in [0, 1]. Received: momentum={momentum!r}"
            )
        if not epsilon > 0:
            raise ValueError(
                f"Invalid value for argument `epsilon`: expected a positive float. Received: epsilon={epsilon!r}"
            )
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.input_min_ndim = 2
        self.initializers = {
            "beta_initializer": initializers.get(beta_initializer),
            "gamma_initializer": initializers.get(gamma_initializer),
            "moving_mean_initializer": initializers.get(moving_mean_initializer),
            "moving_variance_initializer": initializers.get(moving_variance_initializer),
        }

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"Invalid value for argument `axis`: out of range for input_shape={input_shape}. "
                f"Received: axis={self.axis}"
            )
        self._axis = self.axis % ndim
        channels = input_shape[self._axis]
        self.input_axes = {self._axis: channels}
        init = self.initializers
        self.gamma = self.add_weight("gamma", (channels,), init["gamma_initializer"]) if self.scale else None
        self.beta = self.add_weight("beta", (channels,), init["beta_initializer"]) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (channels,), init["moving_mean_initializer"], trainable=False)
        self.moving_variance = self.add_weight(
            "moving_variance", (channels,), init["moving_variance_initializer"], trainable=False
        )

    def call(self, inputs, training=None):
        if training and self.trainable:
            y, mean, var = batch_norm_training(inputs, self.gamma, self.beta, self._axis, self.epsilon)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
                moving.data *= self.momentum
                moving.data += (1 - self.momentum) * batch
            return y
        shape = [1] * inputs.ndim
        shape[self._axis] = -1
        inv_std = 1 / np.sqrt(self.moving_variance.data + self.dtype.type(self.epsilon))
        y = (inputs - self.moving_mean.data.reshape(shape)) * inv_std.reshape(shape)
        if self.gamma is not None:
            y = y * self.gamma.reshape(shape)
        if self.beta is not None:
            y = y + self.beta.reshape(shape)
        return y

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{name: initializers.serialize(init) for name, init in self.initializers.items()},
        }
