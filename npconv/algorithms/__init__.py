"""The algorithm registry.

An algorithm is one module with ``forward``, ``backward_input`` and ``backward_weight`` for a valid
convolution of an already padded input in the internal layout (see ``_common``), plus ``cost(spec)``
(estimated seconds) and optionally ``eligible(spec)`` and ``workspace_bytes(spec)``.  Adding an
algorithm is one module and one :func:`register` line; the test-suite loops over the registry, so
a new algorithm is checked on every configuration it is eligible for without new test code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from .._spec import ConvSpec, received
from . import direct, gemm


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    forward: Callable
    backward_input: Callable
    backward_weight: Callable
    cost: Callable[[ConvSpec], float]
    eligible: Callable[[ConvSpec], bool]
    workspace_bytes: Callable[[ConvSpec], int]


_REGISTRY: dict[str, Algorithm] = {}


def register(name: str, module: ModuleType) -> None:
    """Register an algorithm module under ``name`` (its docstring's first line is its summary)."""
    _REGISTRY[name] = Algorithm(
        name=name,
        summary=(module.__doc__ or name).strip().splitlines()[0],
        forward=module.forward,
        backward_input=module.backward_input,
        backward_weight=module.backward_weight,
        cost=module.cost,
        eligible=getattr(module, "eligible", lambda spec: True),
        workspace_bytes=getattr(module, "workspace_bytes", lambda spec: 0),
    )


register("direct", direct)
register("gemm", gemm)


def algorithms() -> list[str]:
    """Names accepted by the ``algorithm`` argument (besides ``"auto"``).

    >>> import npconv as nc
    >>> nc.algorithms()
    ['direct', 'gemm']
    """
    return list(_REGISTRY)


def candidates(spec: ConvSpec) -> dict[str, float]:
    """Estimated seconds of every algorithm eligible for ``spec``."""
    return {name: alg.cost(spec) for name, alg in _REGISTRY.items() if alg.eligible(spec)}


def select(spec: ConvSpec, algorithm) -> Algorithm:
    """The algorithm to run: the named one (checked for eligibility) or, for "auto", the cheapest."""
    if algorithm == "auto":
        costs = candidates(spec)
        return _REGISTRY[min(costs, key=costs.get)]
    if not isinstance(algorithm, str) or algorithm not in _REGISTRY:
        raise ValueError(
            f"Invalid value for argument `algorithm`: expected 'auto' or one of {algorithms()}. "
            f"{received(algorithm=algorithm)}"
        )
    chosen = _REGISTRY[algorithm]
    if not chosen.eligible(spec):
        raise ValueError(
            f"Algorithm {algorithm!r} cannot run this convolution ({chosen.summary}). "
            f"{received(algorithm=algorithm)}"
        )
    return chosen
