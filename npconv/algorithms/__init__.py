"""The algorithm registry.

An algorithm is one module with ``forward``, ``backward_input`` and ``backward_weight`` for a valid
convolution of an already padded input in the internal layout (see ``_common``), plus
``cost(spec, direction)`` (estimated seconds of one ``direction``: ``"forward"``,
``"backward_input"`` or ``"backward_weight"``) and optionally ``eligible(spec)``,
``workspace_bytes(spec, direction)`` and ``pads_implicitly(spec)``: when that is true (only for zero
padding, ``spec.zero_padding``), :func:`run` passes the *unpadded* input to ``forward`` and ``backward_weight`` and takes
``backward_input``'s result as the gradient of the unpadded input (the algorithm reads zeros
outside the input instead of a padded copy; ``spec.padding`` says where).  Adding an
algorithm is one module and one :func:`register` line; the test-suite loops over the registry, so
a new algorithm is checked on every configuration it is eligible for without new test code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from time import perf_counter
from types import ModuleType, SimpleNamespace

import numpy as np

from .. import _padding
from .._spec import ConvSpec, received
from .._threads import get_num_threads
from . import calibration, depthwise, direct, few_channels, fft, gemm, winograd
from ._common import io_bytes

DIRECTIONS = ("forward", "backward_input", "backward_weight")


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    forward: Callable
    backward_input: Callable
    backward_weight: Callable
    cost: Callable[[ConvSpec, str], float]
    eligible: Callable[[ConvSpec], bool]
    workspace_bytes: Callable[[ConvSpec, str], int]
    pads_implicitly: Callable[[ConvSpec], bool]
    # directions whose result run() checks for NaN/Inf, recomputing it with a local algorithm if
    # any: a transform mixes a whole tile (one NaN input spreads over it) and its intermediate sums
    # can overflow where the exact result does not
    checked_finite: tuple[str, ...]


_REGISTRY: dict[str, Algorithm] = {}


def register(name: str, module: ModuleType | SimpleNamespace) -> None:
    """Register an algorithm module (or namespace of its functions) under ``name`` (its docstring's first line is its summary)."""
    _REGISTRY[name] = Algorithm(
        name=name,
        summary=(module.__doc__ or name).strip().splitlines()[0],
        forward=module.forward,
        backward_input=module.backward_input,
        backward_weight=module.backward_weight,
        cost=module.cost,
        eligible=getattr(module, "eligible", lambda spec: True),
        workspace_bytes=getattr(module, "workspace_bytes", lambda spec, direction="forward": 0),
        pads_implicitly=getattr(module, "pads_implicitly", lambda spec: False),
        checked_finite=tuple(getattr(module, "CHECKED_FINITE", ())),
    )


register("direct", direct)
register("gemm", gemm)
register("winograd", winograd.F4X4)
register("winograd_2x2", winograd.F2X2)
register("fft", fft)
register("depthwise", depthwise)
register("few_channels", few_channels)


def algorithms() -> list[str]:
    """Names accepted by the ``algorithm`` argument (besides ``"auto"``).

    >>> import npconv as nc
    >>> nc.algorithms()
    ['direct', 'gemm', 'winograd', 'winograd_2x2', 'fft', 'depthwise', 'few_channels']
    """
    return list(_REGISTRY)


def get(name: str) -> Algorithm:
    """The registered algorithm ``name`` (its functions, summary and properties)."""
    return _REGISTRY[name]


def execution_path() -> str:
    """``"numba"`` where the algorithms run their Numba kernels, else ``"numpy"`` (Numba missing,
    ``NPCONV_DISABLE_NUMBA=1``, or switched off by a test)."""
    return "numba" if any(getattr(module, "USE_NUMBA", False) for module in (depthwise, winograd, few_channels)) else "numpy"


# auto passes over an algorithm whose workspace exceeds this many times input + output (or the
# floor, for small convolutions) whenever another one fits: e.g. Winograd's transformed kernel
# for 8x256x14x14 -> 256 is 9 MiB against 3 MiB of input + output.
AUTO_WORKSPACE_RATIO = 2
AUTO_WORKSPACE_FLOOR = 4 * 2**20


def over_memory(spec: ConvSpec, direction: str = "forward") -> set[str]:
    """Eligible algorithms whose workspace in ``direction`` is beyond what ``auto`` accepts for ``spec``."""
    if spec.flops == 0:
        return set()
    budget = max(AUTO_WORKSPACE_RATIO * io_bytes(spec), AUTO_WORKSPACE_FLOOR)
    spec = gathered_spec(spec) or spec
    return {name for name, alg in _REGISTRY.items() if alg.eligible(spec) and alg.workspace_bytes(spec, direction) > budget}


def raw_costs(spec: ConvSpec, direction: str = "forward") -> dict[str, float]:
    """The cost models' seconds of every algorithm eligible for ``spec``, before the machine factors."""
    return {name: alg.cost(spec, direction) for name, alg in _REGISTRY.items() if alg.eligible(spec)}


def candidates(spec: ConvSpec, direction: str = "forward") -> dict[str, float]:
    """Estimated seconds of every algorithm eligible for ``spec``, for one ``direction``: the cost
    models times this machine's factors (:mod:`~npconv.algorithms.calibration`) for the current
    execution path and thread count."""
    if spec.flops == 0:  # no multiply-adds: run() returns zeros, whichever algorithm is named
        return {name: 0.0 for name, alg in _REGISTRY.items() if alg.eligible(spec)}
    factors = calibration.factors(execution_path(), get_num_threads())[direction]
    return {name: seconds * factors.get(name, 1.0) for name, seconds in raw_costs(gathered_spec(spec) or spec, direction).items()}


def _auto_choice(spec: ConvSpec, direction: str) -> str:
    """``auto``'s pick: the lowest estimate among the algorithms within the memory budget, for the
    current execution path and thread count."""
    return _cached_choice(spec, direction, execution_path(), get_num_threads(), calibration.generation())


@lru_cache(maxsize=1024)
def _cached_choice(spec: ConvSpec, direction: str, path: str, threads: int, factors_generation: int) -> str:
    """:func:`_auto_choice`, cached per spec, direction, path, thread count and machine factors
    (the estimates depend on all of them): evaluating every cost model takes 0.1-0.2 ms, a third of
    a small convolution (64x28x28x1 -> 32 3x3: 0.75 ms); ``_cached_choice.cache_clear()`` after
    changing a module's constants."""
    costs, heavy = candidates(spec, direction), over_memory(spec, direction)
    light = {name: cost for name, cost in costs.items() if name not in heavy} or costs
    return min(light, key=light.get)


def select(spec: ConvSpec, algorithm, direction: str = "forward") -> Algorithm:
    """The algorithm to run: the named one (checked for eligibility); for "auto", the one with the
    lowest estimated time in ``direction``; for "measure", the one measured fastest for this spec
    (see :func:`run`), or auto's choice before any measurement."""
    if algorithm == "measure":
        measured = _MEASURED.get((spec, direction))
        return _REGISTRY[measured] if measured else select(spec, "auto", direction)
    if algorithm == "auto":
        return _REGISTRY[_auto_choice(spec, direction)]
    spec = gathered_spec(spec) or spec  # what run() computes
    if not isinstance(algorithm, str) or algorithm not in _REGISTRY:
        raise ValueError(
            f"Invalid value for argument `algorithm`: expected 'auto', 'measure' or one of {algorithms()}. "
            f"{received(algorithm=algorithm)}"
        )
    chosen = _REGISTRY[algorithm]
    if not chosen.eligible(spec):
        raise ValueError(
            f"Algorithm {algorithm!r} cannot run this convolution ({chosen.summary}). "
            f"{received(algorithm=algorithm)}"
        )
    return chosen


# (spec, direction) -> name of the algorithm measured fastest; filled by run(..., "measure", ...)
_MEASURED: dict[tuple[ConvSpec, str], str] = {}
_measure_lock = threading.Lock()  # one thread measures a new spec; the others wait for its choice
MEASURE_MAX_ESTIMATE_RATIO = 20.0  # "measure" skips algorithms estimated this much slower than the best


def _call(chosen: Algorithm, direction: str, spec: ConvSpec, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``direction`` of ``chosen`` on channels-last, unpadded arrays (see :func:`run`); for the
    directions ``chosen.checked_finite``, a result holding NaN/Inf is computed again by the fastest
    local algorithm (one sum over the result detects it; an overflowing sum only costs the
    recomputation)."""
    if direction not in chosen.checked_finite:
        return _call_unchecked(chosen, direction, spec, first, second)
    with np.errstate(all="ignore"):  # what overflows or turns NaN here is not the answer
        result = _call_unchecked(chosen, direction, spec, first, second)
        if np.isfinite(np.add.reduce(result, axis=None)):
            return result
    local = {name: cost for name, cost in candidates(spec, direction).items() if direction not in _REGISTRY[name].checked_finite}
    return _call_unchecked(_REGISTRY[min(local, key=local.get)], direction, spec, first, second)


def _call_unchecked(chosen: Algorithm, direction: str, spec: ConvSpec, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``direction`` of ``chosen`` as it computes it: pads the input (un-pads the input gradient)
    here, unless the algorithm reads zero padding implicitly."""
    implicit = chosen.pads_implicitly(spec)
    if direction == "backward_input":
        dx = chosen.backward_input(first, second, spec)
        return dx if implicit else _padding.pad_adjoint(dx, spec.padding, spec.padding_mode)
    if implicit:
        first = np.ascontiguousarray(first, spec.dtype)
    else:
        first = _padding.pad(first, spec.padding, spec.padding_mode, spec.pad_value, spec.dtype)
    return getattr(chosen, direction)(first, second, spec)


def gathered_spec(spec: ConvSpec) -> ConvSpec | None:
    """Where a stride exceeds the kernel's extent ``e = dilation * (k - 1) + 1`` along an axis, the
    windows skip input between them: the same convolution on the padded input's windows alone,
    gathered side by side (``out * e`` values along that axis, stride ``e``, no padding), is what
    :func:`run` computes instead, in time and memory that do not grow with the stride.  ``None``
    where no stride exceeds its extent (or the output is empty)."""
    extents = [d * (k - 1) + 1 for k, d in zip(spec.kernel_spatial, spec.dilation)]
    if all(s <= e for s, e in zip(spec.stride, extents)) or 0 in spec.out_spatial:
        return None
    return replace(
        spec,
        in_spatial=tuple(o * e if s > e else n for o, e, s, n in zip(spec.out_spatial, extents, spec.stride, spec.padded_spatial)),
        stride=tuple(min(s, e) for s, e in zip(spec.stride, extents)),
        padding=((0, 0),) * spec.rank,
        padding_mode="zeros",
        pad_value=0.0,
    )


def _window_indices(spec: ConvSpec, gathered: ConvSpec) -> tuple[np.ndarray, ...]:
    """Open-mesh indices (``np.ix_``) into the padded input of the gathered windows' values."""
    spatial = []
    for out, n, s, e in zip(spec.out_spatial, spec.padded_spatial, spec.stride, gathered.stride):
        starts = np.fromiter(range(0, out * s, s), np.int64, out)  # < n: fits, even where s does not
        spatial.append((starts[:, None] + np.arange(e)).ravel() if s > e else np.arange(n))
    return np.ix_(np.arange(spec.batch), *spatial, np.arange(spec.in_channels))


def _run_gathered(spec: ConvSpec, gathered: ConvSpec, algorithm, direction: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """:func:`run` on the windows alone (see :func:`gathered_spec`); the windows do not overlap
    (stride > extent), so the input gradient is scattered back by assignment."""
    indices = _window_indices(spec, gathered)
    if direction == "backward_input":
        dx = np.zeros((spec.batch, *spec.padded_spatial, spec.in_channels), spec.dtype)
        dx[indices] = run(gathered, algorithm, direction, first, second)
        return _padding.pad_adjoint(dx, spec.padding, spec.padding_mode)
    windows = _padding.pad(first, spec.padding, spec.padding_mode, spec.pad_value, spec.dtype)[indices]
    return run(gathered, algorithm, direction, windows, second)


def run(spec: ConvSpec, algorithm, direction: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``direction`` of the selected algorithm: ``forward(x, w)``, ``backward_input(dy, w)`` (the
    gradient of the unpadded input) or ``backward_weight(x, dy)``, with ``x`` and ``dy``
    channels-last and unpadded (any memory order; padded or cast here) and ``w`` the internal kernel.

    A stride beyond the kernel's extent runs on the gathered windows (:func:`gathered_spec`).
    ``algorithm="measure"`` is an opt-in autotune: the first call with a given spec and direction
    runs every eligible algorithm (except those estimated over ``MEASURE_MAX_ESTIMATE_RATIO`` times
    slower than the best) twice on these arguments, keeps the fastest second run, and returns its
    result; later calls in this process use the cached choice.  Threads calling it at once on a
    new spec wait for the first one's measurement, so all of them run the same algorithm.  Choices
    can differ between processes (timings vary), so results may differ in the last bits between
    processes.
    """
    if spec.flops == 0:  # no multiply-adds (no input channels, or nothing to compute): zeros
        select(spec, algorithm, direction)  # a named algorithm must still be eligible
        return np.zeros(_result_shape(spec, direction), spec.dtype)
    gathered = gathered_spec(spec)
    if gathered is not None:
        return _run_gathered(spec, gathered, algorithm, direction, first, second)
    if algorithm == "measure":
        with _measure_lock:
            if (spec, direction) not in _MEASURED:
                return _measure(spec, direction, first, second)
    return _call(select(spec, algorithm, direction), direction, spec, first, second)



def _result_shape(spec: ConvSpec, direction: str) -> tuple[int, ...]:
    """Internal shape of ``direction``'s result: ``y``, ``dx`` (unpadded) or ``dw``."""
    if direction == "forward":
        return (spec.batch, *spec.out_spatial, spec.out_channels)
    if direction == "backward_input":
        return (spec.batch, *spec.in_spatial, spec.in_channels)
    return (spec.groups, *spec.kernel_spatial, spec.in_per_group, spec.out_per_group)


def _measure(spec: ConvSpec, direction: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The result of the algorithm measured fastest on these arguments, remembered in ``_MEASURED``."""
    costs = candidates(spec, direction)
    best_estimate = min(costs.values())
    timings, results = {}, {}
    for name, estimate in costs.items():
        if estimate > MEASURE_MAX_ESTIMATE_RATIO * best_estimate:
            continue
        _call(_REGISTRY[name], direction, spec, first, second)  # warm-up: caches, compilation
        start = perf_counter()
        results[name] = _call(_REGISTRY[name], direction, spec, first, second)
        timings[name] = perf_counter() - start
    fastest = min(timings, key=timings.get)
    _MEASURED[(spec, direction)] = fastest
    return results[fastest]
