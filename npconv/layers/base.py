"""The Keras-style layer machinery: :class:`Layer`, :class:`Variable`, symbolic tensors and ``Input``.

A layer is called three ways, as in Keras:

- on a NumPy array: it builds its weights from the array's shape if needed, runs in inference mode
  and returns a NumPy array;
- on an :class:`~npconv.autograd.Tensor` (what models do while training): it returns a Tensor whose
  graph reaches the layer's weights;
- on a :class:`SymbolicTensor` from :func:`Input` (the functional API): it records a graph node and
  returns a new SymbolicTensor with the output shape (``None`` for the batch).

Subclasses set ``input_ndim`` / ``input_min_ndim`` (checked before anything runs, with Keras'
message), create weights in ``build(input_shape)`` with :meth:`Layer.add_weight` and compute in
``call(inputs, training)`` with the differentiable functions of :mod:`npconv.autograd`.

>>> import numpy as np
>>> from npconv import layers
>>> dense = layers.Dense(3, kernel_initializer="ones", name="d")
>>> dense(np.ones((2, 4)))
array([[4., 4., 4.],
       [4., 4., 4.]], dtype=float32)
>>> [w.shape for w in dense.get_weights()]
[(4, 3), (3,)]
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

from .. import initializers
from .._spec import received
from ..autograd import Tensor, cast, no_grad

_NAME_COUNTS: dict[str, int] = {}
LAYER_CLASSES: dict[str, type] = {}  # class name -> npconv's layer class, for from_config
FLOAT_DTYPES = ("float16", "float32", "float64")
MAX_WEIGHT_ELEMENTS = 2**31  # larger weights are refused before anything is allocated


def to_snake_case(name: str) -> str:
    """Keras' layer-name rule: ``"Conv2D" -> "conv2d"``, ``"ReLU" -> "re_lu"``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (Keras' automatic names)."""
    count = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Variable(Tensor):
    """A layer weight: a named leaf :class:`~npconv.autograd.Tensor` updated in place by optimizers.

    ``trainable`` is fixed at creation (BatchNormalization's moving statistics are not); a weight
    receives gradients when it and its layer are both trainable.
    """

    __slots__ = ("name", "_trainable")

    def __init__(self, value: np.ndarray, name: str, trainable: bool = True):
        super().__init__(value, requires_grad=trainable)
        self.name = name
        self._trainable = trainable

    @property
    def trainable(self) -> bool:
        return self.requires_grad

    def checked_value(self, value, path: str | None = None) -> np.ndarray:
        """``value`` cast to this weight's dtype, after checking everything :meth:`assign` needs.

        Parameters
        ----------
        value : array_like
            The new value: real numbers (bool, int or float) of this weight's shape.
        path : str, optional
            The weight's name in error messages (a model passes ``"layer/kernel"``); default
            :attr:`name`.

        Returns
        -------
        numpy.ndarray
            A new array of this weight's shape and dtype.

        Raises
        ------
        TypeError
            ``value`` does not hold real numbers (complex, strings, objects).
        ValueError
            A different shape, a NaN or infinite value, or a finite value too large for the
            weight's dtype (``1e300`` for a float32 weight).

        Examples
        --------
        >>> w = Variable(np.zeros(2, np.float32), "bias")
        >>> w.checked_value([1, 2])
        array([1., 2.], dtype=float32)
        >>> w.checked_value([1e300, 0.0])
        Traceback (most recent call last):
        ValueError: Invalid value for weight 'bias': 1e+300 does not fit its dtype float32 (largest \
finite value 3.4028235e+38). Received: value with largest magnitude 1e+300
        """
        path = self.name if path is None else path
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Invalid dtype for weight '{path}': expected real numbers (cast to {self.dtype}). "
                f"Received: value.dtype={array.dtype}"
            )
        if array.shape != self.shape:
            raise ValueError(
                f"Invalid shape for weight '{path}': expected {self.shape}. Received: value.shape={array.shape}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            result = array.astype(self.dtype)
        if result.dtype.kind == "f" and not np.isfinite(result).all():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                bad = array[~np.isfinite(array)].flat[0]
                raise ValueError(
                    f"Invalid value for weight '{path}': expected finite numbers. Received: value holding {bad!s}"
                )
            largest = np.abs(array).max()
            raise ValueError(
                f"Invalid value for weight '{path}': {largest!s} does not fit its dtype {self.dtype} (largest "
                f"finite value {np.finfo(self.dtype).max!s}). Received: value with largest magnitude {largest!s}"
            )
        return result

    def assign(self, value) -> None:
        """Overwrite the value in place with ``value``, checked by :meth:`checked_value` first."""
        self.data[...] = self.checked_value(value)

    def __repr__(self) -> str:
        return f"<Variable name={self.name}, shape={self.shape}, dtype={self.dtype}>"


def set_weight_values(variables: list[Variable], values, paths: list[str], owner: str) -> None:
    """Overwrite ``variables`` with ``values`` all at once: the count, every shape, dtype and value is
    checked (:meth:`Variable.checked_value`) before the first one is written, so on any error nothing
    changes.

    Parameters
    ----------
    variables : list of Variable
        The weights, in the order of ``values``.
    values : iterable of array_like
        Their new values.
    paths : list of str
        The weights' names in error messages (``"dense/kernel"``).
    owner : str
        The layer or model in error messages (``"Model 'mnist'"``).

    Raises
    ------
    ValueError
        The wrong number of values, shapes that differ (all listed), non-finite values or values
        too large for a weight's dtype.
    TypeError
        A value that does not hold real numbers.

    Examples
    --------
    >>> w = Variable(np.zeros(2, np.float32), "bias")
    >>> set_weight_values([w], [np.ones(3)], ["dense/bias"], "Layer 'dense'")
    Traceback (most recent call last):
    ValueError: Weight shape mismatch in Layer 'dense': dense/bias: expected (2,), received (3,)
    """
    values = list(values)
    if len(values) != len(variables):
        raise ValueError(
            f"{owner} has {len(variables)} weights, but set_weights received {len(values)}. Its weights: {paths}"
        )
    bad = [
        f"{p}: expected {w.shape}, received {np.shape(v)}"
        for p, w, v in zip(paths, variables, values)
        if np.shape(v) != w.shape
    ]
    if bad:
        raise ValueError(f"Weight shape mismatch in {owner}: " + "; ".join(bad))
    checked = [w.checked_value(v, p) for w, v, p in zip(variables, values, paths)]
    for variable, value in zip(variables, checked):
        variable.data[...] = value


class SymbolicTensor:
    """The output of :func:`Input` or of a layer called on symbolic tensors: a shape (batch
    ``None``), a dtype and the graph :class:`Node` that produces it."""

    def __init__(self, shape: tuple, dtype: np.dtype, node: Node | None = None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        layer = self.node.layer.name if self.node else None
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}, layer={layer}>"


class Node:
    """One call of ``layer`` in a functional graph: its symbolic inputs and output."""

    def __init__(self, layer: Layer, inputs: list, output: SymbolicTensor, list_input: bool):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = output
        self.list_input = list_input
        output.node = self
        layer._inbound_nodes.append(self)

    @property
    def is_input(self) -> bool:
        return isinstance(self.layer, InputLayer)

    @property
    def parent_nodes(self) -> list[Node]:
        return [t.node for t in self.inputs]


def check_float_dtype(dtype) -> np.dtype:
    """A layer's dtype: float32 by default, float16/32/64, or a Keras ``DTypePolicy`` config."""
    if isinstance(dtype, dict):  # {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        dtype = dtype.get("config", {}).get("name")
    try:
        name = np.dtype(dtype or "float32").name
    except TypeError:
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(
            f"Invalid value for argument `dtype`: expected one of {FLOAT_DTYPES}. Received: dtype={dtype!r}"
        )
    return np.dtype(name)


class Layer:
    """Base class of every layer (see the module docstring for the three ways to call one).

    Keyword arguments every layer takes: ``name`` (default: the snake_case class name, made
    unique), ``trainable``, ``dtype`` (``"float32"``; ``"float64"`` for gradient checks),
    ``input_shape`` / ``input_dim`` (lets a Sequential model build itself from its first layer).
    """

    input_ndim: int | None = None
    input_min_ndim: int | None = None
    list_input = False  # True for merge layers, which take a list of tensors
    size_arguments: tuple[str, ...] = ()  # constructor arguments that set the weights' sizes, for errors

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("npconv."):  # users' layers come through from_config's custom_objects
            LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Invalid type for argument `name`: expected a str. Received: name={name!r}")
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self.dtype = check_float_dtype(dtype)
        self.built = False
        self._trainable = bool(trainable)
        self._weights: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        self.input_axes: dict[int, int] = {}  # axis -> size fixed by build (Keras' InputSpec axes)
        if input_dim is not None:
            input_shape = (input_dim,)
        self._input_shape_arg = None if input_shape is None else tuple(input_shape)

    # ----------------------------------------------------------------------- weights

    def add_weight(self, name: str, shape, initializer="zeros", trainable: bool = True) -> Variable:
        """Create a weight of ``shape`` filled by ``initializer``, in the layer's dtype.

        Parameters
        ----------
        name : str
            The weight's name (``"kernel"``).
        shape : tuple of int
            Its shape.
        initializer : str or Initializer, default "zeros"
            What fills it.
        trainable : bool, default True
            Whether it receives gradients (when the layer is trainable too).

        Returns
        -------
        Variable
            The new weight, also appended to the layer's weights.

        Raises
        ------
        ValueError
            The weight would hold more than ``MAX_WEIGHT_ELEMENTS`` (2**31) numbers; the message names
            the layer's :attr:`size_arguments` (``filters``, ``units``, ...) and their values.
        MemoryError
            The weight is within the limit but the machine cannot hold it (the message names the
            same arguments).

        Examples
        --------
        >>> from npconv import layers
        >>> layers.Dense(2**40)(np.ones((1, 4)))
        Traceback (most recent call last):
        ValueError: Invalid value for argument `units` of layer "dense...": its weight 'kernel' would have \
shape (4, 1099511627776), 4398046511104 numbers, more than npconv's limit of 2147483648 per weight. \
Received: units=1099511627776
        """
        shape = tuple(int(n) for n in shape)
        size = math.prod(shape)
        if size > MAX_WEIGHT_ELEMENTS:
            raise ValueError(
                f"{self._size_problem(name, shape)}, {size} numbers, more than npconv's limit of "
                f"{MAX_WEIGHT_ELEMENTS} per weight. {self._size_received()}"
            )
        try:
            value = initializers.get(initializer)(shape, dtype=self.dtype)
        except MemoryError as error:
            raise MemoryError(
                f"{self._size_problem(name, shape)}: {size * self.dtype.itemsize} bytes, more than this "
                f"machine can allocate. {self._size_received()}"
            ) from error
        variable = Variable(np.ascontiguousarray(value), name, trainable=trainable and self._trainable)
        variable._trainable = trainable
        self._weights.append(variable)
        return variable

    def _size_problem(self, weight: str, shape: tuple) -> str:
        arguments = ", ".join(f"`{a}`" for a in self.size_arguments)
        if not arguments:
            return f'Layer "{self.name}" cannot create its weight {weight!r}: it would have shape {shape}'
        plural = "s" if len(self.size_arguments) > 1 else ""
        return (
            f'Invalid value for argument{plural} {arguments} of layer "{self.name}": its weight {weight!r} '
            f"would have shape {shape}"
        )

    def _size_received(self) -> str:
        if not self.size_arguments:
            return "Check the layer's input shape."
        return received(**{a: getattr(self, a) for a in self.size_arguments})

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Freeze (False) or unfreeze the layer's weights, and those of the layers it contains."""
        self._trainable = bool(value)
        for w in self._weights:
            w.requires_grad = w._trainable and self._trainable
        for layer in self._sublayers():
            layer.trainable = value

    def _sublayers(self) -> list[Layer]:
        """Layers inside this one (a model's layers); none for a plain layer."""
        return []

    @property
    def weights(self) -> list[Variable]:
        """Keras order: trainable weights first (in creation order), then the others."""
        own = self._weights
        return [w for w in own if w._trainable] + [w for w in own if not w._trainable]

    @property
    def trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [w for w in self.weights if not w.requires_grad]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights as NumPy arrays, in Keras' order."""
        return [w.data.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Overwrite the weights from a list of arrays with the shapes and order of :meth:`get_weights`.
        Everything is checked first (see :func:`set_weight_values`): on any error no weight changes."""
        own = self.weights
        set_weight_values(own, weights, [f"{self.name}/{w.name}" for w in own], f"Layer {self.name!r}")

    def count_params(self) -> int:
        """Number of scalars in the weights (trainable or not)."""
        return sum(w.data.size for w in self.weights)

    # ----------------------------------------------------------------------- building and calling

    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch dim ``None``). Default: none."""

    def call(self, inputs, training=None):
        """The computation, on :class:`~npconv.autograd.Tensor` inputs. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__}.call")

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (batch ``None``): by default, a dry run on a batch of one."""
        shapes = input_shape if self.list_input else [input_shape]
        if any(n is None for shape in shapes for n in shape[1:]):
            raise ValueError(
                f"Layer {self.name!r} needs known sizes in every dim but the batch. Received: input_shape={input_shape}"
            )
        dummies = [Tensor(np.zeros((1, *shape[1:]), dtype=self.dtype)) for shape in shapes]
        with no_grad():
            out = self.call(dummies if self.list_input else dummies[0], training=False)
        return (shapes[0][0], *out.shape[1:])

    def _check_inputs(self, shapes: list[tuple]) -> None:
        if self.list_input and len(shapes) < 1:
            raise ValueError(f'Layer "{self.name}" expects a list of input tensors. Received: an empty list')
        for i, shape in enumerate(shapes):
            prefix = f'Input {i} of layer "{self.name}" is incompatible with the layer:'
            if self.input_ndim is not None and len(shape) != self.input_ndim:
                raise ValueError(
                    f"{prefix} expected ndim={self.input_ndim}, found ndim={len(shape)}. Full shape received: {shape}"
                )
            if self.input_min_ndim is not None and len(shape) < self.input_min_ndim:
                raise ValueError(
                    f"{prefix} expected min_ndim={self.input_min_ndim}, found ndim={len(shape)}. "
                    f"Full shape received: {shape}"
                )
            for axis, size in self.input_axes.items():
                if shape[axis] != size:
                    raise ValueError(
                        f"{prefix} expected axis {axis} of input shape to have value {size}, but received input "
                        f"with shape {shape}"
                    )

    def _ensure_built(self, shapes: list[tuple]) -> None:
        self._check_inputs(shapes)
        if not self.built:
            self.build(shapes if self.list_input else shapes[0])
            self.built = True
            self._check_inputs(shapes)

    def __call__(self, inputs, training=None):
        """Run the layer on NumPy arrays, Tensors or SymbolicTensors (a list for merge layers)."""
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.list_input != isinstance(inputs, (list, tuple)):
            expected = "a list of tensors" if self.list_input else "one tensor"
            raise ValueError(
                f'Layer "{self.name}" expects {expected}. Received: inputs of type {type(inputs).__name__}'
            )
        if all(isinstance(t, SymbolicTensor) for t in items):
            return self._call_symbolic(items)
        if any(isinstance(t, SymbolicTensor) for t in items):
            raise TypeError(f'Layer "{self.name}" received a mix of symbolic tensors and arrays')
        eager = not all(isinstance(t, Tensor) for t in items)
        tensors = [cast(t, self.dtype) if isinstance(t, Tensor) else Tensor(self._as_array(t)) for t in items]
        self._ensure_built([(None, *t.shape[1:]) for t in tensors])
        if eager:
            with no_grad():
                out = self.call(tensors if self.list_input else tensors[0], training=bool(training))
            return [t.data for t in out] if isinstance(out, list) else out.data
        return self.call(tensors if self.list_input else tensors[0], training=training)

    def _as_array(self, value) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f'Layer "{self.name}" needs numeric input. Received: an array of dtype {array.dtype}')
        return array.astype(self.dtype, copy=False)

    def _call_symbolic(self, inputs: list[SymbolicTensor]) -> SymbolicTensor:
        shapes = [t.shape for t in inputs]
        self._ensure_built(shapes)
        output_shape = self.compute_output_shape(shapes if self.list_input else shapes[0])
        output = SymbolicTensor(output_shape, self.dtype)
        Node(self, inputs, output, self.list_input)
        return output

    @property
    def output(self) -> SymbolicTensor:
        """The symbolic output of the layer's first call in a functional graph."""
        if not self._inbound_nodes:
            raise AttributeError(f'Layer "{self.name}" has never been called on a symbolic tensor and has no output')
        return self._inbound_nodes[0].output

    # ----------------------------------------------------------------------- config

    def get_config(self) -> dict:
        """The constructor arguments (JSON-friendly) that :meth:`from_config` turns back into the layer."""
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def is_size(value) -> bool:
    """Whether ``value`` is a positive int (NumPy ints included, bools not): a valid dim size."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= 1


def shape_argument(value, name: str) -> tuple:
    """A shape argument (``Input``'s ``shape`` or ``batch_shape``) as a tuple of positive ints and Nones;
    an int is a 1-D shape.

    Raises
    ------
    TypeError
        ``value`` is neither an int nor a tuple or list.
    ValueError
        An entry is not a positive int or None (``4.5``, ``0``, ``"4"``).

    Examples
    --------
    >>> shape_argument([28, 28, None], "shape"), shape_argument(3, "shape")
    ((28, 28, None), (3,))
    >>> shape_argument((4.5, 4, 1), "shape")
    Traceback (most recent call last):
    ValueError: Invalid value for argument `shape`: expected positive ints or None. Received: shape=(4.5, 4, 1)
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(
            f"Invalid type for argument `{name}`: expected a tuple of ints (None for an unknown size). "
            f"{received(**{name: value})}"
        )
    if not all(n is None or is_size(n) for n in value):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected positive ints or None. {received(**{name: value})}"
        )
    return tuple(None if n is None else int(n) for n in value)


class InputLayer(Layer):
    """The layer behind :func:`Input`: it holds the batch shape and produces the graph's input."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs `shape` (without the batch) or `batch_shape`. Received: shape=None")
            if batch_size is not None and not is_size(batch_size):
                raise ValueError(
                    f"Invalid value for argument `batch_size`: expected a positive int or None. "
                    f"{received(batch_size=batch_size)}"
                )
            batch_shape = (batch_size, *shape_argument(shape, "shape"))
        else:
            batch_shape = shape_argument(batch_shape, "batch_shape")
            if not batch_shape:
                raise ValueError(
                    "Invalid value for argument `batch_shape`: expected the batch dim first. Received: batch_shape=()"
                )
        self.batch_shape = tuple(None if n is None else int(n) for n in batch_shape)
        self.built = True
        Node(self, [], SymbolicTensor(batch_shape, self.dtype), False)

    def get_config(self) -> dict:
        return {"batch_shape": self.batch_shape, "dtype": self.dtype.name, "name": self.name}

    def call(self, inputs, training=None):
        return inputs


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None) -> SymbolicTensor:
    """A symbolic input of ``shape`` (without the batch dim), as ``keras.Input``.

    >>> from npconv import layers
    >>> layers.Input((28, 28, 1)).shape
    (None, 28, 28, 1)
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)
    return layer.output
