"""Shared test helpers."""

import pytest


def implementation_fixture(module, what: str):
    """A ``path`` fixture running a test once per implementation of ``module``: its NumPy path
    and its Numba path (``module.USE_NUMBA``; skipped without numba)."""

    @pytest.fixture(params=["numpy", "numba"])
    def path(request, monkeypatch):
        if request.param == "numba" and not module.NUMBA_ENABLED:
            pytest.skip("numba is not installed")
        monkeypatch.setattr(module, "USE_NUMBA", request.param == "numba")
        return request.param

    path.__doc__ = f"Force one implementation of {what}."
    return path
