"""``Sequential``: a stack of layers, each feeding the next (Keras 3 semantics).

The model builds itself as soon as its input shape is known: from a leading ``layers.Input``, from
``input_shape=`` on the first layer, or from the first data it sees (``fit``, ``predict``, a call).

>>> import numpy as np, npconv as nc
>>> from npconv import layers
>>> model = nc.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3, padding="same", activation="relu"),
...                        layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
>>> model.count_params(), [layer.name for layer in model.layers][-1].startswith("dense")
(63050, True)
"""

from __future__ import annotations

import numpy as np

from ..layers.base import InputLayer, Layer, SymbolicTensor, unique_name
from .model import Model, check_config, deserialize_layer, json_ready


class Sequential(Model):
    """``Sequential(layers=None, trainable=True, name=None)``; :meth:`add` appends a layer."""

    def __init__(self, layers=None, trainable=True, name=None):
        Layer.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._reset_compile_state()
        self._input_layer: InputLayer | None = None
        self._stack: list[Layer] = []
        self._operations = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or, first, a ``layers.Input`` tensor), rebuilding when the shape is known."""
        if isinstance(layer, SymbolicTensor) and layer.node is not None and layer.node.is_input:
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Only npconv layers can be added to a Sequential model. Received: {layer!r}")
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("A Sequential model's Input must come first, and only once.")
            self._input_layer = layer
        else:
            self._stack.append(layer)
        self.built = False
        shape = self._declared_input_shape()
        if shape is not None and self._stack:
            self.build(shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise IndexError("pop from an empty Sequential model")
        layer = self._stack.pop()
        self.built = False
        if self._stack and self._declared_input_shape() is not None:
            self.build(self._declared_input_shape())
        return layer

    def _declared_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if self._stack and self._stack[0]._input_shape_arg is not None:
            return (None, *self._stack[0]._input_shape_arg)
        return None

    @property
    def layers(self) -> list[Layer]:
        """The stacked layers (without the InputLayer, as Keras)."""
        return list(self._stack)

    def build(self, input_shape=None) -> None:
        """Wire the stack for inputs of ``input_shape`` (batch dim included, may be None)."""
        input_shape = input_shape or self._declared_input_shape()
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} cannot be built without an input shape")
        if not self._stack:
            raise ValueError(f"Sequential model {self.name!r} has no layers")
        batch_shape = (None, *tuple(input_shape)[1:])
        if self._input_layer is None or self._input_layer.batch_shape[1:] != batch_shape[1:]:
            self._input_layer = InputLayer(batch_shape=batch_shape, dtype=self._stack[0].dtype)
        x = self._input_layer.output
        for layer in self._stack:
            x = layer(x)
        self._init_graph(self._input_layer.output, x)

    def _build_for(self, x) -> None:
        if not self.built:
            first = x[0] if isinstance(x, (list, tuple)) else x
            self.build((None, *np.shape(first)[1:]))

    def _summary_layers(self) -> list[Layer]:
        return self.layers

    def _summary_rows(self):
        if not self.built:
            return [[f"{layer.name} ({type(layer).__name__})", "?", "0 (unbuilt)"] for layer in self._stack], True
        rows, _ = super()._summary_rows()
        return rows, True

    def get_config(self) -> dict:
        layers = [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self._stack]
        if self._input_layer is not None:
            layers.insert(0, {"class_name": "InputLayer", "config": self._input_layer.get_config()})
        return json_ready({"name": self.name, "trainable": self.trainable, "layers": layers})

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """The model :meth:`get_config` described, with fresh weights (see :meth:`Model.from_config`)."""
        check_config(config, ("name", "layers"))
        layers = [
            deserialize_layer(entry, custom_objects, f'config["layers"][{i}]')
            for i, entry in enumerate(config["layers"])
        ]
        return cls(
            layers,
            trainable=config.get("trainable", True),
            name=config["name"],
        )
