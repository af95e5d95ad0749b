"""A small reverse-mode automatic differentiation engine: :class:`Tensor`, a tape, vjp rules.

Every operation on a :class:`Tensor` that needs a gradient records its parents and a *vjp* (the
vector-Jacobian product: given ``dL/dy``, return ``dL/dparent`` for each parent).
:meth:`Tensor.backward` walks that graph once in reverse topological order, summing the gradients
that reach each node, and leaves ``dL/dleaf`` in ``leaf.grad`` for every leaf that requires one.
Nothing is recorded inside :func:`no_grad` or when no input requires a gradient, so inference runs
on plain arrays.

The convolution rules are the core's own gradient ops: ``conv``'s vjps are
:func:`npconv.conv_backprop_input` and :func:`npconv.conv_backprop_filter`; ``conv_transpose``'s
are a forward :func:`npconv.conv` and ``conv_backprop_filter`` with the roles of input and
output swapped.

>>> import numpy as np
>>> from npconv.autograd import Tensor
>>> w = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
>>> x = Tensor(np.array([[1.0, -1.0]]))
>>> loss = ((x @ w) * (x @ w)).sum()          # ||x w||^2 = (-2)^2 + (-2)^2
>>> loss.backward()
>>> float(loss.data), w.grad                  # d/dw = 2 x^T (x w)
(8.0, array([[-4., -4.],
       [ 4.,  4.]]))
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from . import _threads, ops
from ._spec import output_size

_STATE = threading.local()


def grad_enabled() -> bool:
    """Whether operations record the graph (``False`` inside :func:`no_grad`)."""
    return getattr(_STATE, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Context in which no operation records a graph (inference: less memory, no overhead).

    >>> with no_grad():
    ...     y = Tensor(np.ones(2), requires_grad=True) * 2.0
    >>> y.requires_grad
    False
    """
    previous = grad_enabled()
    _STATE.enabled = False
    try:
        yield
    finally:
        _STATE.enabled = previous


class Tensor:
    """An array that remembers how it was computed, so that gradients can flow back to it.

    ``data`` is the NumPy array; ``grad`` is filled by :meth:`backward` for leaves created with
    ``requires_grad=True``.  Arithmetic (``+ - * / @``, unary ``-``), :meth:`sum`, :meth:`mean` and
    :meth:`reshape` are differentiable; the layer operations live in this module's functions.
    ``logits`` is set on a softmax/sigmoid output to the tensor before the activation, so that a
    cross-entropy loss can work from logits (numerically stable), as Keras does; ``relu_input`` on a
    relu output, so that max pooling can send its gradient past the relu
    (``maxpool(relu(z)) == relu(maxpool(z))``: the mask is applied to the pooled, smaller tensor).
    """

    __slots__ = ("data", "grad", "requires_grad", "logits", "relu_input", "_parents", "_vjp")
    __array_priority__ = 100  # ndarray op Tensor -> Tensor.__rop__

    def __init__(self, data, requires_grad: bool = False):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.logits = None
        self.relu_input = None
        self._parents = ()
        self._vjp = None

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)

    def numpy(self) -> np.ndarray:
        return self.data

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"

    def backward(self, grad=None) -> None:
        """Accumulate ``d(self)/d(leaf) . grad`` into ``leaf.grad`` for every leaf requiring a gradient.

        ``grad`` defaults to ones (``self`` is then usually a scalar loss).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require a gradient (no parameter led to it)")
        grads = {id(self): np.ones_like(self.data) if grad is None else np.asarray(grad, dtype=self.dtype)}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._vjp is None:  # a leaf; its grad must be writable (broadcast views are not)
                g = g if g.flags.writeable else g.copy()
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, parent_grad in zip(node._parents, node._vjp(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                previous = grads.get(id(parent))
                grads[id(parent)] = parent_grad if previous is None else previous + parent_grad

    # ----------------------------------------------------------------------- arithmetic

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return add(self, -as_tensor(other))

    def __rsub__(self, other):
        return add(-self, other)

    def __mul__(self, other):
        return multiply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = as_tensor(other)
        return multiply(self, record(1.0 / other.data, (other,), lambda g: (-g / (other.data * other.data),)))

    def __neg__(self):
        return record(-self.data, (self,), lambda g: (-g,))

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        shape = self.shape

        def vjp(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return record(self.data.sum(axis=axis, keepdims=keepdims), (self,), vjp)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis, keepdims)
        return total * (total.data.size / self.data.size)  # divided by the number of summed elements

    def reshape(self, *shape) -> Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        original = self.shape
        return record(self.data.reshape(shape), (self,), lambda g: (g.reshape(original),))


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root`` through graph edges, every node after its parents."""
    order, seen, stack = [], {id(root)}, [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent._parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def as_tensor(value) -> Tensor:
    """``value`` if it is a :class:`Tensor`, else a constant Tensor around ``np.asarray(value)``."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def record(data: np.ndarray, parents: tuple, vjp) -> Tensor:
    """The result ``data`` of an operation on ``parents``; its graph edge (``vjp``: output gradient ->
    one gradient or None per parent) is kept only when gradients are on and a parent needs one."""
    out = Tensor(data)
    if grad_enabled() and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._vjp = vjp
    return out


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes NumPy broadcasting added or stretched to reach ``g.shape`` from ``shape``."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


# --------------------------------------------------------------------------- elementwise and linear


def add(a, b) -> Tensor:
    """``a + b`` with NumPy broadcasting."""
    a, b = as_tensor(a), as_tensor(b)
    return record(a.data + b.data, (a, b), lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def add_n(tensors) -> Tensor:
    """Elementwise sum of same-shape tensors (Keras ``Add``)."""
    tensors = [as_tensor(t) for t in tensors]
    total = tensors[0].data.copy()
    for t in tensors[1:]:
        total += t.data
    return record(total, tuple(tensors), lambda g: (g,) * len(tensors))


def multiply(a, b) -> Tensor:
    """``a * b`` with NumPy broadcasting."""
    a, b = as_tensor(a), as_tensor(b)

    def vjp(g):
        return (
            unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
            unbroadcast(g * a.data, b.shape) if b.requires_grad else None,
        )

    return record(a.data * b.data, (a, b), vjp)


def matmul(a, b) -> Tensor:
    """``a @ b`` for a 2-D ``b``; ``a`` may have leading batch dims."""
    a, b = as_tensor(a), as_tensor(b)

    def vjp(g):
        da = g @ b.data.T if a.requires_grad else None
        db = None
        if b.requires_grad:
            db = a.data.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
        return da, db

    return record(a.data @ b.data, (a, b), vjp)


def dense(x, kernel, bias=None) -> Tensor:
    """``x @ kernel + bias`` over the last axis of ``x`` (Keras ``Dense``): one matmul each way.

    ``x`` ``(..., in)``, ``kernel`` ``(in, units)``, ``bias`` ``(units,)`` -> ``(..., units)``.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    y = _threads.matmul(x.data.reshape(-1, x.shape[-1]), kernel.data).reshape(*x.shape[:-1], -1)
    if bias is not None:
        y += bias.data
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def vjp(g):
        g2 = g.reshape(-1, g.shape[-1])
        pairs = {}  # the products wanted, computed side by side
        if x.requires_grad:
            pairs["dx"] = (g2, kernel.data.T)
        if kernel.requires_grad:
            pairs["dk"] = (x.data.reshape(-1, x.shape[-1]).T, g2)
        products = dict(zip(pairs, _threads.matmuls(*pairs.values())))
        dx = products["dx"].reshape(x.shape) if "dx" in products else None
        dk = products.get("dk")
        return (dx, dk) if bias is None else (dx, dk, g2.sum(axis=0))

    return record(y, parents, vjp)


def cast(x, dtype) -> Tensor:
    """``x`` as ``dtype``; the gradient comes back in ``x``'s dtype."""
    x = as_tensor(x)
    if x.dtype == dtype:
        return x
    return record(x.data.astype(dtype), (x,), lambda g: (g.astype(x.dtype),))


def transpose(x, axes) -> Tensor:
    """``np.transpose(x, axes)``."""
    x = as_tensor(x)
    inverse = np.argsort(axes)
    return record(np.transpose(x.data, axes), (x,), lambda g: (np.transpose(g, inverse),))


def concatenate(tensors, axis: int = -1) -> Tensor:
    """``np.concatenate`` along ``axis``; the gradient is split back."""
    tensors = [as_tensor(t) for t in tensors]
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return record(
        np.concatenate([t.data for t in tensors], axis=axis),
        tuple(tensors),
        lambda g: tuple(np.split(g, bounds, axis=axis)),
    )


def pad(x, pad_width) -> Tensor:
    """Zero padding ``np.pad(x, pad_width)``; the gradient is the interior slice."""
    x = as_tensor(x)
    inside = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape))
    return record(np.pad(x.data, pad_width), (x,), lambda g: (g[inside],))


def where_mask(x, mask: np.ndarray, scale: float = 1.0) -> Tensor:
    """``x * mask * scale`` for a constant mask (dropout): the gradient is masked the same way."""
    x = as_tensor(x)
    factor = mask.astype(x.dtype) * x.dtype.type(scale)
    return record(x.data * factor, (x,), lambda g: (g * factor,))


# --------------------------------------------------------------------------- convolutions


def relu_node(x: Tensor, y: np.ndarray) -> Tensor:
    """The node ``y = max(x, 0)`` for an already computed ``y``; it remembers ``x`` (``relu_input``),
    so that a max pooling of it can route its gradient straight to ``x``."""
    out = record(y, (x,), lambda g: (g * (y > 0),))  # 6x faster than np.where(y > 0, g, 0)
    out.relu_input = x
    return out


def conv(x, kernel, bias=None, activation=None, **conv_params) -> Tensor:
    """:func:`npconv.conv` (plus ``bias``) with its vjps: ``conv_backprop_input`` and
    ``conv_backprop_filter``, each computed only when that operand needs a gradient.

    ``activation="relu"`` fuses the relu into the convolution's output pass and returns the relu's
    node (:func:`relu_node`) over the convolution's: the latter shares the relu'd array as its
    ``data``, which no vjp reads (a convolution's vjps read only its inputs)."""
    x, kernel = as_tensor(x), as_tensor(kernel)
    y = ops.conv(x.data, kernel.data, bias=None if bias is None else bias.data, activation=activation, **conv_params)
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def vjp(g):
        dx = ops.conv_backprop_input(g, kernel.data, x.shape, **conv_params) if x.requires_grad else None
        dk = ops.conv_backprop_filter(x.data, g, kernel.shape, **conv_params) if kernel.requires_grad else None
        if bias is None:
            return dx, dk
        return dx, dk, _channel_sum(g, conv_params.get("data_format", "channels_last"))

    node = record(y, parents, vjp)
    return relu_node(node, y) if activation == "relu" else node


def conv_transpose(
    x, kernel, bias=None, *, stride, padding, output_padding, dilation, data_format, kernel_format
) -> Tensor:
    """:func:`npconv.conv_transpose` with a spatial-first kernel ``(*k, out, in)`` (Keras) and its vjps.

    It is the adjoint ``A^T`` of the forward convolution ``A`` whose kernel is ``kernel``, so
    ``d/dx = A g`` (a forward :func:`npconv.conv` of the output gradient) and ``d/dkernel`` is
    ``conv_backprop_filter`` with the output gradient as the input and ``x`` as the output gradient.
    ``stride``, ``dilation`` and ``output_padding`` (or None) are one int per spatial dim;
    ``kernel_format`` is ``"WIO"``, ``"HWIO"`` or ``"DHWIO"``.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    y = ops.conv_transpose(
        x.data,
        kernel.data,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        data_format=data_format,
        kernel_format=kernel_format,
        bias=None if bias is None else bias.data,
    )
    channels_last = data_format == "channels_last"
    in_spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    out_spatial = y.shape[1:-1] if channels_last else y.shape[2:]
    kernel_spatial = kernel.shape[:-2]
    pads, reach = [], []  # forward padding, and how many positions A computes from an output
    for i, (n, k, s, d) in enumerate(zip(in_spatial, kernel_spatial, stride, dilation)):
        extra = None if output_padding is None else output_padding[i]
        lo_hi = ops.transpose_output_size(n, k, s, d, padding, extra)[1]
        pads.append(lo_hi)
        reach.append(output_size(out_spatial[i], *lo_hi, k, s, d))
    forward = dict(
        stride=stride, padding=tuple(pads), dilation=dilation, data_format=data_format, kernel_format=kernel_format
    )
    window = (slice(None),) * (1 if channels_last else 2) + tuple(slice(0, n) for n in in_spatial)
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def vjp(g):
        dx = ops.conv(g, kernel.data, **forward)[window] if x.requires_grad else None
        dk = None
        if kernel.requires_grad:
            x_reach = x.data
            if tuple(reach) != tuple(in_spatial):  # positions A computes that the transpose never read
                x_reach = np.zeros(_with_spatial(x.shape, reach, channels_last), dtype=x.dtype)
                x_reach[window] = x.data
            dk = ops.conv_backprop_filter(g, x_reach, kernel.shape, **forward)
        if bias is None:
            return dx, dk
        return dx, dk, _channel_sum(g, data_format)

    return record(y, parents, vjp)


def _with_spatial(shape: tuple, spatial, channels_last: bool) -> tuple:
    return (shape[0], *spatial, shape[-1]) if channels_last else (shape[0], shape[1], *spatial)


def _channel_sum(g: np.ndarray, data_format: str) -> np.ndarray:
    """Bias gradient: ``g`` summed over every axis but the channel axis."""
    if data_format == "channels_last":
        rows = g.reshape(-1, g.shape[-1])
        with _threads.blas_on_one_thread():
            return np.ones(len(rows), dtype=g.dtype) @ rows  # BLAS: 4x faster than rows.sum(axis=0)
    return g.sum(axis=(0, *range(2, g.ndim)))


__all__ = [
    "Tensor",
    "add",
    "add_n",
    "as_tensor",
    "cast",
    "concatenate",
    "conv",
    "conv_transpose",
    "dense",
    "grad_enabled",
    "matmul",
    "multiply",
    "no_grad",
    "pad",
    "record",
    "transpose",
    "unbroadcast",
    "where_mask",
]
