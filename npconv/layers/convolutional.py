"""Convolution layers with Keras 3's arguments, defaults, weight shapes and weight order.

==================  ==========================================================  =====================
layer               weights (``get_weights()`` order)                            core op
==================  ==========================================================  =====================
Conv1D/2D/3D        kernel ``(*k, in // groups, filters)``, bias ``(filters,)``  :func:`npconv.conv`
Conv1D/2D/3DTranspose kernel ``(*k, filters, in)``, bias ``(filters,)``          :func:`npconv.conv_transpose`
DepthwiseConv1D/2D  kernel ``(*k, in, depth_multiplier)``, bias ``(in * m,)``    ``conv``, groups = in
SeparableConv1D/2D  depthwise_kernel ``(*k, in, m)``, pointwise_kernel
                    ``(*1, in * m, filters)``, bias ``(filters,)``              depthwise, then 1x1
==================  ==========================================================  =====================

Kernels are glorot_uniform and biases zeros unless told otherwise; ``padding`` is ``"valid"``,
``"same"`` (TensorFlow's rule) or, for 1-D, ``"causal"``.  Every gradient is the core's backprop.

>>> import numpy as np
>>> from npconv import layers
>>> conv = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
>>> conv(np.ones((2, 28, 28, 1))).shape, conv.kernel.shape
((2, 14, 14, 8), (3, 3, 1, 8))
"""

from __future__ import annotations

from .. import activations, initializers
from .. import autograd as ag
from . import _args
from .base import Layer


class _ConvBase(Layer):
    """What every convolution layer shares: geometry, activation, bias and initializers."""

    def __init__(
        self,
        rank,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = rank
        self.input_ndim = rank + 2
        self.kernel_size = _args.int_tuple(kernel_size, rank, "kernel_size")
        self.strides = _args.int_tuple(strides, rank, "strides")
        self.padding = _args.padding_mode(padding, ("valid", "same", "causal") if rank == 1 else ("valid", "same"))
        self.data_format = _args.data_format(data_format)
        self.dilation_rate = _args.int_tuple(dilation_rate, rank, "dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)

    def _in_channels(self, input_shape) -> int:
        axis = _args.channel_axis(self.data_format, len(input_shape))
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(
                f'Layer "{self.name}" needs a known channel dimension. Received: input_shape={input_shape}'
            )
        self.input_axes = {axis: channels}
        return channels

    def _conv_params(self) -> dict:
        return dict(
            stride=self.strides,
            padding=self.padding,
            dilation=self.dilation_rate,
            data_format=self.data_format,
            kernel_format=_args.SPATIAL_FIRST_KERNEL[self.rank],
        )

    def _fused_activation(self) -> str | None:
        """``"relu"`` when ``ag.conv`` can apply this layer's activation in its output pass, else None."""
        return "relu" if self.activation is activations.relu else None

    def _conv(self, inputs, kernel, bias, **conv_params):
        """``activation(conv(inputs, kernel) + bias)``: fused into the convolution when it can be."""
        fused = self._fused_activation()
        y = ag.conv(inputs, kernel, bias, activation=fused, **conv_params)
        return y if fused else activations.apply_in_place(self.activation, y)

    def _bias(self, channels: int):
        return self.add_weight("bias", (channels,), self.bias_initializer) if self.use_bias else None

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class BaseConv(_ConvBase):
    """N-D convolution layer (Keras ``Conv1D``/``Conv2D``/``Conv3D``): ``activation(conv(x) + bias)``."""

    size_arguments = ("filters", "kernel_size")

    def __init__(self, rank, filters, kernel_size, groups=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(rank, kernel_size, **kwargs)
        self.filters = _args.positive_int(filters, "filters")
        self.groups = _args.positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(
                f"The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}"
            )
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = self._in_channels(input_shape)
        if channels % self.groups:
            raise ValueError(
                f"The number of input channels must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, input_shape={input_shape}"
            )
        kernel_shape = (*self.kernel_size, channels // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer)
        self.bias = self._bias(self.filters)

    def call(self, inputs, training=None):
        return self._conv(inputs, self.kernel, self.bias, groups=self.groups, **self._conv_params())

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
        }


class Conv1D(BaseConv):
    """1-D convolution over ``(batch, steps, channels)``; ``padding="causal"`` looks only back."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class Conv2D(BaseConv):
    """2-D convolution over ``(batch, height, width, channels)`` (or channels_first)."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3D(BaseConv):
    """3-D convolution over ``(batch, depth, height, width, channels)`` (or channels_first)."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)


class BaseConvTranspose(_ConvBase):
    """N-D transposed convolution (Keras ``Conv*DTranspose``); Keras' output sizes:
    ``"same"``: ``n * stride``, ``"valid"``: ``(n - 1) * stride + max(kernel, stride)``."""

    size_arguments = ("filters", "kernel_size")

    def __init__(self, rank, filters, kernel_size, output_padding=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(rank, kernel_size, **kwargs)
        self.filters = _args.positive_int(filters, "filters")
        self.output_padding = (
            None if output_padding is None else _args.int_tuple(output_padding, rank, "output_padding", 0)
        )
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = self._in_channels(input_shape)
        self.kernel = self.add_weight("kernel", (*self.kernel_size, self.filters, channels), self.kernel_initializer)
        self.bias = self._bias(self.filters)

    def call(self, inputs, training=None):
        y = ag.conv_transpose(
            inputs,
            self.kernel,
            self.bias,
            stride=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation_rate,
            data_format=self.data_format,
            kernel_format=_args.SPATIAL_FIRST_KERNEL[self.rank],
        )
        return activations.apply_in_place(self.activation, y)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": self.output_padding,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
        }


class Conv1DTranspose(BaseConvTranspose):
    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    """2-D transposed convolution; kernel ``(kh, kw, filters, in_channels)`` as in Keras."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)


class BaseDepthwiseConv(_ConvBase):
    """Depthwise convolution: each input channel ``c`` gets ``depth_multiplier`` filters of its own;
    output channel ``c * depth_multiplier + m``."""

    size_arguments = ("kernel_size", "depth_multiplier")

    def __init__(self, rank, kernel_size, depth_multiplier=1, depthwise_initializer="glorot_uniform", **kwargs):
        super().__init__(rank, kernel_size, **kwargs)
        self.depth_multiplier = _args.positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = initializers.get(depthwise_initializer)

    def _depthwise_kernel(self, channels: int, name: str):
        shape = (*self.kernel_size, channels, self.depth_multiplier)
        return self.add_weight(name, shape, self.depthwise_initializer)

    def _depthwise(self, conv, x, kernel, bias=None):
        """``conv`` (``ag.conv``, or the fused ``self._conv``) with ``groups = channels`` and the kernel
        viewed as ``(*k, 1, channels * m)``."""
        channels = kernel.shape[-2]
        grouped = kernel.reshape(*self.kernel_size, 1, channels * self.depth_multiplier)
        return conv(x, grouped, bias, groups=channels, **self._conv_params())

    def build(self, input_shape):
        channels = self._in_channels(input_shape)
        self.kernel = self._depthwise_kernel(channels, "kernel")
        self.bias = self._bias(channels * self.depth_multiplier)

    def call(self, inputs, training=None):
        return self._depthwise(self._conv, inputs, self.kernel, self.bias)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
        }


class DepthwiseConv1D(BaseDepthwiseConv):
    def __init__(self, kernel_size, **kwargs):
        super().__init__(1, kernel_size, **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    """Depthwise 2-D convolution; kernel ``(kh, kw, in_channels, depth_multiplier)`` as in Keras."""

    def __init__(self, kernel_size, **kwargs):
        super().__init__(2, kernel_size, **kwargs)


class BaseSeparableConv(BaseDepthwiseConv):
    """Depthwise convolution (no bias) followed by a pointwise (1x1) convolution with ``filters``
    outputs and the bias, as Keras ``SeparableConv*D``."""

    size_arguments = ("filters", "kernel_size", "depth_multiplier")

    def __init__(self, rank, filters, kernel_size, pointwise_initializer="glorot_uniform", **kwargs):
        super().__init__(rank, kernel_size, **kwargs)
        self.filters = _args.positive_int(filters, "filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer)

    def build(self, input_shape):
        channels = self._in_channels(input_shape)
        self.depthwise_kernel = self._depthwise_kernel(channels, "depthwise_kernel")
        pointwise_shape = (*(1,) * self.rank, channels * self.depth_multiplier, self.filters)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", pointwise_shape, self.pointwise_initializer)
        self.bias = self._bias(self.filters)

    def call(self, inputs, training=None):
        depthwise = self._depthwise(ag.conv, inputs, self.depthwise_kernel)
        pointwise_format = _args.SPATIAL_FIRST_KERNEL[self.rank]
        return self._conv(depthwise, self.pointwise_kernel, self.bias, data_format=self.data_format, kernel_format=pointwise_format)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
        }


class SeparableConv1D(BaseSeparableConv):
    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class SeparableConv2D(BaseSeparableConv):
    """Depthwise separable 2-D convolution (depthwise, then 1x1), as Keras ``SeparableConv2D``."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)
