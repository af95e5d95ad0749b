"""Results do not depend on thread settings: every algorithm's forward pass and both gradients are
bitwise identical whether npconv, BLAS and Numba get one thread or two, on the agreement sweep's
configurations plus shapes big enough to take the parallel paths.  ``auto`` is left out: its pick
may differ with the thread count (it estimates the time on those threads), which the README says.

Each setting runs in its own process (BLAS and Numba read theirs at start-up); run as a script,
this file prints one digest per configuration, algorithm and direction."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

SETTINGS = {
    "all on one thread": {"NPCONV_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    "npconv on two": {"NPCONV_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
    "BLAS on two": {"NPCONV_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "1"},
    "all on two": {"NPCONV_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"},
}
# (NHWC input, HWIO kernel, parameters): past the thresholds where work is shared among threads
LARGE = [
    ((8, 32, 32, 32), (3, 3, 32, 32), {"padding": "same"}),
    ((8, 14, 14, 64), (1, 1, 64, 128), {}),
    ((8, 28, 28, 64), (3, 3, 1, 64), {"padding": "same", "groups": 64}),
    ((16, 28, 28, 1), (3, 3, 1, 32), {"padding": "same"}),
    ((4, 28, 28, 32), (3, 3, 32, 64), {"padding": "same", "stride": 2}),
    ((8, 28, 28, 64), (3, 3, 16, 64), {"padding": "same", "groups": 4}),
    ((2, 96, 96, 2), (15, 15, 2, 2), {"padding": "same"}),
]


def _configurations():
    from reference import random_conv_config

    rng = np.random.default_rng(20261207)
    for index in range(40):
        config = random_conv_config(rng, index)
        yield config["id"], config["x"], config["w"], config["params"]
    for index, (x_shape, w_shape, params) in enumerate(LARGE):
        yield f"large #{index}", rng.standard_normal(x_shape, dtype=np.float32), rng.standard_normal(w_shape, dtype=np.float32), params


def digests() -> dict[str, str]:
    """``{"config | algorithm | direction": sha256 of the result}`` in this process's settings."""
    import npconv as nc

    found = {}
    for name, x, w, params in _configurations():
        dy = np.random.default_rng(1).standard_normal(nc.conv(x, w, **params).shape).astype(x.dtype)
        for algorithm in nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates:
            results = {
                "forward": nc.conv(x, w, algorithm=algorithm, **params),
                "input gradient": nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params),
                "filter gradient": nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params),
            }
            for direction, result in results.items():
                found[f"{name} | {algorithm} | {direction}"] = hashlib.sha256(np.ascontiguousarray(result).tobytes()).hexdigest()
    return found


def _digests_under(setting: dict) -> dict[str, str]:
    run = subprocess.run(
        [sys.executable, __file__], env={**os.environ, **setting}, capture_output=True, text=True, timeout=900, check=True,
        cwd=os.path.dirname(__file__),
    )
    return dict(line.rsplit(" = ", 1) for line in run.stdout.splitlines())


@pytest.fixture(scope="module")
def baseline():
    return _digests_under(SETTINGS["all on one thread"])


@pytest.mark.parametrize("setting", [name for name in SETTINGS if name != "all on one thread"])
def test_results_do_not_depend_on_thread_settings(baseline, setting):
    other = _digests_under(SETTINGS[setting])
    assert other.keys() == baseline.keys()
    different = [key for key in baseline if other[key] != baseline[key]]
    assert not different, f"{len(different)} of {len(baseline)} results differ with {setting}, e.g. {different[:5]}"


if __name__ == "__main__":
    for key, digest in digests().items():
        print(f"{key} = {digest}")
