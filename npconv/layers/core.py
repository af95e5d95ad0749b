"""Core layers: Dense, Flatten, Dropout, Activation, ReLU, Add, Concatenate, ZeroPadding1D/2D/3D.

>>> import numpy as np
>>> from npconv import layers
>>> layers.Flatten()(np.ones((2, 3, 4, 5))).shape
(2, 60)
>>> layers.ZeroPadding2D(((1, 0), (0, 2)))(np.ones((1, 2, 2, 1)))[0, :, :, 0]
array([[0., 0., 0., 0.],
       [1., 1., 0., 0.],
       [1., 1., 0., 0.]], dtype=float32)
>>> layers.Concatenate()([np.ones((1, 2)), np.zeros((1, 3))])
array([[1., 1., 0., 0., 0.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .. import activations, initializers
from .. import autograd as ag
from .._spec import _is_int, received
from . import _args
from .base import Layer


class Dense(Layer):
    """``activation(x @ kernel + bias)`` over the last axis; kernel ``(in, units)``, bias ``(units,)``."""

    size_arguments = ("units",)

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _args.positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.input_min_ndim = 2

    def build(self, input_shape):
        features = input_shape[-1]
        self.input_axes = {-1: features}
        self.kernel = self.add_weight("kernel", (features, self.units), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) if self.use_bias else None

    def call(self, inputs, training=None):
        return activations.apply_in_place(self.activation, ag.dense(inputs, self.kernel, self.bias))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class Flatten(Layer):
    """``(N, ...) -> (N, prod(...))``; channels_first inputs are moved to channels_last first (Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _args.data_format(data_format)

    def call(self, inputs, training=None):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ag.transpose(inputs, (0, *range(2, inputs.ndim), 1))
        return inputs.reshape(inputs.shape[0], -1)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Dropout(Layer):
    """During training, zero each input with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``; the identity otherwise.  ``noise_shape`` shares one mask along its size-1 axes."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _args.fraction(rate, "rate")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._generator = None if seed is None else np.random.default_rng(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(n if m is None else m for n, m in zip(inputs.shape, self.noise_shape))
        generator = self._generator or initializers.global_generator()
        keep = generator.random(shape, dtype=np.float32 if inputs.dtype != np.float64 else np.float64) >= self.rate
        return ag.where_mask(inputs, keep, 1 / (1 - self.rate))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Activation(Layer):
    """Applies an activation function by name (``"relu"``, ``"softmax"``, ...) or callable."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs, training=None):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(Layer):
    """Keras ``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. {received(max_value=max_value)}")
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                f"negative_slope of a ReLU layer cannot be a negative value. {received(negative_slope=negative_slope)}"
            )
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)

    def call(self, inputs, training=None):
        return activations.relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        config = {"max_value": self.max_value, "negative_slope": self.negative_slope, "threshold": self.threshold}
        return {**super().get_config(), **config}


class _Merge(Layer):
    list_input = True

    def _check_shapes(self, shapes, skip_axis=None):
        if len(shapes) < 2:
            raise ValueError(
                f'Layer "{self.name}" should be called on a list of at least 2 inputs. Received: {len(shapes)} input(s)'
            )
        first = list(shapes[0])
        for shape in shapes[1:]:
            a, b = list(shape), list(first)
            if skip_axis is not None and len(a) == len(b):
                a.pop(skip_axis)
                b.pop(skip_axis)
            if a != b:
                raise ValueError(
                    f'Layer "{self.name}" needs inputs with matching shapes'
                    f"{'' if skip_axis is None else ' except for the concatenation axis'}. "
                    f"Received: input_shape={list(shapes)}"
                )


class Add(_Merge):
    """Elementwise sum of a list of same-shape inputs."""

    def build(self, input_shape):
        self._check_shapes(input_shape)

    def call(self, inputs, training=None):
        return ag.add_n(inputs)


class Concatenate(_Merge):
    """Concatenation of a list of inputs along ``axis`` (default the last, channels)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(axis):
            raise TypeError(f"Invalid type for argument `axis`: expected an int. {received(axis=axis)}")
        self.axis = int(axis)

    def build(self, input_shape):
        ndim = len(input_shape[0])
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"Invalid value for argument `axis` for inputs of rank {ndim}. {received(axis=self.axis)}")
        self._check_shapes(input_shape, skip_axis=self.axis % ndim)

    def call(self, inputs, training=None):
        return ag.concatenate(inputs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _ZeroPadding(Layer):
    def __init__(self, rank, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.input_ndim = rank + 2
        self.data_format = _args.data_format(data_format)
        self.padding = self._pairs(padding)

    def _pairs(self, padding) -> tuple[tuple[int, int], ...]:
        rank = self.rank
        if _is_int(padding):
            pairs = ((padding, padding),) * rank
        elif (
            rank == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int(p) for p in padding)
        ):
            pairs = (tuple(padding),)  # ZeroPadding1D((before, after))
        elif isinstance(padding, (tuple, list)) and len(padding) == rank and all(_is_int(p) for p in padding):
            pairs = tuple((p, p) for p in padding)
        elif (
            isinstance(padding, (tuple, list))
            and len(padding) == rank
            and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) for v in p) for p in padding)
        ):
            pairs = tuple(tuple(p) for p in padding)
        else:
            raise ValueError(
                f"Invalid value for argument `padding`: expected an int, {rank} ints or {rank} (before, after) "
                f"pairs. {received(padding=padding)}"
            )
        if any(v < 0 for pair in pairs for v in pair):
            raise ValueError(f"Invalid value for argument `padding`: must be >= 0. {received(padding=padding)}")
        return tuple((int(a), int(b)) for a, b in pairs)

    def call(self, inputs, training=None):
        pad_width = [(0, 0)] * inputs.ndim
        for axis, pair in zip(_args.spatial_axes(self.data_format, inputs.ndim), self.padding):
            pad_width[axis] = pair
        return ag.pad(inputs, pad_width)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(1, padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Zeros around the height and width: ``padding`` an int, ``(h, w)`` or ``((top, bottom), (left, right))``."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(2, padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    def __init__(self, padding=(1, 1, 1), data_format=None, **kwargs):
        super().__init__(3, padding, data_format, **kwargs)
