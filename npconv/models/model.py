"""The functional :class:`Model`: a graph of layers from ``Input`` tensors to outputs, trainable with
``compile``/``fit`` as in Keras 3.

>>> import numpy as np, npconv as nc
>>> from npconv import layers
>>> inputs = layers.Input((4,))
>>> hidden = layers.Dense(8, activation="relu")(inputs)
>>> outputs = layers.Dense(3, activation="softmax")(layers.Concatenate()([inputs, hidden]))
>>> model = nc.Model(inputs, outputs)
>>> model.count_params(), model.predict(np.zeros((2, 4)), verbose=0).shape
(79, (2, 3))
"""

from __future__ import annotations

import collections
import json
import zipfile
from pathlib import Path

import numpy as np

from .. import callbacks as callbacks_module
from .. import initializers, losses, optimizers
from .. import metrics as metrics_module
from .._files import atomic_write
from .._spec import received
from ..autograd import Tensor, no_grad
from ..layers.base import (
    LAYER_CLASSES,
    InputLayer,
    Layer,
    Node,
    SymbolicTensor,
    set_weight_values,
    unique_name,
)
from . import summary as summary_module
from . import training


def map_graph(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]):
    """Keras' graph walk: the nodes from ``inputs`` to ``outputs`` in execution order, their depths
    (0 at the outputs) and the layers ordered by decreasing depth, then by first visit."""
    finished, in_progress, ordered, first_visit = set(), set(), [], {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor: SymbolicTensor):
        node = tensor.node
        if node is None:
            raise ValueError(f"{tensor} was not produced by npconv layers (no graph node): start from layers.Input")
        if id(node) in finished:
            return
        if id(node) in in_progress:
            raise ValueError(f"The graph has a cycle through layer {node.layer.name!r}")
        first_visit.setdefault(node.layer, len(first_visit))
        in_progress.add(id(node))
        if not node.is_input and id(tensor) not in input_ids:
            for parent in node.inputs:
                visit(parent)
        elif not node.is_input:
            raise ValueError("Model inputs must come from layers.Input")
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for output in outputs:
        visit(output)
    missing = [t for t in inputs if not any(n.output is t for n in ordered)]
    for t in missing:
        ordered.insert(0, t.node)
        first_visit.setdefault(t.node.layer, -1)
    for node in ordered:
        if node.is_input and not any(node.output is t for t in inputs):
            raise ValueError(
                f"Graph disconnected: the output needs input {node.layer.name!r}, which is not in the model's inputs"
            )
    depth: dict[int, int] = {}
    layer_depth: dict[Layer, int] = {}
    for node in reversed(ordered):
        d = max(depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        depth[id(node)] = layer_depth[node.layer] = d
        for parent in node.parent_nodes:
            depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_visit[layer]))
    return ordered, {id(n): depth[id(n)] for n in ordered}, layers


def check_config(config, keys: tuple[str, ...], name: str = "config") -> dict:
    """``config`` (a ``get_config()`` dict) after checking it is a dict holding ``keys``.

    Parameters
    ----------
    config : dict
        The dict to check.
    keys : tuple of str
        The keys it must hold.
    name : str, default "config"
        Its name in error messages (``'config["layers"][2]'``).

    Returns
    -------
    dict
        ``config``.

    Raises
    ------
    TypeError
        ``config`` is not a dict.
    ValueError
        A key is missing.

    Examples
    --------
    >>> check_config({}, ("name", "layers"))
    Traceback (most recent call last):
    ValueError: Invalid value for argument `config`: expected the keys ['name', 'layers'] \
(a get_config() dict); missing ['name', 'layers']. Received: config={}
    """
    text = repr(config)
    shown = text if len(text) <= 200 else f"{text[:200]}..."
    if not isinstance(config, dict):
        raise TypeError(
            f"Invalid type for argument `{name}`: expected a dict (from get_config()). Received: {name}={shown}"
        )
    missing = [key for key in keys if key not in config]
    if missing:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected the keys {list(keys)} (a get_config() dict); "
            f"missing {missing}. Received: {name}={shown}"
        )
    return config


def deserialize_layer(config: dict, custom_objects=None, argument: str = "config") -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` (built-in or in ``custom_objects``);
    ``argument`` names ``config`` in error messages."""
    name = check_config(config, ("class_name", "config"), argument)["class_name"]
    cls = (custom_objects or {}).get(name) or LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"Unknown layer class {name!r}: pass it in custom_objects={{'{name}': {name}}}")
    if issubclass(cls, Model):
        return cls.from_config(config["config"], custom_objects=custom_objects)
    return cls.from_config(config["config"])


def weights_path(filepath, what: str) -> str:
    """``filepath`` as a string, after checking it names an ``.npz`` file; ``what`` starts the error
    message (``"save_weights writes"``)."""
    text = str(filepath)
    if Path(text).suffix != ".npz":
        raise ValueError(f"{what} .npz files: the path must end with '.npz'. {received(filepath=text)}")
    return text


def json_ready(value):
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Model(Layer):
    """A functional model ``Model(inputs, outputs)``: ``inputs`` from :func:`~npconv.layers.Input`
    (one or a list), ``outputs`` the symbolic result of calling layers on them.

    Training API (Keras 3): :meth:`compile`, :meth:`fit`, :meth:`evaluate`, :meth:`predict`;
    inspection: :meth:`summary`, :meth:`count_params`, ``layers``, ``weights``; persistence:
    :meth:`get_weights`/:meth:`set_weights`, :meth:`save_weights`/:meth:`load_weights` (``.npz``),
    :meth:`get_config`/:meth:`from_config`.  Calling a model on arrays returns arrays (inference).
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        if inputs is None or outputs is None:
            raise TypeError(
                "npconv builds functional models: Model(inputs, outputs) with inputs from layers.Input "
                "(or use Sequential([...]))"
            )
        super().__init__(name=name or unique_name("functional"), trainable=trainable)
        self._reset_compile_state()
        self._init_graph(inputs, outputs)

    def _reset_compile_state(self) -> None:
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self._metric_identifiers: list = []

    def _init_graph(self, inputs, outputs) -> None:
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        self.inputs = [inputs] if self._single_input else list(inputs)
        self.outputs = [outputs] if self._single_output else list(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"Model inputs and outputs must be symbolic tensors (from layers.Input). Received: {t!r}"
                )
        self._graph_nodes, self._node_depth, self._operations = map_graph(self.inputs, self.outputs)
        self._nodes = [n for n in self._graph_nodes if not n.is_input]
        self.list_input = not self._single_input
        self.dtype = self.inputs[0].dtype
        self.built = True

    # ----------------------------------------------------------------------- structure

    @property
    def layers(self) -> list[Layer]:
        """The layers in Keras' order (for a functional model, its InputLayers first)."""
        return list(self._operations)

    def _sublayers(self) -> list[Layer]:
        return self.layers

    @property
    def weights(self):
        seen, result = set(), []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    result.append(w)
        return result

    def _weight_paths(self) -> list[str]:
        """``layer/weight`` names of :attr:`weights`, nested models spelled ``model/layer/weight``."""
        seen, paths = set(), []
        for layer in self.layers:
            nested = layer._weight_paths() if isinstance(layer, Model) else [w.name for w in layer.weights]
            for w, path in zip(layer.weights, nested):
                if id(w) not in seen:
                    seen.add(id(w))
                    paths.append(f"{layer.name}/{path}")
        return paths

    def set_weights(self, weights) -> None:
        """Set every weight from a list in :meth:`get_weights` order (a Keras model's
        ``get_weights()`` fits a model built with the same layers).  The count and every shape,
        dtype and value are checked first (see :func:`~npconv.layers.base.set_weight_values`): on
        any error no weight changes."""
        set_weight_values(self.weights, weights, self._weight_paths(), f"Model {self.name!r}")

    def _check_inputs(self, shapes) -> None:
        if not self.built:  # a Sequential model learns its input shape from the first call
            return
        if len(shapes) != len(self.inputs):
            raise ValueError(f'Model "{self.name}" expects {len(self.inputs)} input(s). Received: {len(shapes)}')
        for i, (shape, t) in enumerate(zip(shapes, self.inputs)):
            if len(shape) != t.ndim or any(
                a is not None and b is not None and a != b for a, b in zip(shape[1:], t.shape[1:])
            ):
                raise ValueError(
                    f'Input {i} of layer "{self.name}" is incompatible with the layer: expected shape={t.shape}, '
                    f"found shape={tuple(shape)}"
                )

    def call(self, inputs, training=None):
        values = {id(t): v for t, v in zip(self.inputs, inputs if self.list_input else [inputs])}
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            values[id(node.output)] = node.layer(args if node.list_input else args[0], training=training)
        results = [values[id(t)] for t in self.outputs]
        return results[0] if self._single_output else results

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    def _call_symbolic(self, inputs):
        if not self._single_output:
            raise ValueError(f"Model {self.name!r} has several outputs and cannot be used as a layer in npconv")
        return super()._call_symbolic(inputs)

    # ----------------------------------------------------------------------- training

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Set the optimizer (name or object), the loss (name or :class:`~npconv.losses.Loss`) and the
        metrics (names such as ``"accuracy"``, ``"mae"``) that :meth:`fit` and :meth:`evaluate` use."""
        optimizer = optimizers.get(optimizer)
        loss = None if loss is None else losses.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"Invalid type for argument `metrics`: expected a list. Received: metrics={metrics!r}")
        for metric in metrics or []:
            metrics_module.get(metric)  # unknown names fail here, not in fit
        self.optimizer, self.loss, self.compiled = optimizer, loss, True
        self._metric_identifiers = list(metrics or [])

    def _check_compiled(self, function: str) -> None:
        if not self.compiled or self.loss is None:
            raise RuntimeError(f"You must call `compile()` with a loss before calling `{function}()`.")

    def _output_shape(self) -> tuple:
        if not self._single_output:
            raise ValueError("npconv trains models with a single output")
        return self.outputs[0].shape

    def _prepare(self, x, y, what: str):
        """Checked inputs (list of arrays) and targets, validated before any training step."""
        if x is None or y is None:
            raise ValueError(f"{what} needs both x and y. Received: x={type(x).__name__}, y={type(y).__name__}")
        self._build_for(x)
        arrays = training.as_arrays(x, [t.shape for t in self.inputs], "x_val" if what == "validation_data" else "x")
        y = np.asarray(y)
        training.check_cardinality({"x": arrays, "y": [y]})
        targets = self.loss.check_targets(y, self._output_shape(), "y")
        return arrays, targets

    def _build_for(self, x) -> None:
        """Sequential models build from the first data they see; functional ones are built."""

    def _make_metrics(self, targets: np.ndarray) -> list[metrics_module.Metric]:
        output_shape = self._output_shape()
        return [
            metrics_module.get(m, self.loss.name, output_shape[-1], targets.ndim, len(output_shape))
            for m in self._metric_identifiers
        ]

    def _batch_inputs(self, arrays, index):
        tensors = [Tensor(np.asarray(a[index], dtype=self.dtype)) for a in arrays]
        return tensors if self.list_input else tensors[0]

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        initial_epoch=0,
    ):
        """Train for ``epochs`` passes over ``(x, y)`` in shuffled batches of ``batch_size`` (32).

        ``validation_data=(x_val, y_val)`` or ``validation_split`` (the last fraction of ``x``, taken
        before shuffling) adds ``val_*`` entries.  Returns a :class:`~npconv.callbacks.History`
        whose ``history`` maps ``loss``, each metric and their ``val_`` forms to per-epoch values.
        Everything (shapes, labels, arguments, the keys a ``ModelCheckpoint`` path uses) is checked
        before the first step.  A callback that sets ``model.stop_training`` in a batch hook
        (:class:`~npconv.callbacks.TerminateOnNaN`) ends training after that batch; the epoch line
        says when the loss is NaN or infinite.  It changes no
        process-wide setting; :func:`npconv.tune_malloc` is an opt-in allocator tuning for long
        training runs.
        """
        self._check_compiled("fit")
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        epochs = training.positive_int(epochs, "epochs")
        training.check_verbose(verbose)
        user_callbacks = callbacks_module.checked(callbacks)
        training.check_fit_arguments(initial_epoch, epochs, validation_split, validation_data)
        arrays, targets = self._prepare(x, y, "fit")
        if validation_split:
            cut = training.split_point(len(targets), validation_split)
            validation = ([a[cut:] for a in arrays], targets[cut:])
            arrays, targets = [a[:cut] for a in arrays], targets[:cut]
        else:
            validation = None if validation_data is None else self._prepare(*validation_data, "validation_data")

        steps = -(-len(targets) // batch_size)
        history = callbacks_module.History()
        callback_list = [*user_callbacks, history]
        train_metrics = self._make_metrics(targets)
        log_keys = [*(m.name for m in train_metrics), "loss"]
        if validation is not None:
            log_keys += [f"val_{key}" for key in log_keys]
        for c in callback_list:
            c.set_model(self)
            c.set_params({"epochs": epochs, "steps": steps, "verbose": verbose, "metrics": log_keys})
        progress = training.Progress(verbose, steps)
        self.stop_training = False
        callbacks_module.run(callback_list, "on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            callbacks_module.run(callback_list, "on_epoch_begin", epoch, {})
            progress.epoch_begin(epoch, epochs)
            logs = self._train_epoch(arrays, targets, batch_size, shuffle, train_metrics, callback_list, progress)
            if validation is not None:
                logs.update({f"val_{k}": v for k, v in self._evaluate_arrays(*validation, batch_size).items()})
            callbacks_module.run(callback_list, "on_epoch_end", epoch, logs)
            progress.epoch_end(logs)
            if self.stop_training:
                break
        callbacks_module.run(callback_list, "on_train_end", logs)
        return history

    def _train_epoch(self, arrays, targets, batch_size, shuffle, train_metrics, callback_list, progress) -> dict:
        """One pass over the (shuffled) data; returns the epoch's mean loss and metrics."""
        count = len(targets)
        params = self.trainable_weights
        for m in train_metrics:
            m.reset()
        loss_total = 0.0
        order = initializers.global_generator().permutation(count) if shuffle else None
        for step, index in enumerate(training.batches(count, batch_size, order)):
            callbacks_module.run(callback_list, "on_train_batch_begin", step, {})
            y_batch = targets[index]
            loss_value, y_pred = self._train_step(self._batch_inputs(arrays, index), y_batch, params)
            loss_total += loss_value * len(y_batch)
            for m in train_metrics:
                m.update(y_batch, y_pred)
            logs = {
                **{m.name: m.result() for m in train_metrics},
                "loss": loss_total / min((step + 1) * batch_size, count),
            }
            callbacks_module.run(callback_list, "on_train_batch_end", step, logs)
            progress.step(step + 1, logs)
            if self.stop_training:  # a callback (TerminateOnNaN) ends training within the epoch, as Keras
                break
        return logs

    def _train_step(self, inputs, y_batch, params) -> tuple[float, np.ndarray]:
        """Forward in training mode, loss, backward, one optimizer step; returns (loss, predictions)."""
        outputs = self.call(inputs, training=True)
        loss = self.loss.call(y_batch, outputs)
        loss.backward()
        grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        self.optimizer.apply(grads, params)
        return float(loss.data), outputs.data

    def _evaluate_arrays(self, arrays, targets, batch_size) -> dict[str, float]:
        eval_metrics = self._make_metrics(targets)
        loss_total = 0.0
        with no_grad():
            for index in training.batches(len(targets), batch_size):
                outputs = self.call(self._batch_inputs(arrays, index), training=False)
                loss_total += float(self.loss.call(targets[index], outputs).data) * len(targets[index])
                for m in eval_metrics:
                    m.update(targets[index], outputs.data)
        return {**{m.name: m.result() for m in eval_metrics}, "loss": loss_total / len(targets)}

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """The loss (and metrics) on ``(x, y)`` in inference mode: a float without metrics, else
        ``[loss, *metrics]`` (or a dict with ``return_dict=True``)."""
        self._check_compiled("evaluate")
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        training.check_verbose(verbose)
        arrays, targets = self._prepare(x, y, "evaluate")
        values = self._evaluate_arrays(arrays, targets, batch_size)
        if verbose:
            steps = -(-len(targets) // batch_size)
            print(f"{steps}/{steps} - {training.format_logs(values)}")
        if return_dict:
            return values
        ordered = [values["loss"], *(values[m] for m in values if m != "loss")]
        return ordered[0] if len(ordered) == 1 else ordered

    def predict(self, x, batch_size=None, verbose="auto"):
        """The model's outputs on ``x`` in inference mode, computed in batches of ``batch_size`` (32)."""
        batch_size = training.positive_int(batch_size, "batch_size", default=32)
        training.check_verbose(verbose)
        self._build_for(x)
        arrays = training.as_arrays(x, [t.shape for t in self.inputs])
        count = training.check_cardinality({"x": arrays})
        outputs = []
        with no_grad():
            for index in training.batches(count, batch_size):
                result = self.call(self._batch_inputs(arrays, index), training=False)
                outputs.append([result] if self._single_output else result)
        merged = [np.concatenate([batch[i].data for batch in outputs]) for i in range(len(self.outputs))]
        return merged[0] if self._single_output else merged

    # ----------------------------------------------------------------------- inspection

    def summary(self, line_length=None, positions=None, print_fn=None) -> None:
        """Print Keras 3's table: each layer with its output shape and parameter count, then totals."""
        summary_module.print_summary(self, line_length, positions, print_fn)

    def _summary_rows(self) -> tuple[list[list[str]], bool]:
        """Table rows and whether the graph is a chain (Keras then drops the "Connected to" column)."""
        by_depth = collections.defaultdict(list)
        for node in self._graph_nodes:
            by_depth[self._node_depth[id(node)]].append(node)
        chain = all(len(nodes) == 1 and len(nodes[0].inputs) <= 1 for nodes in by_depth.values())
        sequential_like = chain and len({id(n.layer) for n in self._graph_nodes}) == len(self._graph_nodes)
        rows = []
        for layer in self._summary_layers():
            nodes = self._layer_nodes(layer)
            shape = "(" + ", ".join(map(str, nodes[-1].output.shape)) + ")" if nodes else "?"
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            row = [f"{layer.name} ({type(layer).__name__})", shape, params]
            if not sequential_like:
                row.append(
                    ", ".join("{}[{}][{}]".format(*self._node_reference(t)) for n in nodes for t in n.inputs) or "-"
                )
            rows.append(row)
        return rows, sequential_like

    def _summary_layers(self) -> list[Layer]:
        return self.layers

    def _layer_nodes(self, layer: Layer) -> list[Node]:
        """The calls of ``layer`` inside this model, in execution order."""
        return [n for n in self._graph_nodes if n.layer is layer]

    def _node_reference(self, tensor: SymbolicTensor) -> list:
        """Keras' ``[layer_name, node_index, tensor_index]`` of a tensor in this graph."""
        layer = tensor.node.layer
        return [layer.name, self._layer_nodes(layer).index(tensor.node), 0]

    # ----------------------------------------------------------------------- persistence

    def save_weights(self, filepath) -> None:
        """Write the weights to an ``.npz`` file (no pickle): key ``"0003:conv2d/bias"`` = position in
        :meth:`get_weights` order, layer and weight name.

        The file is written atomically (a temporary file, then a rename): if writing fails (a full
        disk), an existing file at ``filepath`` is left as it was.

        Parameters
        ----------
        filepath : str or os.PathLike
            Where to write; must end with ``.npz``.

        Raises
        ------
        ValueError
            ``filepath`` does not end with ``.npz``.
        OSError
            Writing failed; ``filepath`` is unchanged.
        """
        filepath = Path(weights_path(filepath, "save_weights writes"))
        arrays = {f"{i:04d}:{path}": w.data for i, (path, w) in enumerate(zip(self._weight_paths(), self.weights))}
        atomic_write(filepath, lambda temporary: np.savez(temporary, **arrays))

    def load_weights(self, filepath) -> None:
        """Read weights written by :meth:`save_weights`, or by ``np.savez(path, *keras_model.get_weights())``
        (keys ``arr_0``, ``arr_1``, ...).

        Every array is checked before any weight changes: their count, shapes, dtypes (real numbers)
        and values (finite, and within range of each weight's dtype); on any error the model is
        unchanged.

        Parameters
        ----------
        filepath : str or os.PathLike
            An ``.npz`` file.

        Raises
        ------
        ValueError
            ``filepath`` does not end with ``.npz`` or is not an npconv weights file; the wrong number
            of arrays, a shape that differs, a NaN or infinite value, or a value too large for the
            weight's dtype (the message names the weight and what it received).
        TypeError
            An array that does not hold real numbers (complex, strings).

        Examples
        --------
        >>> import numpy as np, npconv as nc, pathlib, tempfile
        >>> model = nc.Sequential([nc.layers.Input((2,)), nc.layers.Dense(1, name="out")])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.weights.npz"
        >>> np.savez(path, np.full((2, 1), 1e300), np.zeros(1))
        >>> model.load_weights(path)
        Traceback (most recent call last):
        ValueError: Invalid value for weight 'out/kernel': 1e+300 does not fit its dtype float32 ...
        """
        filepath = weights_path(filepath, "load_weights reads")
        try:
            data = np.load(filepath, allow_pickle=False)
        except (ValueError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{filepath} is not an npconv weights file ({error}). {received(filepath=filepath)}"
            ) from error
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(
                f"{filepath} is not an npconv weights file (a single array, not an .npz archive). "
                f"{received(filepath=filepath)}"
            )
        with data:

            def position(key: str) -> int:
                head = key.split(":", 1)[0] if ":" in key else key.removeprefix("arr_")
                if not head.isdigit():
                    raise ValueError(f"{filepath} is not an npconv weights file (unexpected key {key!r})")
                return int(head)

            weights = []
            for key in sorted(data.files, key=position):
                try:
                    weights.append(data[key])
                except ValueError as error:  # object arrays (pickles) are refused
                    raise ValueError(f"{filepath}: array {key!r} cannot be read ({error})") from error
        self.set_weights(weights)

    def get_config(self) -> dict:
        """Architecture as JSON-ready data; :meth:`from_config` rebuilds the model (fresh weights)."""
        layer_configs = []
        for layer in self.layers:
            inbound = [[self._node_reference(t) for t in n.inputs] for n in self._layer_nodes(layer) if not n.is_input]
            entry = {"class_name": type(layer).__name__, "name": layer.name, "config": layer.get_config()}
            layer_configs.append({**entry, "inbound_nodes": inbound})
        return json_ready(
            {
                "name": self.name,
                "trainable": self.trainable,
                "layers": layer_configs,
                "input_layers": [self._node_reference(t) for t in self.inputs],
                "output_layers": [self._node_reference(t) for t in self.outputs],
                "single_input": self._single_input,
                "single_output": self._single_output,
            }
        )

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        """The model :meth:`get_config` described, with fresh weights; ``custom_objects`` maps the
        class names of users' layers to their classes.  An incomplete ``config`` raises a ValueError
        naming the missing keys (a TypeError when it is not a dict)."""
        check_config(config, ("name", "layers", "input_layers", "output_layers"))
        for i, entry in enumerate(config["layers"]):
            check_config(entry, ("class_name", "name", "config", "inbound_nodes"), f'config["layers"][{i}]')
        layers = {
            entry["name"]: deserialize_layer(entry, custom_objects, f'config["layers"][{i}]')
            for i, entry in enumerate(config["layers"])
        }
        outputs: dict[tuple[str, int], SymbolicTensor] = {}
        for entry in config["layers"]:
            layer = layers[entry["name"]]
            if isinstance(layer, InputLayer):
                outputs[(entry["name"], 0)] = layer.output
        pending = [
            (entry["name"], k, inbound)
            for entry in config["layers"]
            for k, inbound in enumerate(entry["inbound_nodes"])
        ]
        while pending:
            ready = [
                p
                for p in pending
                if all((name, index) in outputs for name, index, _ in p[2])
                and (p[1] == 0 or (p[0], p[1] - 1) in outputs)
            ]
            if not ready:
                raise ValueError("Invalid model config: some layer inputs can never be computed")
            for name, k, inbound in ready:
                args = [outputs[(n, i)] for n, i, _ in inbound]
                layer = layers[name]
                outputs[(name, k)] = layer(args if layer.list_input else args[0])
                pending.remove((name, k, inbound))
        inputs = [outputs[(n, i)] for n, i, _ in config["input_layers"]]
        outs = [outputs[(n, i)] for n, i, _ in config["output_layers"]]
        return cls(
            inputs[0] if config.get("single_input", True) else inputs,
            outs[0] if config.get("single_output", True) else outs,
            name=config["name"],
            trainable=config.get("trainable", True),
        )

    def to_json(self) -> str:
        """:meth:`get_config` as a JSON string."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()})
