"""Losses with Keras 3's names and semantics, numerically stable, each with a fused gradient.

Every loss averages over the batch (and over positions for outputs with extra dims), Keras'
``"sum_over_batch_size"``.  Cross-entropies on a softmax/sigmoid output work from the logits the
activation kept (``Tensor.logits``, as Keras does): ``log_softmax`` via ``logsumexp`` and a
gradient ``(softmax - target) / n``, so nothing overflows or takes ``log(0)``.  On other
probabilities they clip to ``[1e-7, 1 - 1e-7]`` like Keras.

Before training, :meth:`Loss.check_targets` validates the labels against the model's output shape
(integer labels in range for the sparse loss, matching shapes for the others) with a clear error.

>>> import numpy as np
>>> from npconv import losses
>>> loss = losses.get("sparse_categorical_crossentropy")
>>> round(loss(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])), 6)   # -(log .9 + log .8) / 2
0.164252
>>> losses.get("mse")(np.zeros((2, 2)), np.ones((2, 2)))
1.0
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .autograd import Tensor, as_tensor, record

EPSILON = 1e-7


def _mean_scale(y_pred: np.ndarray) -> float:
    """``1 / number of per-sample-position losses`` (all dims but the last)."""
    return 1.0 / max(y_pred.size // y_pred.shape[-1], 1)


def _scalar(value, dtype) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


class Loss:
    """Base class: ``loss(y_true, y_pred)`` -> scalar; a Tensor for a Tensor ``y_pred`` (so
    ``backward()`` works), else a Python float."""

    name = "loss"

    def __call__(self, y_true, y_pred):
        tensor_in = isinstance(y_pred, Tensor)
        y_pred = as_tensor(y_pred) if tensor_in else Tensor(np.asarray(y_pred, dtype=np.float64))
        out = self.call(np.asarray(y_true), y_pred)
        return out if tensor_in else float(out.data)

    def call(self, y_true: np.ndarray, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def check_targets(self, y: np.ndarray, output_shape: tuple, what: str = "y") -> np.ndarray:
        """Validate targets ``y`` (all samples) for outputs of ``output_shape`` (batch first) and
        return them in the dtype training uses. Default: same shape as the output, floats."""
        y = _numeric(y, what)
        if y.shape[1:] != tuple(output_shape[1:]) and not (y.ndim == 1 and tuple(output_shape[1:]) == (1,)):
            raise ValueError(
                f"Arguments `target` and `output` must have the same shape for {self.name}: the model outputs "
                f"{tuple(output_shape)}. Received: {what}.shape={y.shape}"
            )
        return y.reshape(y.shape[0], *output_shape[1:]).astype(np.float32, copy=False)

    def get_config(self) -> dict:
        return {"name": self.name}


def _numeric(y, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"Invalid targets: expected numbers. Received: {what}.dtype={y.dtype}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"Invalid targets: {what} contains NaN or infinity")
    return y


def _cross_entropy_from_logits(logits: Tensor, target: np.ndarray | None, labels: np.ndarray | None) -> Tensor:
    """Mean over positions of ``-sum(target * log_softmax(logits))`` (or ``-log_softmax[label]``)."""
    z = logits.data.reshape(-1, logits.shape[-1])
    log_probs = z - special.logsumexp(z, axis=-1, keepdims=True)
    scale = _mean_scale(logits.data)
    if labels is not None:
        rows = np.arange(len(z))
        value = -log_probs[rows, labels].sum() * scale
    else:
        value = -(target * log_probs).sum() * scale

    def vjp(g):
        d = np.exp(log_probs)
        if labels is not None:
            d[rows, labels] -= 1
        else:
            d *= target.sum(axis=-1, keepdims=True)
            d -= target
        d *= g * scale
        return (d.reshape(logits.shape),)

    return record(_scalar(value, logits.dtype), (logits,), vjp)


def _cross_entropy_from_probabilities(probs: Tensor, target: np.ndarray) -> Tensor:
    """Keras' probability path: renormalise, clip to ``[eps, 1 - eps]``, ``-sum(target * log p)``."""
    p = probs.data.reshape(-1, probs.shape[-1])
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    clipped = np.clip(q, EPSILON, 1 - EPSILON)
    scale = _mean_scale(probs.data)
    value = -(target * np.log(clipped)).sum() * scale

    def vjp(g):
        dq = -target / clipped * ((q >= EPSILON) & (q <= 1 - EPSILON)) * (g * scale)
        dp = (dq - (dq * q).sum(axis=-1, keepdims=True)) / total
        return (dp.reshape(probs.shape).astype(probs.dtype, copy=False),)

    return record(_scalar(value, probs.dtype), (probs,), vjp)


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or soft) targets of the output's shape."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def call(self, y_true, y_pred):
        target = y_true.reshape(-1, y_pred.shape[-1]).astype(y_pred.dtype, copy=False)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / target.shape[-1]
        logits = y_pred if self.from_logits else y_pred.logits
        if logits is not None:
            return _cross_entropy_from_logits(logits, target, None)
        return _cross_entropy_from_probabilities(y_pred, target)

    def check_targets(self, y, output_shape, what="y"):
        y = _numeric(y, what)
        if y.shape[1:] != tuple(output_shape[1:]):
            hint = ""
            if y.ndim == len(output_shape) - 1 or y.shape[1:] == (1,):
                hint = " Integer class labels need loss='sparse_categorical_crossentropy' (or one-hot targets)."
            raise ValueError(
                f"Arguments `target` and `output` must have the same shape for {self.name}: the model outputs "
                f"{tuple(output_shape)}. Received: {what}.shape={y.shape}.{hint}"
            )
        return y.astype(np.float32, copy=False)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels ``0 <= y < classes`` (shape ``(N,)`` or ``(N, 1)``)."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        labels = y_true.reshape(-1).astype(np.intp, copy=False)
        logits = y_pred if self.from_logits else y_pred.logits
        if logits is not None:
            return _cross_entropy_from_logits(logits, None, labels)
        one_hot = np.zeros((labels.size, y_pred.shape[-1]), dtype=y_pred.dtype)
        one_hot[np.arange(labels.size), labels] = 1
        return _cross_entropy_from_probabilities(y_pred, one_hot)

    def check_targets(self, y, output_shape, what="y"):
        y = _numeric(y, what)
        classes = output_shape[-1]
        position_shape = tuple(output_shape[1:-1])
        if y.shape[1:] not in (position_shape, (*position_shape, 1)):
            raise ValueError(
                f"Invalid labels for {self.name}: expected integer class labels of shape "
                f"{(y.shape[0], *position_shape)} for a model with outputs {tuple(output_shape)}. "
                f"Received: {what}.shape={y.shape}"
                + (
                    " (one-hot targets need loss='categorical_crossentropy')"
                    if y.shape[1:] == tuple(output_shape[1:])
                    else ""
                )
            )
        if y.dtype.kind == "f" and (y != np.round(y)).any():
            raise ValueError(
                f"Invalid labels for {self.name}: expected integers. Received: non-integer values in {what}"
            )
        if y.size and (y.min() < 0 or y.max() >= classes):
            bad = int(np.flatnonzero((y.reshape(-1) < 0) | (y.reshape(-1) >= classes))[0])
            raise ValueError(
                f"Invalid labels for {self.name}: expected integers in [0, {classes}) (the model has {classes} "
                f"outputs). Received: {what} with values in [{y.min()}, {y.max()}], e.g. {what}.flat[{bad}] = "
                f"{y.reshape(-1)[bad]}"
            )
        return y.astype(np.int64, copy=False)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """``-(y log p + (1 - y) log(1 - p))`` averaged; targets in ``[0, 1]`` of the output's shape."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def call(self, y_true, y_pred):
        target = y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        scale = 1.0 / y_pred.data.size
        logits = y_pred if self.from_logits else y_pred.logits
        if logits is not None:
            z = logits.data
            value = (np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))).sum() * scale
            return record(_scalar(value, z.dtype), (logits,), lambda g: ((special.expit(z) - target) * (g * scale),))
        p = y_pred.data
        clipped = np.clip(p, EPSILON, 1 - EPSILON)
        value = -(target * np.log(clipped) + (1 - target) * np.log(1 - clipped)).sum() * scale
        inside = (p >= EPSILON) & (p <= 1 - EPSILON)

        def vjp(g):
            return ((clipped - target) / (clipped * (1 - clipped)) * inside * (g * scale),)

        return record(_scalar(value, p.dtype), (y_pred,), vjp)

    def check_targets(self, y, output_shape, what="y"):
        y = super().check_targets(y, output_shape, what)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                f"Invalid targets for {self.name}: expected values in [0, 1]. Received: {what} with values in "
                f"[{y.min()}, {y.max()}]"
            )
        return y

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true) ** 2)``."""

    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        diff = y_pred.data - y_true.reshape(y_pred.shape)
        scale = 1.0 / diff.size
        return record(_scalar((diff * diff).sum() * scale, diff.dtype), (y_pred,), lambda g: (diff * (2 * g * scale),))


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)``."""

    name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        diff = y_pred.data - y_true.reshape(y_pred.shape)
        scale = 1.0 / diff.size
        return record(
            _scalar(np.abs(diff).sum() * scale, diff.dtype), (y_pred,), lambda g: (np.sign(diff) * (g * scale),)
        )


LOSSES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}
LOSS_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}


def get(identifier) -> Loss:
    """A :class:`Loss` from a Keras name (``"sparse_categorical_crossentropy"``, ``"mse"``, ...), a
    class name, a config dict or an instance.

    >>> get("categorical_crossentropy").name
    'categorical_crossentropy'
    >>> get("crossentropy")
    Traceback (most recent call last):
    ...
    ValueError: Could not interpret loss identifier: 'crossentropy'. Expected a Loss or one of [...]
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in LOSS_CLASSES:
        return LOSS_CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = LOSSES.get(identifier) or LOSS_CLASSES.get(identifier)
        if cls is not None:
            return cls()
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Expected a Loss or one of {sorted(LOSSES)}")


def serialize(loss: Loss) -> dict:
    config = loss.get_config()
    config.pop("name")
    return {"class_name": type(loss).__name__, "config": config}
