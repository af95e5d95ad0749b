"""Training callbacks with Keras' hooks: ``History``, ``EarlyStopping``, ``ModelCheckpoint``,
``LearningRateScheduler``, ``TerminateOnNaN``.

A callback's ``model`` is set by ``fit``; ``logs`` passed to ``on_epoch_end`` hold that epoch's
``loss``, metrics and ``val_*`` values, and ``params["metrics"]`` lists those keys before training
starts.  Setting ``model.stop_training = True`` ends training after the current batch (in a batch
hook) or epoch.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

from ._spec import received


class Callback:
    """Base class; override any hook. ``params`` holds ``epochs``, ``steps``, ``verbose`` and
    ``metrics`` (the keys of the epoch logs)."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Records every epoch's logs: ``history.history["val_loss"][epoch]``; ``fit`` returns it."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """A monitored log value and its direction (``mode`` ``"auto"``: max for accuracy-like names)."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"Invalid value for argument `mode`: expected 'auto', 'min' or 'max'. Received: mode={mode!r}"
            )
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if any(word in monitor for word in ("acc", "auc", "precision", "recall")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)

    def _current(self, logs) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = sorted(logs or {})
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not in the logs {available}. "
                "Pass validation data to fit for val_* values, or monitor one of the available keys."
            )
        return float(value)

    def _improved(self, current: float, best: float) -> bool:
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def _initial_best(self) -> float:
        return math.inf if self.mode == "min" else -math.inf


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs;
    with ``restore_best_weights`` the best epoch's weights are put back at the end."""

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0.0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = int(patience), verbose, baseline
        self.restore_best_weights, self.start_from_epoch = bool(restore_best_weights), int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = self._initial_best()
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch to ``schedule(epoch, lr)``
    (Keras' signature; ``schedule(epoch)`` works too).

    >>> decay = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            rate = self.schedule(epoch, optimizer.learning_rate)
        except TypeError:  # a one-argument schedule
            rate = self.schedule(epoch)
        if not isinstance(rate, (int, float)) or rate < 0:
            raise ValueError(f"The learning-rate schedule must return a non-negative float. Received: {rate!r}")
        optimizer.learning_rate = float(rate)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch ends with a NaN or infinite loss, as Keras'
    ``TerminateOnNaN``: it prints ``Batch N: Invalid loss, terminating training`` and sets
    ``model.stop_training``; ``fit`` then ends the epoch there (its logs, validation included, still
    reach ``on_epoch_end`` and the history) and returns.

    Examples
    --------
    >>> import numpy as np, npconv as nc
    >>> model = nc.Sequential([nc.layers.Input((1,)), nc.layers.Dense(1, kernel_initializer="ones")])
    >>> model.compile(nc.optimizers.SGD(learning_rate=1e20), "mse")
    >>> x, y = np.ones((8, 1)), np.zeros(8)                  # the first step overshoots: the loss overflows
    >>> with np.errstate(over="ignore", invalid="ignore"):
    ...     history = model.fit(x, y, batch_size=2, epochs=5, verbose=0, callbacks=[TerminateOnNaN()])
    Batch 1: Invalid loss, terminating training
    >>> history.epoch, bool(np.isfinite(history.history["loss"][0]))
    ([0], False)
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class ModelCheckpoint(_Monitor):
    """Save the weights (``.npz``, see ``Model.save_weights``) after every epoch, or only when
    ``monitor`` improved (``save_best_only``).  ``filepath`` may contain ``{epoch}`` and log keys,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.weights.npz"``; a key the logs of the ``fit`` will not
    hold (``val_loss`` without validation data) fails when ``fit`` starts, before the first step.
    Each file is written atomically: a failed write (a full disk) leaves the previous checkpoint."""

    def __init__(
        self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=True, mode="auto"
    ):
        super().__init__(monitor, mode)
        if not str(filepath).endswith(".npz"):
            raise ValueError(
                "npconv checkpoints hold weights in a .npz file: `filepath` must end with '.npz' "
                f"(e.g. 'model.weights.npz'). Received: filepath={str(filepath)!r}"
            )
        self.filepath, self.verbose = str(filepath), verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.best = self._initial_best()

    def on_train_begin(self, logs=None):
        """Check ``filepath``'s fields (and ``monitor`` with ``save_best_only``) against the log keys
        ``fit`` announced in ``params["metrics"]``."""
        keys = self.params.get("metrics")
        if keys is None:  # not run by fit: nothing known yet
            return
        try:
            fields = {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(self.filepath) if f}
            unknown = sorted(fields - {"epoch", *keys})
            if not unknown:
                self.filepath.format(epoch=1, **dict.fromkeys(keys, 0.0))
        except (ValueError, IndexError, KeyError) as error:
            raise ValueError(
                f"ModelCheckpoint's `filepath` is not a valid format string ({error}). "
                f"{received(filepath=self.filepath)}"
            ) from error
        if unknown:
            raise ValueError(
                f"ModelCheckpoint's `filepath` uses {', '.join('{' + f + '}' for f in unknown)}, which this fit's "
                f"logs will not hold: they hold {['epoch', *keys]}. Pass validation data to fit for val_* values. "
                f"{received(filepath=self.filepath)}"
            )
        if self.save_best_only:
            self._current(dict.fromkeys(keys, 0.0))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = Path(self.filepath.format(epoch=epoch + 1, **logs))
        if self.save_best_only:
            current = self._current(logs)
            if not self._improved(current, self.best):
                return
            if self.verbose:
                improvement = f"{self.monitor} improved from {self.best:.5f} to {current:.5f}"
                print(f"Epoch {epoch + 1}: {improvement}, saving model to {path}")
            self.best = current
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(path)


def checked(callbacks) -> list[Callback]:
    """``fit``'s ``callbacks`` argument (None or a list of :class:`Callback`) as a new list.

    >>> checked(History())
    Traceback (most recent call last):
    TypeError: Invalid type for argument `callbacks`: expected a list of npconv.callbacks.Callback \
instances. Received: callbacks=<npconv.callbacks.History object at ...>
    """
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            "Invalid type for argument `callbacks`: expected a list of npconv.callbacks.Callback instances. "
            f"{received(callbacks=callbacks)}"
        )
    for c in callbacks:
        if not isinstance(c, Callback):
            raise TypeError(
                "Invalid callback in argument `callbacks`: expected npconv.callbacks.Callback instances. "
                f"Received: {c!r}"
            )
    return list(callbacks)


def run(callbacks: list[Callback], hook: str, *args) -> None:
    """Call ``hook(*args)`` on every callback."""
    for callback in callbacks:
        getattr(callback, hook)(*args)
