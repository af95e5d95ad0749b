"""``auto``'s machine factors: fitted by ``calibrate``, stored per CPU, path and thread count in
the cache directory, read back by later processes, ignored when damaged or foreign."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import npconv as nc
from npconv.algorithms import _auto_choice, calibration, candidates, execution_path, raw_costs
from npconv.cli import main

SMALL_PROBES = [probe for probe in calibration.PROBES if probe[0] in ("3x3", "gray_3x3", "depthwise_3x3")]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, and probes small enough for a test."""
    monkeypatch.setenv("NPCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(calibration, "PROBES", SMALL_PROBES)
    calibration.forget()
    yield tmp_path
    calibration.forget()


def current_key() -> str:
    return calibration.machine_key(execution_path(), nc.get_num_threads())


def test_defaults_until_calibrated(cache):
    assert calibration.factors(execution_path(), nc.get_num_threads()) is calibration.DEFAULT_FACTORS[execution_path()]
    assert not (cache / "calibration.json").exists()


def test_calibrate_fits_every_algorithm_and_direction_and_auto_uses_them(cache):
    fitted = nc.calibrate(repeats=1, save=False)
    defaults = calibration.DEFAULT_FACTORS[execution_path()]
    assert set(fitted) == set(calibration.DIRECTIONS)
    for direction, factors in fitted.items():
        assert set(factors) == set(defaults[direction])
        assert all(math.isfinite(factor) and factor > 0 for factor in factors.values())
    assert not (cache / "calibration.json").exists()  # save=False
    spec = nc.explain((2, 16, 16, 8), (3, 3, 8, 8), padding="same").spec
    for direction, factors in fitted.items():
        expected = {name: seconds * factors[name] for name, seconds in raw_costs(spec, direction).items()}
        assert candidates(spec, direction) == pytest.approx(expected)


def test_stored_factors_are_read_by_a_later_process(cache):
    fitted = nc.calibrate(repeats=1)
    stored = json.loads((cache / "calibration.json").read_text())
    assert stored == {current_key(): fitted}
    script = (
        "import json, npconv as nc; from npconv.algorithms import calibration, execution_path; "
        f"nc.set_num_threads({nc.get_num_threads()}); "
        "print(json.dumps(calibration.factors(execution_path(), nc.get_num_threads())))"
    )
    env = {**os.environ, "NPCONV_CACHE_DIR": str(cache)}
    if execution_path() == "numpy":
        env["NPCONV_DISABLE_NUMBA"] = "1"
    output = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == fitted  # floats survive JSON exactly


def test_factors_are_kept_per_path_and_thread_count(cache):
    fitted = nc.calibrate(repeats=1)
    threads = nc.get_num_threads()
    assert calibration.factors(execution_path(), threads) == fitted
    assert calibration.factors(execution_path(), threads + 1) is calibration.DEFAULT_FACTORS[execution_path()]
    other = "numpy" if execution_path() == "numba" else "numba"
    assert calibration.factors(other, threads) is calibration.DEFAULT_FACTORS[other]
    assert f"| {execution_path()} | {threads} threads |" in current_key()


@pytest.mark.parametrize("content", ["{not json", "[]", '{"other machine": {}}', ""])
def test_a_damaged_or_foreign_file_leaves_the_defaults(cache, content):
    (cache / "calibration.json").write_text(content)
    calibration.forget()
    assert calibration.factors(execution_path(), nc.get_num_threads()) is calibration.DEFAULT_FACTORS[execution_path()]


def test_auto_follows_a_new_calibration_without_clearing_its_cache(cache):
    spec = nc.explain((8, 28, 28, 64), (3, 3, 1, 64), padding="same", groups=64).spec
    before = _auto_choice(spec, "forward")
    penalized = {
        direction: {name: (1e6 if name == before else factor) for name, factor in factors.items()}
        for direction, factors in calibration.DEFAULT_FACTORS[execution_path()].items()
    }
    (cache / "calibration.json").write_text(json.dumps({current_key(): penalized}))
    calibration.forget()
    assert _auto_choice(spec, "forward") != before
    (cache / "calibration.json").unlink()
    calibration.forget()
    assert _auto_choice(spec, "forward") == before


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "3"])
def test_bad_repeats_is_refused(cache, repeats):
    with pytest.raises(ValueError, match=f"Received: repeats={repeats!r}"):
        nc.calibrate(repeats=repeats)


def test_command_line_stores_and_prints_the_factors(cache, capsys):
    threads = nc.get_num_threads()
    try:
        assert main(["calibrate", "--repeats", "1", "--threads", "1"]) == 0
    finally:
        nc.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "| 1 threads |" in printed and str(cache / "calibration.json") in printed
    assert "forward" in printed and "backward_weight" in printed


def test_command_line_reports_an_unwritable_cache(cache, capsys, monkeypatch):
    blocker = cache / "file"
    blocker.write_text("")
    monkeypatch.setenv("NPCONV_CACHE_DIR", str(blocker / "below"))  # a directory below a file
    assert main(["calibrate", "--repeats", "1"]) == 2
    assert "npconv calibrate: cannot store the factors" in capsys.readouterr().err


def test_calibrated_estimates_still_give_correct_results(cache):
    nc.calibrate(repeats=1, save=False)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 12, 12, 4)), rng.standard_normal((3, 3, 4, 8))
    np.testing.assert_allclose(nc.conv(x, w, padding="same"), nc.conv(x, w, padding="same", algorithm="direct"), rtol=1e-10, atol=1e-12)
