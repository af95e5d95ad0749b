"""Shared test helpers."""

import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """Tests neither read nor write the user's cache directory (``auto``'s stored calibration)."""
    config.npconv_cache = os.environ["NPCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="npconv-test-cache-")
    if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:  # Hypothesis' caches go there too, not into ./.hypothesis
        try:
            from hypothesis.configuration import set_hypothesis_home_dir
        except ImportError:
            pass
        else:
            set_hypothesis_home_dir(os.path.join(config.npconv_cache, "hypothesis"))


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


# Hypothesis profiles for tests/test_properties.py (registered here so that pytest's
# `--hypothesis-profile=NAME` finds them too): "ci" (the default: derandomized, so every run
# draws the same examples) and "long" (20x the examples, freshly random on each run), chosen with
# NPCONV_HYPOTHESIS_PROFILE=long.  No example database: nothing is written to the work tree.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the `test` extra; test_properties.py skips without it
    pass
else:
    _HYPOTHESIS_EXAMPLES = 100  # the unit test_properties.py scales its example counts by
    settings.register_profile(
        "ci",
        derandomize=True,
        deadline=None,
        database=None,
        max_examples=_HYPOTHESIS_EXAMPLES,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    settings.register_profile(
        "long", settings.get_profile("ci"), derandomize=False, max_examples=20 * _HYPOTHESIS_EXAMPLES, print_blob=True
    )
    settings.load_profile(os.environ.get("NPCONV_HYPOTHESIS_PROFILE", "ci"))
