"""L1-norm channel pruning: remove a convolution's weakest output channels and everything that reads them.

Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017): a filter (the kernel slice that
makes one output channel) with a small L1 norm ``sum(|kernel[..., o]|)`` contributes little, so
removing it, and the matching inputs of the layers that read that channel, costs little accuracy and
saves the filter's parameters and multiply-adds in both layers.  Each layer is ranked on its own
original weights (their "independent" strategy); ``round(amount * channels)`` channels go, at least
one stays, ties keep the lower channel index, and the kept channels keep their order.

Following a pruned channel through the layers that read it:

- the next ``Conv*`` (not grouped), ``SeparableConv*`` or ``Conv*Transpose`` loses those input
  channels (kernel slices), a ``Dense`` the matching rows, and the walk stops there;
- ``BatchNormalization`` loses their ``gamma``, ``beta`` and moving statistics, ``DepthwiseConv*``
  their kernels (output channels ``c * m + j``), and the walk goes on after them;
- pooling, global pooling, zero padding, activations and dropout pass channels through unchanged;
- ``Flatten`` turns a channel into the features it becomes (every ``C``-th one for channels_last
  ``H x W x C``; the channel's whole ``H x W`` block for channels_first), which the next ``Dense``
  loses.

Channels that reach a merge (``Add``, ``Concatenate``), a shared layer, the model's output or any
other layer are not pruned (the layer is reported as skipped, or refused when named explicitly).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._spec import received
from ..layers.convolutional import BaseConv, BaseConvTranspose, BaseDepthwiseConv, BaseSeparableConv
from ..layers.core import Activation, Dense, Dropout, Flatten, ReLU, _ZeroPadding
from ..layers.normalization import BatchNormalization
from ..layers.pooling import _GlobalPooling, _Pooling
from . import _graph

PRODUCERS = (BaseConv, BaseConvTranspose, BaseSeparableConv)
PASS_THROUGH = (Activation, ReLU, Dropout, _Pooling, _ZeroPadding)


class _Unsupported(Exception):
    """The channels of a layer cannot be followed through the graph (the reason is the message)."""


@dataclass(frozen=True)
class _Take:
    """Keep ``index`` along ``axis`` of ``layer``'s weight ``weight``."""

    layer: object
    weight: str
    axis: int
    index: np.ndarray


def _channel_axis(layer, ndim: int) -> int | None:
    """The axis on which ``layer`` reads (and writes) channels; None for elementwise or reshaping layers."""
    if isinstance(layer, BatchNormalization):
        return layer._axis
    if isinstance(layer, Dense):
        return ndim - 1
    if isinstance(layer, Flatten) or not hasattr(layer, "data_format"):
        return None
    return 1 if layer.data_format == "channels_first" else ndim - 1


def _expand(keep: np.ndarray, multiplier: int) -> np.ndarray:
    """Depthwise output channels ``c * m + j`` of the kept input channels ``c``."""
    return (keep[:, None] * multiplier + np.arange(multiplier)).ravel()


def _flattened(layer, shape: tuple, axis: int, keep: np.ndarray) -> np.ndarray:
    """The features of ``Flatten`` ``layer`` that come from the kept channels: the channel index of each
    position of a ``shape`` input is traced through the layer itself."""
    if any(n is None for n in shape[1:]):
        raise _Unsupported(f"its channels reach {layer.name!r} (Flatten) with unknown sizes {shape}")
    ids = np.arange(shape[axis]).reshape([-1 if a == axis else 1 for a in range(len(shape))][1:])
    order = layer(np.broadcast_to(ids, shape[1:])[None])[0]  # float32: exact for channel ids < 2**24
    return np.flatnonzero(np.isin(order, keep))


class _Graph:
    """The model's call graph, as the pruning walk needs it."""

    def __init__(self, model):
        self.readers = _graph.consumers(model)
        self.calls = _graph.calls_per_layer(model)
        self.outputs = {id(t) for t in model.outputs}

    def trace(self, tensor, axis: int, keep: np.ndarray) -> list[_Take]:
        """The weight slices that remove ``tensor``'s channels outside ``keep`` (along ``axis``) from
        every layer that reads them; raises :class:`_Unsupported` where they cannot be followed."""
        if id(tensor) in self.outputs:
            raise _Unsupported("its channels are an output of the model")
        takes = []
        for node in self.readers.get(id(tensor), []):
            layer = node.layer
            where = f"{layer.name!r} ({type(layer).__name__})"
            if node.list_input:
                raise _Unsupported(f"its channels reach {where}, which merges branches")
            if len(self.calls[layer]) > 1:
                raise _Unsupported(f"its channels reach {where}, which is called more than once")
            reads = _channel_axis(layer, len(tensor.shape))
            if reads is not None and reads != axis:
                raise _Unsupported(f"{where} reads channels on axis {reads}, but they are on axis {axis}")
            if isinstance(layer, BaseSeparableConv):
                takes += [_Take(layer, "depthwise_kernel", -2, keep), _Take(layer, "pointwise_kernel", -2, _expand(keep, layer.depth_multiplier))]
            elif isinstance(layer, BaseDepthwiseConv):
                expanded = _expand(keep, layer.depth_multiplier)
                takes += [_Take(layer, "kernel", -2, keep)] + ([_Take(layer, "bias", 0, expanded)] if layer.use_bias else [])
                takes += self.trace(node.output, axis, expanded)
            elif isinstance(layer, BaseConv):
                if layer.groups != 1:
                    raise _Unsupported(f"its channels reach {where}, a grouped convolution")
                takes.append(_Take(layer, "kernel", -2, keep))
            elif isinstance(layer, BaseConvTranspose):
                takes.append(_Take(layer, "kernel", -1, keep))
            elif isinstance(layer, Dense):
                takes.append(_Take(layer, "kernel", 0, keep))
            elif isinstance(layer, BatchNormalization):
                takes += [_Take(layer, w.name, 0, keep) for w in layer.weights]
                takes += self.trace(node.output, axis, keep)
            elif isinstance(layer, Flatten):
                takes += self.trace(node.output, 1, _flattened(layer, tensor.shape, axis, keep))
            elif isinstance(layer, _GlobalPooling):
                takes += self.trace(node.output, axis if layer.keepdims else 1, keep)
            elif isinstance(layer, PASS_THROUGH) and getattr(layer, "noise_shape", None) is None:
                takes += self.trace(node.output, axis, keep)
            else:
                raise _Unsupported(f"its channels reach {where}, which pruning cannot follow")
        return takes


def l1_norms(layer) -> np.ndarray:
    """The L1 norm of each output channel's filter of a convolution layer (float64).

    >>> from npconv import layers
    >>> conv = layers.Conv2D(3, 1, kernel_initializer="ones")
    >>> _ = conv(np.ones((1, 4, 4, 2)))
    >>> conv.kernel.data[..., 1] *= -3                  # the sign does not matter
    >>> l1_norms(conv)
    array([2., 6., 2.])
    """
    name, axis = _graph.output_kernel(layer)
    kernel = np.moveaxis(np.abs(getattr(layer, name).data.astype(np.float64)), axis, -1)
    return kernel.reshape(-1, kernel.shape[-1]).sum(axis=0)


def _keep(layer, fraction: float) -> np.ndarray:
    """Indices of the output channels that stay, in order."""
    norms = l1_norms(layer)
    count = max(len(norms) - round(fraction * len(norms)), 1)
    return np.sort(np.argsort(-norms, kind="stable")[:count])


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid type for argument `amount`: expected a float in [0, 1) or a dict of them by layer name. {received(**{name: value})}")
    if not 0 <= value < 1:
        raise ValueError(f"Invalid value for argument `amount`: expected a fraction of the channels to remove, in [0, 1). {received(**{name: value})}")
    return float(value)


def _why_not_producer(layer, calls) -> str | None:
    if not isinstance(layer, PRODUCERS):
        return f"{type(layer).__name__} has no filters to prune (Conv*, SeparableConv* and Conv*Transpose have)"
    if getattr(layer, "groups", 1) != 1:
        return "grouped convolutions are not pruned"
    if len(calls[layer]) > 1:
        return "the layer is called more than once"
    return None


def _requests(model, amount, calls) -> tuple[dict, bool]:
    """``({layer: fraction}, explicit)`` from ``amount`` (one fraction for every prunable layer, or
    ``{layer name: fraction}``)."""
    if not isinstance(amount, dict):
        fraction = _fraction(amount, "amount")
        return {layer: fraction for layer in calls if _why_not_producer(layer, calls) is None}, False
    by_name = {layer.name: layer for layer in calls}
    requests = {}
    for name, value in amount.items():
        if name not in by_name:
            raise ValueError(f"Invalid value for argument `amount`: model {model.name!r} has no layer {name!r} (it has {list(by_name)}). {received(amount=amount)}")
        reason = _why_not_producer(by_name[name], calls)
        if reason is not None:
            raise ValueError(f"Invalid value for argument `amount`: layer {name!r} cannot be pruned: {reason}. {received(amount=amount)}")
        requests[by_name[name]] = _fraction(value, f"amount[{name!r}]")
    return requests, True


# --------------------------------------------------------------------------- costs and report


def layer_macs(layer, input_shape: tuple, output_shape: tuple) -> int:
    """Multiply-adds of one call of a convolution or dense layer (0 for other layers) for one sample,
    given the shapes it reads and writes (batch axis first, not counted).

    >>> from npconv import layers
    >>> conv = layers.Conv2D(8, 3, padding="same")
    >>> _ = conv(np.ones((1, 16, 16, 4)))
    >>> layer_macs(conv, (1, 16, 16, 4), (1, 16, 16, 8)) == 16 * 16 * 8 * (3 * 3 * 4)
    True
    """
    outputs = int(np.prod(output_shape[1:]))
    if isinstance(layer, BaseSeparableConv):
        channels, multiplier = layer.depthwise_kernel.shape[-2:]
        return outputs // layer.filters * channels * multiplier * (int(np.prod(layer.kernel_size)) + layer.filters)
    if isinstance(layer, BaseDepthwiseConv):
        return outputs * int(np.prod(layer.kernel_size))
    if isinstance(layer, BaseConvTranspose):  # every input value meets k * filters weights
        return int(np.prod(input_shape[1:])) * int(np.prod(layer.kernel.shape[:-1]))
    if isinstance(layer, (BaseConv, Dense)):  # every output value sums k * in / groups (or in) products
        return outputs * int(np.prod(layer.kernel.shape[:-1]))
    return 0


@dataclass(frozen=True)
class LayerCost:
    """One row of :class:`PruningReport`: output channels (None for a layer without a channel axis),
    parameters and multiply-adds per sample, each as ``(before, after)``."""

    name: str
    kind: str
    channels: tuple[int | None, int | None]
    params: tuple[int, int]
    macs: tuple[int, int]


def _percent(pair: tuple[int, int]) -> str:
    before, after = pair
    return f"{100 * (before - after) / before:.1f}%" if before else "-"


@dataclass(frozen=True)
class PruningReport:
    """What :func:`prune_channels` did, per layer with weights (``layers``) and for the whole model
    (``params``, ``macs``: ``(before, after)``); ``skipped`` holds ``(layer name, reason)``.
    ``str()`` prints the table."""

    layers: tuple[LayerCost, ...]
    params: tuple[int, int]
    macs: tuple[int, int]
    input_shape: tuple
    skipped: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        header = ("layer", "kind", "channels", "params", "multiply-adds", "saved")
        rows = [header] + [
            (row.name, row.kind, "-" if row.channels[0] is None else "{} -> {}".format(*row.channels), "{:,} -> {:,}".format(*row.params), "{:,} -> {:,}".format(*row.macs), _percent(row.macs))
            for row in self.layers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
        lines.append(f"parameters: {self.params[0]:,} -> {self.params[1]:,} ({_percent(self.params)} fewer)")
        lines.append(f"multiply-adds per sample of shape {self.input_shape}: {self.macs[0]:,} -> {self.macs[1]:,} ({_percent(self.macs)} fewer)")
        lines += [f"not pruned: {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)

    __repr__ = __str__


def _costs(model) -> list[tuple]:
    """``(output channels, multiply-adds per sample)`` of each layer call, from the graph's shapes."""
    costs = []
    for node in _graph.layer_calls(model):
        shape = node.output.shape
        axis = _channel_axis(node.layer, len(shape))
        costs.append((None if axis is None else shape[axis], layer_macs(node.layer, node.inputs[0].shape, shape)))
    return costs


def _report(model, pruned, skipped) -> PruningReport:
    before, after = _costs(model), _costs(pruned)
    rows, seen = [], set()
    for position, (node, new) in enumerate(zip(_graph.layer_calls(model), _graph.layer_calls(pruned))):
        layer = node.layer
        if layer in seen or not (layer.count_params() or before[position][1]):
            continue
        seen.add(layer)
        positions = [p for p, other in enumerate(_graph.layer_calls(model)) if other.layer is layer]
        macs = tuple(sum(costs[p][1] for p in positions) for costs in (before, after))
        channels = (before[position][0], after[position][0])
        rows.append(LayerCost(layer.name, type(layer).__name__, channels, (layer.count_params(), new.layer.count_params()), macs))
    total = (sum(row.macs[0] for row in rows), sum(row.macs[1] for row in rows))
    shapes = tuple(t.shape[1:] for t in model.inputs)
    return PruningReport(tuple(rows), (model.count_params(), pruned.count_params()), total, shapes[0] if len(shapes) == 1 else shapes, tuple(skipped))


# --------------------------------------------------------------------------- prune_channels


def prune_channels(model, amount):
    """A smaller copy of ``model`` without the lowest-L1-norm output channels of its convolutions, and
    a :class:`PruningReport`; returns ``(pruned_model, report)``.

    ``amount`` is the fraction of each layer's output channels to remove, in ``[0, 1)``: one float for
    every ``Conv*``, ``SeparableConv*`` and ``Conv*Transpose`` layer whose channels can be followed
    (the others are listed in ``report.skipped``), or ``{layer name: fraction}`` for some layers
    (refused with a ValueError when one cannot be pruned).  The module docstring says how channels
    are ranked and followed.  The report counts multiply-adds for one sample of the model's input
    shape.  ``model`` is not modified; the pruned model is a
    model of the same kind (:class:`~npconv.Sequential` or functional), ready to ``predict`` or to
    fine-tune with ``compile``/``fit``.  ``amount=0`` gives an identical copy.

    >>> import numpy as np, npconv as nc
    >>> from npconv import layers
    >>> nc.set_random_seed(0)
    >>> model = nc.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu", name="conv1"),
    ...                        layers.Conv2D(16, 3, activation="relu", name="conv2"), layers.Flatten(),
    ...                        layers.Dense(10, name="dense")])
    >>> pruned, report = prune_channels(model, 0.5)
    >>> [layer.filters for layer in pruned.layers[:2]], pruned.count_params() == report.params[1]
    ([4, 8], True)
    >>> print(report)
    layer  kind    channels          params    multiply-adds  saved
    conv1  Conv2D    8 -> 4        80 -> 40   2,592 -> 1,296  50.0%
    conv2  Conv2D   16 -> 8    1,168 -> 296  18,432 -> 4,608  75.0%
    dense  Dense   10 -> 10  2,570 -> 1,290   2,560 -> 1,280  50.0%
    parameters: 3,818 -> 1,626 (57.4% fewer)
    multiply-adds per sample of shape (8, 8, 1): 23,584 -> 7,184 (69.5% fewer)
    >>> prune_channels(model, 1.5)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for argument `amount`: expected a fraction of the channels to remove, in [0, 1). Received: amount=1.5
    """
    model = _graph.check_model(model)
    graph = _Graph(model)
    requests, explicit = _requests(model, amount, graph.calls)
    edits, skipped = {}, []
    for layer, fraction in requests.items():
        keep = _keep(layer, fraction)
        if len(keep) == layer.filters:
            continue
        name, axis = _graph.output_kernel(layer)
        node = graph.calls[layer][0]
        try:
            takes = graph.trace(node.output, 1 if layer.data_format == "channels_first" else node.output.ndim - 1, keep)
        except _Unsupported as reason:
            if explicit:
                raise ValueError(f"Invalid value for argument `amount`: layer {layer.name!r} cannot be pruned: {reason}. {received(amount=amount)}") from None
            skipped.append((layer.name, str(reason)))
            continue
        takes += [_Take(layer, name, axis, keep)] + ([_Take(layer, "bias", 0, keep)] if layer.use_bias else [])
        for take in takes:
            edit = edits.setdefault(take.layer, _graph.Edit(weights=_graph.named_weights(take.layer)))
            edit.weights[take.weight] = np.take(edit.weights[take.weight], take.index, axis=take.axis)
        edits[layer].config["filters"] = len(keep)
    if skipped and len(skipped) == len(requests):
        raise ValueError(f"No layer of model {model.name!r} can be pruned: " + "; ".join(f"{n}: {r}" for n, r in skipped) + f". {received(amount=amount)}")
    pruned = _graph.rebuild(model, edits)
    return pruned, _report(model, pruned, skipped)
