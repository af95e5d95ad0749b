"""``algorithm="measure"``: the opt-in autotune times the eligible algorithms once per spec."""

import dataclasses
import importlib

import numpy as np
import pytest

import npconv as nc

algorithms = importlib.import_module("npconv.algorithms")  # the registry (nc.algorithms is the function)


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    monkeypatch.setattr(algorithms, "_MEASURED", {})


def test_measure_caches_the_fastest_per_spec_and_direction():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 12, 4))
    w = rng.standard_normal((3, 3, 4, 5))
    dy = rng.standard_normal((2, 12, 12, 5))
    params = dict(padding="same")
    expected = nc.conv(x, w, algorithm="direct", **params)
    np.testing.assert_allclose(nc.conv(x, w, algorithm="measure", **params), expected, rtol=1e-10, atol=1e-12)
    assert [direction for _, direction in algorithms._MEASURED] == ["forward"]
    choice = next(iter(algorithms._MEASURED.values()))
    assert choice in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates
    assert nc.explain(x.shape, w.shape, dtype=x.dtype, algorithm="measure", **params).algorithm == choice
    np.testing.assert_allclose(nc.conv(x, w, algorithm="measure", **params), expected, rtol=1e-10, atol=1e-12)
    assert len(algorithms._MEASURED) == 1  # cached: measured once
    np.testing.assert_allclose(
        nc.conv_backprop_input(dy, w, x.shape, algorithm="measure", **params),
        nc.conv_backprop_input(dy, w, x.shape, algorithm="direct", **params),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        nc.conv_backprop_filter(x, dy, w.shape, algorithm="measure", **params),
        nc.conv_backprop_filter(x, dy, w.shape, algorithm="direct", **params),
        rtol=1e-10,
        atol=1e-12,
    )
    assert sorted(direction for _, direction in algorithms._MEASURED) == ["backward_input", "backward_weight", "forward"]


def test_measure_skips_algorithms_estimated_far_slower(monkeypatch):
    ran = []
    original = algorithms.get("direct").forward

    def spy(*args):
        ran.append("direct")
        return original(*args)

    monkeypatch.setitem(algorithms._REGISTRY, "direct", dataclasses.replace(algorithms.get("direct"), forward=spy))
    x = np.ones((4, 64, 64, 32), np.float32)
    w = np.ones((3, 3, 32, 32), np.float32)
    nc.conv(x, w, algorithm="measure")
    assert not ran  # direct is estimated > 20x slower than gemm/winograd here


def test_measure_is_a_valid_algorithm_name_only_where_documented():
    with pytest.raises(ValueError, match="expected 'auto', 'measure' or one of"):
        nc.conv(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 1)), algorithm="measured")
