"""Weight initializers with Keras 3's names, defaults and fan rules, and the global random seed.

An initializer is called with a shape and a dtype and returns a new array.  Fans follow Keras: for
a kernel ``(*k, a, b)`` the receptive field is ``prod(k)``, ``fan_in = a * prod(k)`` and
``fan_out = b * prod(k)`` (so a Conv2DTranspose kernel ``(kh, kw, out, in)`` gets Keras' fans too).
An initializer built with ``seed=`` gives the same values on every call; without one it draws from
npconv's global generator, which :func:`set_random_seed` resets — one call makes initial weights,
dropout masks and ``fit``'s shuffling reproducible.

>>> import npconv as nc
>>> nc.set_random_seed(0)
>>> a = nc.initializers.get("glorot_uniform")((3, 3, 1, 32))
>>> nc.set_random_seed(0)
>>> b = nc.initializers.GlorotUniform()((3, 3, 1, 32))
>>> a.dtype, bool((a == b).all()), bool(abs(a).max() <= (6 / (9 + 9 * 32)) ** 0.5)
(dtype('float32'), True, True)
"""

from __future__ import annotations

import math
import re

import numpy as np

_GLOBAL = {"generator": np.random.default_rng()}


def set_random_seed(seed: int) -> None:
    """Seed npconv's global generator (initial weights, dropout, shuffling), like
    ``keras.utils.set_random_seed``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Invalid value for argument `seed`: expected a non-negative int. Received: seed={seed!r}")
    _GLOBAL["generator"] = np.random.default_rng(int(seed))


def global_generator() -> np.random.Generator:
    """The generator used wherever no seed is given."""
    return _GLOBAL["generator"]


def generator(seed) -> np.random.Generator:
    """A generator for an explicit ``seed``, or the global one for ``seed=None``."""
    return global_generator() if seed is None else np.random.default_rng(seed)


def compute_fans(shape) -> tuple[int, int]:
    """Keras' ``(fan_in, fan_out)`` of a weight shape.

    >>> compute_fans((3, 3, 32, 64)), compute_fans((3136, 128)), compute_fans((10,))
    ((288, 576), (3136, 128), (10, 10))
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``initializer(shape, dtype="float32") -> np.ndarray``."""

    def __call__(self, shape, dtype="float32") -> np.ndarray:
        return np.asarray(self.sample(tuple(shape)), dtype=dtype)

    def sample(self, shape: tuple) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def sample(self, shape):
        return np.zeros(shape)


class Ones(Initializer):
    def sample(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def sample(self, shape):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def sample(self, shape):
        return generator(self.seed).normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def sample(self, shape):
        return generator(self.seed).uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng: np.random.Generator, shape, stddev: float, mean: float = 0.0) -> np.ndarray:
    """Normal samples redrawn until within two standard deviations of the mean."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return mean + stddev * z


class TruncatedNormal(RandomNormal):
    def sample(self, shape):
        return _truncated_normal(generator(self.seed), shape, self.stddev, self.mean)


class VarianceScaling(Initializer):
    """Keras ``VarianceScaling``: variance ``scale / n`` with ``n`` the fan_in, fan_out or their mean."""

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if mode not in self.MODES:
            raise ValueError(
                f"Invalid value for argument `mode`: expected one of {self.MODES}. Received: mode={mode!r}"
            )
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(
                f"Invalid value for argument `distribution`: expected one of {self.DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def sample(self, shape):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = generator(self.seed)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        return _truncated_normal(rng, shape, math.sqrt(variance) / 0.87962566103423978)  # std of N(0,1) cut at 2

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling(name: str, scale: float, mode: str, distribution: str, doc: str) -> type:
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _variance_scaling(
    "GlorotUniform", 1.0, "fan_avg", "uniform", "Uniform in +-sqrt(6 / (fan_in + fan_out))."
)
GlorotNormal = _variance_scaling(
    "GlorotNormal", 1.0, "fan_avg", "truncated_normal", "Truncated normal, variance 2 / (fan_in + fan_out)."
)
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform", "Uniform in +-sqrt(6 / fan_in).")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal", "Truncated normal, variance 2 / fan_in.")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform", "Uniform in +-sqrt(3 / fan_in).")
LecunNormal = _variance_scaling(
    "LecunNormal", 1.0, "fan_in", "truncated_normal", "Truncated normal, variance 1 / fan_in."
)

INITIALIZERS = {
    cls.__name__: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
    )
}


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get(identifier) -> Initializer:
    """An initializer from a Keras name (``"glorot_uniform"`` or ``"GlorotUniform"``), a config dict
    ``{"class_name": ..., "config": ...}``, an :class:`Initializer` or any callable ``(shape, dtype)``.
    """
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in INITIALIZERS:
        return INITIALIZERS[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, str):
        for name, cls in INITIALIZERS.items():
            if identifier in (name, _snake_case(name)):
                return cls()
    raise ValueError(
        f"Could not interpret initializer identifier: {identifier!r}. Expected an Initializer, a callable "
        f"or one of {sorted(_snake_case(n) for n in INITIALIZERS)}"
    )


def serialize(initializer) -> dict | str:
    """A config :func:`get` turns back into the same initializer."""
    if isinstance(initializer, Initializer) and type(initializer).__name__ in INITIALIZERS:
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    return getattr(initializer, "__name__", repr(initializer))
