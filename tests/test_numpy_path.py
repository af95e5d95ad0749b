"""The pure-NumPy path (platforms without Numba): a meaningful part of the suite, run again in a fresh
process with ``NPCONV_DISABLE_NUMBA=1``, where npconv must not import Numba at all."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from npconv import _numba

TESTS = Path(__file__).parent
SUBSET = [
    "test_agreement.py",  # every algorithm against the reference and each other
    "test_gradients.py",  # finite differences and the adjoint identity
    "test_consistency.py",
    "test_errors.py",
    "test_layers_gradients.py",
    "test_training.py",
    "test_image.py",
    "test_seeds.py",
    "test_calibration.py",  # auto's factors fitted and stored for this path
    "test_process_settings.py",
]


@pytest.mark.skipif(not _numba.ENABLED, reason="this process already runs the NumPy path")
def test_subset_passes_without_numba():
    environment = {**os.environ, _numba.DISABLE_VARIABLE: "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *SUBSET],
        cwd=TESTS, env=environment, capture_output=True, text=True, timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]


def test_disabled_numba_is_never_imported():
    script = "import sys, numpy as np, npconv as nc; nc.conv(np.ones((1, 8, 8, 3)), np.ones((3, 3, 3, 16))); print('numba' in sys.modules)"
    environment = {**os.environ, _numba.DISABLE_VARIABLE: "1"}
    run = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False"]


def test_import_does_not_import_numba():
    """Numba loads on the first kernel call (about 0.2 s), not with ``import npconv``."""
    run = subprocess.run([sys.executable, "-c", "import sys, npconv; print('numba' in sys.modules)"], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False"]
