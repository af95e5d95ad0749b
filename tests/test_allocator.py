"""glibc malloc tuning for training loops (``npconv._allocator``)."""

import os
import subprocess
import sys
import textwrap

import pytest

from npconv import _allocator



def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


GLIBC = _glibc()


def test_runs_once_and_respects_the_opt_out(monkeypatch):
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(_allocator, "_done", False)
    monkeypatch.setenv("NPCONV_MALLOC_TUNING", "0")
    assert _allocator.retain_freed_memory() is False
    monkeypatch.setattr(_allocator, "_done", False)
    monkeypatch.delenv("NPCONV_MALLOC_TUNING")
    assert _allocator.retain_freed_memory() is bool(GLIBC)
    assert _allocator.retain_freed_memory() is False  # once per process


FAULTS_PER_STEP = textwrap.dedent(
    """
    import resource, numpy as np, npconv as nc
    model = nc.Sequential([nc.layers.Input((28, 28, 1)), nc.layers.Conv2D(32, 3, padding="same", activation="relu"),
                           nc.layers.MaxPooling2D(), nc.layers.Flatten(), nc.layers.Dense(10)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((256, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 256)
    model.fit(x, y, batch_size=64, verbose=0)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8)
    """
)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_training_steps_stop_page_faulting():
    """Each step of a 64x28x28 -> 32 conv net re-faults its activations with glibc's defaults;
    tuned, the steady state reuses the process's memory."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {}
    for tuning in ("0", "1"):
        run = subprocess.run(
            [sys.executable, "-c", FAULTS_PER_STEP], env={**environment, "NPCONV_MALLOC_TUNING": tuning},
            capture_output=True, text=True, check=True,
        )
        faults[tuning] = float(run.stdout.split()[-1])
    assert faults["1"] < 50 < faults["0"], faults  # measured: 1.75 vs 2370
