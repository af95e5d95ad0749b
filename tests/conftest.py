"""Shared test helpers."""

import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """Tests neither read nor write the user's cache directory (``auto``'s stored calibration)."""
    config.npconv_cache = os.environ["NPCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="npconv-test-cache-")


def pytest_unconfigure(config):
    shutil.rmtree(config.npconv_cache, ignore_errors=True)


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
