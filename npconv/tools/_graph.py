"""What the model tools share: a built model's layer calls, their consumers, running the graph while
keeping intermediate outputs, and rebuilding a model with edited layers (fresh objects, copied weights).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from .. import initializers
from .._spec import received
from ..layers.base import Input, Layer, Node
from ..layers.convolutional import BaseConvTranspose, BaseDepthwiseConv, BaseSeparableConv
from ..models import Model, Sequential, training


def check_model(model, name: str = "model") -> Model:
    """``model`` if it is a built npconv model, else a TypeError/ValueError naming the argument."""
    if not isinstance(model, Model):
        raise TypeError(f"Invalid type for argument `{name}`: expected an npconv Sequential or Model. {received(**{name: model})}")
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} is not built yet: start it with layers.Input(shape), or call it (or predict) once. "
            f"Received: {name}={model!r}"
        )
    return model


def layer_calls(model: Model) -> list[Node]:
    """The model's layer calls in execution order (its Input layers left out)."""
    return list(model._nodes)


def consumers(model: Model) -> dict[int, list[Node]]:
    """``id(symbolic tensor)`` -> the layer calls that read it."""
    readers: dict[int, list[Node]] = {}
    for node in layer_calls(model):
        for tensor in node.inputs:
            readers.setdefault(id(tensor), []).append(node)
    return readers


def calls_per_layer(model: Model) -> dict[Layer, list[Node]]:
    """Each layer of the model -> its calls (more than one for a shared layer)."""
    calls: dict[Layer, list[Node]] = {}
    for node in layer_calls(model):
        calls.setdefault(node.layer, []).append(node)
    return calls


def run(model: Model, x, keep) -> dict[int, np.ndarray]:
    """Run ``model`` in inference mode on ``x`` (an array, or a list per model input) and return
    ``{id(symbolic tensor): value}`` for the tensors whose ids are in ``keep``; every other
    intermediate result is dropped as soon as its last reader has run."""
    arrays = training.as_arrays(x, [t.shape for t in model.inputs])
    training.check_cardinality({"x": arrays})
    keep = set(keep)
    remaining = {}
    for node in layer_calls(model):
        for tensor in node.inputs:
            remaining[id(tensor)] = remaining.get(id(tensor), 0) + 1
    values = {id(t): np.asarray(a, dtype=model.dtype) for t, a in zip(model.inputs, arrays)}
    for node in layer_calls(model):
        args = [values[id(t)] for t in node.inputs]
        values[id(node.output)] = node.layer(args if node.list_input else args[0])
        for tensor in node.inputs:
            remaining[id(tensor)] -= 1
            if remaining[id(tensor)] == 0 and id(tensor) not in keep:
                del values[id(tensor)]
    return {key: value for key, value in values.items() if key in keep}


@dataclass
class Edit:
    """How a layer is re-created: ``config`` entries to override, and its weights by name (``None``:
    the original layer's weights, unchanged)."""

    config: dict = field(default_factory=dict)
    weights: dict[str, np.ndarray] | None = None


@contextlib.contextmanager
def random_stream_untouched():
    """Creating layers draws initial weights that are overwritten at once: keep the global
    generator's state, so that fusing or pruning a model does not change later random draws."""
    generator = initializers.global_generator()
    state = generator.bit_generator.state
    try:
        yield
    finally:
        generator.bit_generator.state = state


def rebuild(model: Model, edits: dict[Layer, Edit], bypass=()) -> Model:
    """A new model with ``model``'s graph, made of new layer objects with copies of the weights.

    ``edits`` changes some layers (config and weights); the layer calls whose ids are in ``bypass``
    are dropped: their output is their input.  A :class:`~npconv.Sequential` stays one.
    """
    bypass = set(bypass)
    clones: dict[Layer, Layer] = {}

    def clone(layer: Layer) -> Layer:
        if layer not in clones:
            edit = edits.get(layer, Edit())
            clones[layer] = type(layer).from_config({**layer.get_config(), **edit.config})
        return clones[layer]

    with random_stream_untouched():
        if isinstance(model, Sequential):
            kept = [clone(node.layer) for node in layer_calls(model) if id(node) not in bypass]
            source = model.inputs[0]
            new = Sequential([Input(batch_shape=source.shape, dtype=source.dtype), *kept], name=model.name, trainable=model.trainable)
        else:
            inputs = [Input(batch_shape=t.shape, dtype=t.dtype, name=t.node.layer.name) for t in model.inputs]
            values = {id(old): new for old, new in zip(model.inputs, inputs)}
            for node in layer_calls(model):
                args = [values[id(t)] for t in node.inputs]
                if id(node) in bypass:
                    values[id(node.output)] = args[0]
                else:
                    values[id(node.output)] = clone(node.layer)(args if node.list_input else args[0])
            outputs = [values[id(t)] for t in model.outputs]
            new = Model(
                inputs[0] if model._single_input else inputs,
                outputs[0] if model._single_output else outputs,
                name=model.name,
                trainable=model.trainable,
            )
    for layer, copy in clones.items():
        weights = edits.get(layer, Edit()).weights
        copy.set_weights(layer.get_weights() if weights is None else [weights[w.name] for w in copy.weights])
    return new


def named_weights(layer: Layer) -> dict[str, np.ndarray]:
    """Copies of a layer's weights by name (``kernel``, ``bias``, ``gamma``, ...)."""
    return {w.name: w.data.copy() for w in layer.weights}


def output_kernel(layer) -> tuple[str, int | None]:
    """(name of the convolution layer's kernel that holds its output channels, their axis there):
    the last axis, the second to last for a transposed kernel ``(*k, filters, in)``, None for a
    depthwise kernel ``(*k, in, m)`` whose output channel ``c * m + j`` spans the last two."""
    if isinstance(layer, BaseSeparableConv):
        return "pointwise_kernel", -1
    if isinstance(layer, BaseDepthwiseConv):
        return "kernel", None
    if isinstance(layer, BaseConvTranspose):
        return "kernel", -2
    return "kernel", -1
