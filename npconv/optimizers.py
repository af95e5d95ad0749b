"""Optimizers with Keras 3's names, defaults and update rules, updating weights in place.

``optimizer.apply(grads, variables)`` (or ``apply_gradients(zip(grads, variables))``) takes one
step; slot arrays (momenta, second moments) are created on the first step, one per variable.
Every optimizer accepts ``clipnorm`` (per gradient), ``global_clipnorm`` and ``clipvalue``.

Update rules (``g`` gradient, ``t`` step number from 1, all in the weight's dtype):

- ``SGD``: ``m = momentum * m - lr * g``; ``w += m`` (Nesterov: ``w += momentum * m - lr * g``).
- ``Adam``: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
  ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.
- ``AdamW``: ``w -= lr * weight_decay * w``, then Adam.
- ``RMSprop``: ``v = rho v + (1 - rho) g^2`` (centred: minus the squared mean gradient);
  ``step = lr * g / sqrt(v + eps)``, with momentum ``m = momentum * m + step``.

>>> import numpy as np
>>> from npconv import optimizers
>>> from npconv.layers import Variable
>>> w = Variable(np.array([1.0, 2.0]), "w")
>>> optimizers.get("sgd").apply([np.array([1.0, -1.0])], [w])
>>> w.data
array([0.99, 2.01])
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import ENABLED as NUMBA_ENABLED
from ._numba import jit
from ._threads import run_split

USE_NUMBA = NUMBA_ENABLED  # tests switch this off to check the NumPy path
ADAM_PIECE = 2**14  # elements per share of the fused Adam kernel


class Optimizer:
    """Base class: learning rate, gradient clipping, per-variable slots, the step counter."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool) or learning_rate < 0:
            raise ValueError(
                f"Invalid value for argument `learning_rate`: expected a non-negative float. "
                f"Received: learning_rate={learning_rate!r}"
            )
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set.")
        self.learning_rate = float(learning_rate)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._slots: dict[int, dict[str, np.ndarray]] = {}

    @property
    def built(self) -> bool:
        return bool(self._slots)

    @property
    def variables(self) -> list[np.ndarray]:
        """Keras' optimizer variables: the step counter, the learning rate and every slot array."""
        slots = [array for per_variable in self._slots.values() for array in per_variable.values()]
        return [np.array(self.iterations, dtype=np.int64), np.array(self.learning_rate, dtype=np.float32), *slots]

    def apply_gradients(self, grads_and_vars) -> None:
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)

    def apply(self, grads, variables) -> None:
        """One optimisation step: ``variables[i].data`` updated in place from ``grads[i]`` (None: skipped)."""
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = self._clip([np.asarray(g, dtype=v.dtype) for g, v in pairs])
        self.iterations += 1
        for g, (_, variable) in zip(grads, pairs):
            slots = self._slots.get(id(variable))
            if slots is None:
                slots = self._slots[id(variable)] = {name: np.zeros_like(variable.data) for name in self.slot_names}
            self.update(variable.data, g, slots)

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            return [g * min(1.0, self.clipnorm / max(float(np.linalg.norm(g)), 1e-12)) for g in grads]
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            return [g * min(1.0, self.global_clipnorm / max(norm, 1e-12)) for g in grads]
        return grads

    def update(self, w: np.ndarray, g: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(
                f"Invalid value for argument `momentum`: expected a float in [0, 1]. Received: momentum={momentum!r}"
            )
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def update(self, w, g, slots):
        lr = w.dtype.type(self.learning_rate)
        if not self.momentum:
            w -= lr * g
            return
        m = slots["momentum"]
        m *= self.momentum
        m -= lr * g
        if self.nesterov:
            w += self.momentum * m - lr * g
        else:
            w += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with Keras' ``epsilon=1e-7`` outside the square root."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = (
            float(beta_1),
            float(beta_2),
            float(epsilon),
            bool(amsgrad),
        )
        self.slot_names = ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def update(self, w, g, slots):
        t = self.iterations
        step = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m, v = slots["m"], slots["v"]
        arrays = (w, g, m, v, slots["v_hat"] if self.amsgrad else v)
        if USE_NUMBA and w.dtype in (np.float32, np.float64) and all(a.flags.c_contiguous and a.dtype == w.dtype for a in arrays):
            # One pass instead of ten over the arrays (401408 float32: 0.47 -> 0.12 ms), with the
            # operations below in the same order and dtype: the same bits.  Memory-bound: shared
            # among the npconv threads only beyond millions of elements (a "flop" per element).
            constants = map(w.dtype.type, (self.beta_1, 1 - self.beta_1, self.beta_2, 1 - self.beta_2, self.epsilon, step))
            flat = [a.reshape(-1) for a in arrays]
            run_split(_adam_kernel, w.size, -(-w.size // ADAM_PIECE), *flat, self.amsgrad, *constants)
            return
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        scratch = g * g
        scratch *= 1 - self.beta_2
        v *= self.beta_2
        v += scratch
        if self.amsgrad:
            np.maximum(slots["v_hat"], v, out=slots["v_hat"])
            v = slots["v_hat"]
        np.sqrt(v, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= step
        w -= scratch

    def get_config(self):
        config = {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}
        return {**super().get_config(), **config}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), Keras' default ``weight_decay=0.004``."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.weight_decay = float(weight_decay)

    def update(self, w, g, slots):
        w -= w * w.dtype.type(self.learning_rate * self.weight_decay)
        super().update(w, g, slots)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """RMSprop with Keras' defaults (``rho=0.9``, ``epsilon=1e-7`` inside the square root)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = (
            float(rho),
            float(momentum),
            float(epsilon),
            bool(centered),
        )
        self.slot_names = (
            ("velocity",) + (("momentum",) if self.momentum else ()) + (("average_gradient",) if self.centered else ())
        )

    def update(self, w, g, slots):
        velocity = slots["velocity"]
        velocity *= self.rho
        velocity += (1 - self.rho) * g * g
        denominator = velocity + self.epsilon
        if self.centered:
            average = slots["average_gradient"]
            average *= self.rho
            average += (1 - self.rho) * g
            denominator -= average * average
        increment = w.dtype.type(self.learning_rate) * g / np.sqrt(denominator)
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += increment
            increment = m
        w -= increment

    def get_config(self):
        config = {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}
        return {**super().get_config(), **config}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in OPTIMIZERS.values()}


def get(identifier) -> Optimizer:
    """An optimizer from a Keras name (``"adam"``, ``"sgd"``, ``"adamw"``, ``"rmsprop"``, any case),
    a config dict or an instance.

    >>> get("Adam").learning_rate
    0.001
    >>> get("adagrad")
    Traceback (most recent call last):
    ...
    ValueError: Could not interpret optimizer identifier: 'adagrad'. Expected an Optimizer or one of ['adam', ...]
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in OPTIMIZER_CLASSES:
        return OPTIMIZER_CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. "
        f"Expected an Optimizer or one of {sorted(OPTIMIZERS)}"
    )


# error_model="numpy": IEEE division and square root, without Python's zero-division check,
# which kept the loop from vectorizing (8x slower)
@jit(nogil=True, cache=True, error_model="numpy")
def _adam_kernel(start, stop, w, g, m, v, v_hat, amsgrad, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon, step):
    """:meth:`Adam.update` on the elements of pieces ``start:stop`` (``ADAM_PIECE`` each) of
    the flat arrays, all in their dtype; ``np.maximum``'s NaN propagation for AMSGrad."""
    # Loops over slices, from 0: Numba then knows the indices are not negative (no wraparound
    # test), and the loops vectorize
    span = slice(start * ADAM_PIECE, stop * ADAM_PIECE)
    w, g, m, v, v_hat = w[span], g[span], m[span], v[span], v_hat[span]
    for i in range(w.size):
        gradient = g[i]
        moment = m[i] * beta_1 + one_minus_beta_1 * gradient
        second = v[i] * beta_2 + gradient * gradient * one_minus_beta_2
        m[i], v[i] = moment, second
        if amsgrad:
            peak = v_hat[i]
            second = second if second > peak or second != second else peak
            v_hat[i] = second
        w[i] -= moment / (np.sqrt(second) + epsilon) * step
