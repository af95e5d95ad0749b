"""Folding BatchNormalization into the convolution before it, for inference.

In inference mode a ``BatchNormalization`` is a per-channel affine map of its input ``z``::

    bn(z) = gamma * (z - moving_mean) / sqrt(moving_variance + epsilon) + beta = scale * z + shift

    scale = gamma / sqrt(moving_variance + epsilon)          (gamma = 1 when scale=False)
    shift = beta - moving_mean * scale                       (beta = 0 when center=False)

and a convolution without activation is linear in its weights per output channel
``o``: ``z[o] = conv(x, kernel[o]) + bias[o]``.  So ``bn(conv(x)) = conv(x, kernel * scale) +
(bias * scale + shift)``: one layer, same outputs, the normalisation's work gone.  The output
channel ``o`` of each layer kind lives on a different kernel axis:

=======================  ============================  =========================================
layer                    kernel scaled                 output channel
=======================  ============================  =========================================
Conv1D/2D/3D             ``kernel (*k, in, filters)``  last axis
Conv*Transpose           ``kernel (*k, filters, in)``  axis -2
DepthwiseConv1D/2D       ``kernel (*k, in, m)``        ``c * m + j`` (the last two axes, flattened)
SeparableConv1D/2D       ``pointwise_kernel``          last axis (the depthwise part is untouched)
=======================  ============================  =========================================

The fused weights are computed in float64 and stored in the layer's dtype.  A layer with an
activation cannot absorb the normalisation after it (``bn(relu(z))`` is not affine in ``z``), and
the normalisation's axis must be the layer's channel axis.  Fusion is for inference: training the
fused model is training a model without BatchNormalization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import activations
from .._spec import received
from ..layers.convolutional import BaseConv, BaseConvTranspose, BaseDepthwiseConv
from ..layers.normalization import BatchNormalization
from . import _graph

FUSABLE = (BaseConv, BaseConvTranspose, BaseDepthwiseConv)  # separable convs are depthwise convs too


def _channel_axis(layer, ndim: int) -> int:
    """The non-negative axis of ``layer``'s output that holds its channels."""
    return 1 if layer.data_format == "channels_first" else ndim - 1


def why_not_fusable(layer, bn) -> str | None:
    """Why ``bn`` cannot be folded into ``layer`` (a reason to show), or None when it can."""
    if not isinstance(layer, FUSABLE):
        return f"{type(layer).__name__} {getattr(layer, 'name', layer)!r} is not a convolution layer"
    if not isinstance(bn, BatchNormalization):
        return f"{type(bn).__name__} {getattr(bn, 'name', bn)!r} is not a BatchNormalization"
    if layer.activation is not activations.linear:
        return (
            f"{layer.name!r} applies activation {activations.serialize(layer.activation)!r} before the normalisation "
            "(only a layer without activation can absorb it)"
        )
    if not (layer.built and bn.built):
        return "the layers are not built yet (call them, or build their model, first)"
    expected = _channel_axis(layer, layer.rank + 2)
    if bn._axis != expected:
        return f"{bn.name!r} normalises axis {bn._axis}, but {layer.name!r} puts its channels on axis {expected}"
    return None


def _fold(layer, bn) -> dict[str, np.ndarray]:
    """``layer``'s weights by name with ``bn`` folded in (a bias is added when the layer has none)."""
    mean = bn.moving_mean.data.astype(np.float64)
    scale = 1 / np.sqrt(bn.moving_variance.data.astype(np.float64) + bn.epsilon)
    if bn.gamma is not None:
        scale = scale * bn.gamma.data
    shift = -mean * scale
    if bn.beta is not None:
        shift = shift + bn.beta.data
    weights = _graph.named_weights(layer)
    name, axis = _graph.output_kernel(layer)
    kernel = weights[name].astype(np.float64)
    if axis is None:  # depthwise: output channel c * m + j of the (..., C, m) kernel
        folded = (kernel.reshape(*kernel.shape[:-2], -1) * scale).reshape(kernel.shape)
    else:
        folded = np.moveaxis(np.moveaxis(kernel, axis, -1) * scale, -1, axis)
    bias = weights.get("bias", np.zeros(scale.shape)).astype(np.float64)
    weights[name] = folded.astype(layer.dtype)
    weights["bias"] = (bias * scale + shift).astype(layer.dtype)
    return weights


def fuse_conv_bn(layer, bn):
    """A new layer computing ``bn(layer(x))`` in inference mode: ``bn``'s moving statistics, ``gamma``
    and ``beta`` folded into ``layer``'s kernel and bias (see the module docstring for the formulas).

    ``layer`` is a built ``Conv1D/2D/3D``, ``Conv*Transpose``, ``DepthwiseConv1D/2D``,
    ``SeparableConv1D/2D`` without activation, ``bn`` a built ``BatchNormalization``
    over its channel axis.  The result has ``layer``'s name and config, with ``use_bias=True``;
    neither argument is modified.

    >>> import numpy as np
    >>> from npconv import layers
    >>> conv, bn = layers.Conv2D(4, 3, use_bias=False), layers.BatchNormalization(epsilon=0.01)
    >>> x = np.random.default_rng(0).standard_normal((2, 8, 8, 3))
    >>> z = bn(conv(x))                                   # builds both layers
    >>> bn.set_weights([np.full(4, 2.0), np.full(4, 0.5), np.full(4, 0.1), np.full(4, 3.0)])
    >>> fused = fuse_conv_bn(conv, bn)
    >>> fused.use_bias, bool(np.allclose(fused(x), bn(conv(x)), atol=1e-5))
    (True, True)
    >>> fuse_conv_bn(layers.Conv2D(4, 3, activation="relu", name="c"), bn)
    Traceback (most recent call last):
    ...
    ValueError: Cannot fold 'batch_normalization...' into 'c': 'c' applies activation 'relu' before the normalisation ...
    """
    reason = why_not_fusable(layer, bn)
    if reason is not None:
        raise ValueError(f"Cannot fold {getattr(bn, 'name', bn)!r} into {getattr(layer, 'name', layer)!r}: {reason}. {received(layer=layer, bn=bn)}")
    shape = [None] * layer.input_ndim  # the input shape that build needs: rank and channels
    for axis, size in layer.input_axes.items():
        shape[axis] = size
    with _graph.random_stream_untouched():
        fused = type(layer).from_config({**layer.get_config(), "use_bias": True})
        fused._ensure_built([tuple(shape)])
    weights = _fold(layer, bn)
    fused.set_weights([weights[w.name] for w in fused.weights])
    return fused


@dataclass(frozen=True)
class FusionReport:
    """What :func:`fuse_model` did: ``fused`` holds ``(layer name, normalisation name)`` pairs,
    ``skipped`` ``(layer name, normalisation name, reason)`` triples; ``str()`` says it in words."""

    fused: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str, str], ...]

    def __str__(self) -> str:
        lines = [f"fused {len(self.fused)} BatchNormalization layer(s) into the layer before"]
        lines += [f"  {bn} -> {layer}" for layer, bn in self.fused]
        if self.skipped:
            lines.append(f"kept {len(self.skipped)}:")
            lines += [f"  {bn} after {layer}: {reason}" for layer, bn, reason in self.skipped]
        return "\n".join(lines)

    __repr__ = __str__


def fuse_model(model):
    """A copy of ``model`` with every BatchNormalization that directly follows a convolution folded
    into it, and a :class:`FusionReport`; returns ``(fused_model, report)``.

    Works on :class:`~npconv.Sequential` (the result is one) and functional models.  A pair is left
    as it is, with the reason in ``report.skipped``, when the layer has an activation, when the
    normalisation is over another axis, or when the layer's output is read by anything else too
    (another layer, the model's outputs) or the layer is called more than once.  In inference mode
    (``predict``, ``evaluate``, a plain call) the fused model gives the same outputs as ``model``, up
    to rounding; ``model`` is not modified.

    >>> import numpy as np, npconv as nc
    >>> from npconv import layers
    >>> model = nc.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, use_bias=False),
    ...                        layers.BatchNormalization(), layers.ReLU(), layers.Flatten(), layers.Dense(2)])
    >>> fused, report = fuse_model(model)
    >>> [type(layer).__name__ for layer in fused.layers], len(report.fused)
    (['Conv2D', 'ReLU', 'Flatten', 'Dense'], 1)
    >>> x = np.random.default_rng(0).random((3, 8, 8, 1))
    >>> bool(np.allclose(fused.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6))
    True
    """
    model = _graph.check_model(model)
    readers = _graph.consumers(model)
    calls = _graph.calls_per_layer(model)
    outputs = {id(t) for t in model.outputs}
    edits, bypass, fused, skipped = {}, set(), [], []
    for node in _graph.layer_calls(model):
        if not isinstance(node.layer, BatchNormalization):
            continue
        source = node.inputs[0].node
        layer = source.layer
        if not isinstance(layer, FUSABLE):
            continue
        reason = why_not_fusable(layer, node.layer)
        if reason is None and (len(readers[id(source.output)]) > 1 or id(source.output) in outputs):
            reason = f"the output of {layer.name!r} is also used elsewhere"
        if reason is None and len(calls[layer]) > 1:
            reason = f"{layer.name!r} is called more than once"
        if reason is not None:
            skipped.append((layer.name, node.layer.name, reason))
            continue
        edits[layer] = _graph.Edit({"use_bias": True}, _fold(layer, node.layer))
        bypass.add(id(node))
        fused.append((layer.name, node.layer.name))
    return _graph.rebuild(model, edits, bypass), FusionReport(tuple(fused), tuple(skipped))
