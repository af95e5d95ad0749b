"""Feature maps: the output of any layer of a model for an input, as NumPy arrays."""

from __future__ import annotations

from .._spec import _is_int, received
from ..layers.base import InputLayer, Layer
from ..models import Model
from . import _graph


def _pick(model, layers) -> list[Layer]:
    """The layers that ``layers`` names: None (every layer but the inputs), or one or a list of layer
    names, indices into ``model.layers`` or layer objects."""
    every = model.layers
    if layers is None:
        return [layer for layer in every if not isinstance(layer, InputLayer)]
    wanted = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    by_name = {layer.name: layer for layer in every}
    picked = []
    for item in wanted:
        if isinstance(item, str) and item in by_name:
            picked.append(by_name[item])
        elif _is_int(item) and -len(every) <= item < len(every):
            picked.append(every[item])
        elif isinstance(item, Layer) and any(item is layer for layer in every):
            picked.append(item)
        else:
            raise ValueError(
                f"Invalid value for argument `layers`: {item!r} is not a layer of model {model.name!r} (names: "
                f"{list(by_name)}, or indices 0..{len(every) - 1}). {received(layers=layers)}"
            )
    return picked


def feature_maps(model, x, layers=None) -> dict:
    """The outputs of ``model``'s layers for the input ``x``, in inference mode: ``{layer name: array}``.

    ``model`` is a :class:`~npconv.Sequential` or functional :class:`~npconv.Model` (a Sequential
    model without an ``Input`` is built from ``x``); ``x`` is what :meth:`~npconv.Model.predict`
    takes, computed in one batch (pass a few samples).  ``layers`` picks the layers: None for every
    one, or a name, an index into ``model.layers``, a layer object, or a list of them (in that
    order).  A layer called several times (shared) reports its first call.

    >>> import numpy as np, npconv as nc
    >>> from npconv import layers
    >>> model = nc.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same", name="conv"),
    ...                        layers.MaxPooling2D(name="pool"), layers.Flatten(), layers.Dense(2)])
    >>> maps = feature_maps(model, np.ones((1, 8, 8, 1)), layers=["conv", "pool"])
    >>> {name: value.shape for name, value in maps.items()}
    {'conv': (1, 8, 8, 4), 'pool': (1, 4, 4, 4)}
    """
    if isinstance(model, Model) and not model.built:
        model._build_for(x)
    model = _graph.check_model(model)
    picked = _pick(model, layers)
    calls = _graph.calls_per_layer(model)
    inputs = {t.node.layer: t for t in model.inputs}
    tensors = {layer: inputs[layer] if layer in inputs else calls[layer][0].output for layer in picked}
    values = _graph.run(model, x, {id(t) for t in tensors.values()})
    return {layer.name: values[id(tensor)] for layer, tensor in tensors.items()}
