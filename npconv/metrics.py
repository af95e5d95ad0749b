"""Training metrics (Keras names), accumulated exactly over an epoch as sample-weighted means.

``"accuracy"`` (or ``"acc"``) resolves as Keras does: binary accuracy for one output unit or a
binary cross-entropy, sparse categorical accuracy for integer labels, categorical accuracy for
one-hot targets.

>>> import numpy as np
>>> from npconv import metrics
>>> m = metrics.get("accuracy", loss_name="sparse_categorical_crossentropy", output_units=3)
>>> m.update(np.array([0, 2]), np.array([[0.8, 0.1, 0.1], [0.5, 0.2, 0.3]]))
>>> m.name, m.result()
('accuracy', 0.5)
"""

from __future__ import annotations

import numpy as np


def sparse_categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(axis=-1) == y_true.reshape(y_pred.shape[:-1])).astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return ((y_pred > threshold) == (y_true.reshape(y_pred.shape) > threshold)).mean(axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.abs(y_pred - y_true.reshape(y_pred.shape)).mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    return np.square(y_pred - y_true.reshape(y_pred.shape)).mean(axis=-1)


FUNCTIONS = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
}


class Metric:
    """Mean of ``function(y_true, y_pred)`` over every sample seen since :meth:`reset`."""

    def __init__(self, name: str, function):
        self.name = name
        self.function = function
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        values = self.function(y_true, y_pred)
        self.total += float(values.sum())
        self.count += values.size

    def result(self) -> float:
        return self.total / max(self.count, 1)


def get(identifier, loss_name: str = "", output_units: int = 0, target_ndim: int = 0, output_ndim: int = 0) -> Metric:
    """A :class:`Metric` for a Keras metric name (``"accuracy"`` is resolved from the loss and shapes)."""
    if isinstance(identifier, Metric):
        return identifier
    if identifier in ("accuracy", "acc"):
        if output_units == 1 or loss_name == "binary_crossentropy":
            function = binary_accuracy
        elif loss_name == "sparse_categorical_crossentropy" or (target_ndim and target_ndim < output_ndim):
            function = sparse_categorical_accuracy
        else:
            function = categorical_accuracy
        return Metric(identifier, function)
    if isinstance(identifier, str) and identifier in FUNCTIONS:
        return Metric(identifier, FUNCTIONS[identifier])
    if callable(identifier):
        return Metric(getattr(identifier, "__name__", "metric"), identifier)
    raise ValueError(
        f"Could not interpret metric identifier: {identifier!r}. Expected a callable or one of "
        f"{sorted(['accuracy', *FUNCTIONS])}"
    )
