"""What ``fit``/``evaluate``/``predict`` share: argument and data checks, batching, the progress line."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .._spec import received


def positive_int(value, name: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`: expected a positive int. {received(**{name: value})}")
    return int(value)


def check_verbose(verbose) -> None:
    """Keras' ``verbose``: ``"auto"``, 0 (silent), 1 (progress bar) or 2 (one line per epoch)."""
    if isinstance(verbose, str):
        valid = verbose == "auto"
    else:
        valid = isinstance(verbose, (int, np.integer)) and 0 <= verbose <= 2
    if not valid:
        raise ValueError(
            f"Invalid value for argument `verbose`: expected 'auto', 0, 1 or 2. {received(verbose=verbose)}"
        )


def check_fit_arguments(initial_epoch, epochs: int, validation_split, validation_data) -> None:
    if not isinstance(initial_epoch, (int, np.integer)) or not 0 <= initial_epoch < epochs:
        raise ValueError(
            "Invalid value for argument `initial_epoch`: expected 0 <= initial_epoch < epochs. "
            f"{received(initial_epoch=initial_epoch)}"
        )
    if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
        raise ValueError(
            "Invalid value for argument `validation_split`: expected a float in [0, 1). "
            f"{received(validation_split=validation_split)}"
        )
    if validation_data is not None:
        if validation_split:
            raise ValueError("Pass either `validation_data` or `validation_split`, not both.")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("Invalid value for argument `validation_data`: expected a tuple (x_val, y_val).")


def split_point(count: int, validation_split: float) -> int:
    """Keras' split: the last ``validation_split`` of the samples (before shuffling) validate."""
    cut = int(count * (1 - validation_split))
    if cut in (0, count):
        raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples of {count}")
    return cut


def as_arrays(x, input_shapes: list[tuple], what: str = "x") -> list[np.ndarray]:
    """``x`` (one array, or a list with one array per model input) checked against the model's input
    shapes (batch excluded)."""
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(arrays) != len(input_shapes):
        raise ValueError(f"The model has {len(input_shapes)} input(s), but {what} holds {len(arrays)} array(s).")
    checked = []
    for i, (array, shape) in enumerate(zip(arrays, input_shapes)):
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Invalid {what}: expected numbers. Received: {what} of dtype {array.dtype}")
        if array.ndim != len(shape) or any(m is not None and m != n for m, n in zip(shape[1:], array.shape[1:])):
            raise ValueError(
                f"Input {i} of the model is incompatible: expected shape={tuple(shape)}, found shape={array.shape}. "
                f"Check {what}: a missing channel axis needs x[..., None]."
            )
        checked.append(array)
    return checked


def check_cardinality(named: dict[str, list[np.ndarray]]) -> int:
    """The common number of samples of every array, else Keras' 'Data cardinality is ambiguous' error."""
    sizes = {name: [len(a) for a in arrays] for name, arrays in named.items() if arrays}
    distinct = {n for values in sizes.values() for n in values}
    if len(distinct) != 1:
        detail = " ".join(f"'{name}' sizes: {', '.join(map(str, values))}" for name, values in sizes.items())
        raise ValueError(
            f"Data cardinality is ambiguous. Make sure all arrays contain the same number of samples. {detail}"
        )
    count = distinct.pop()
    if count == 0:
        raise ValueError("Expected at least one sample. Received: arrays with 0 samples")
    return count


def batches(count: int, batch_size: int, order: np.ndarray | None = None):
    """Index arrays (or slices when not shuffled) of consecutive batches."""
    for start in range(0, count, batch_size):
        yield slice(start, start + batch_size) if order is None else order[start : start + batch_size]


def format_logs(logs: dict) -> str:
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())


def non_finite_note(logs: dict) -> str:
    """What the epoch line adds when the loss is NaN or infinite (an empty string otherwise).

    >>> non_finite_note({"loss": float("nan"), "val_loss": 0.5}), non_finite_note({"loss": 0.5})
    (' - loss is NaN: see callbacks.TerminateOnNaN', '')
    """
    bad = [
        f"{key} is {'NaN' if math.isnan(value) else value}"
        for key, value in logs.items()
        if key in ("loss", "val_loss") and not math.isfinite(value)
    ]
    return f" - {', '.join(bad)}: see callbacks.TerminateOnNaN" if bad else ""


class Progress:
    """Keras-style progress: ``Epoch 1/5`` and ``469/469 ━━━━━━━━━━━━━━━━━━━━ 3s 6ms/step - loss: ...``.

    ``verbose=1`` redraws the bar in place on a terminal (the final line only otherwise);
    ``verbose=2`` prints one line per epoch (``469/469 - 3s - 6ms/step - ...``); 0 is silent.
    """

    WIDTH = 20

    def __init__(self, verbose, steps: int, stream=None):
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.steps = steps
        self.stream = stream or sys.stdout
        self.interactive = self.verbose == 1 and getattr(self.stream, "isatty", lambda: False)()

    def epoch_begin(self, epoch: int, epochs: int) -> None:
        if self.verbose:
            self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")
        self.start = self.last_draw = time.perf_counter()
        self.done = 0

    def step(self, done: int, logs: dict) -> None:
        self.done = done
        now = time.perf_counter()
        if self.interactive and (now - self.last_draw > 0.1 or done == self.steps):
            self.stream.write("\r" + self._line(done, logs, now))
            self.stream.flush()
            self.last_draw = now

    def epoch_end(self, logs: dict) -> None:
        if not self.verbose:
            return
        line = self._line(self.done, logs, time.perf_counter()) + non_finite_note(logs)
        self.stream.write(("\r" if self.interactive else "") + line + "\n")
        self.stream.flush()

    def _line(self, done: int, logs: dict, now: float) -> str:
        elapsed = now - self.start
        per_step = elapsed / max(done, 1)
        per_step_text = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
        tail = f" - {format_logs(logs)}" if logs else ""
        if self.verbose == 2:
            return f"{done}/{self.steps} - {elapsed:.0f}s - {per_step_text}{tail}"
        filled = math.floor(self.WIDTH * done / self.steps)
        bar = "━" * filled + " " * (self.WIDTH - filled)
        return f"{done}/{self.steps} {bar} {elapsed:.0f}s {per_step_text}{tail}"
