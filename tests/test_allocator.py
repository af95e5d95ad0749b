"""Opt-in glibc malloc tuning for training loops (``npconv.tune_malloc``)."""

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


def test_runs_once_and_respects_the_users_own_tuning(monkeypatch):
    monkeypatch.setattr(_allocator, "_done", False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert _allocator.tune_malloc() is False
    monkeypatch.setattr(_allocator, "_done", False)
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    assert _allocator.tune_malloc() is bool(GLIBC)
    assert _allocator.tune_malloc() is False  # once per process


def test_training_never_tunes_the_allocator_by_itself(monkeypatch):
    import numpy as np

    import npconv as nc

    monkeypatch.setattr(_allocator, "_done", False)
    model = nc.Sequential([nc.layers.Input((6, 6, 1)), nc.layers.Conv2D(2, 3), nc.layers.Flatten(), nc.layers.Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.ones((4, 6, 6, 1), np.float32), np.array([0, 1, 0, 1])
    model.fit(x, y, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert _allocator._done is False  # tune_malloc was not called


def _faults_per_step(script: str, tuning: str) -> float:
    """Page faults per step that ``script`` prints, run in a fresh process, after ``nc.tune_malloc()``
    if ``tuning`` is "1"."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    prologue = "import npconv\nnpconv.tune_malloc()\n" if tuning == "1" else ""
    run = subprocess.run([sys.executable, "-c", prologue + script], env=environment, capture_output=True, text=True, check=True)
    return float(run.stdout.split()[-1])


ALLOCATION_STEPS = textwrap.dedent(
    """
    import resource, numpy as np

    def step():  # activations of several sizes, freed out of order, as a training step does
        a = np.ones(2**20, np.float32)
        b = np.ones(3 * 2**20, np.float32)
        del a
        c = np.ones(2**21, np.float32)
        del b, c

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
    """
)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_tuning_keeps_freed_blocks_for_reuse():
    """4, 12 and 8 MiB arrays freed out of order: glibc's default thresholds hand their memory back
    and fault it in again every step (measured: 1513 faults a step); tuned, none."""
    faults = {tuning: _faults_per_step(ALLOCATION_STEPS, tuning) for tuning in ("0", "1")}
    assert faults["1"] < 10 < 1000 < faults["0"], faults


TRAINING_STEPS = textwrap.dedent(
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
    """Tuned, the steps of a 64x28x28 -> 32 conv net reuse the process's memory (measured: 0-2
    faults a step).  Untuned, how many they fault depends on the order of
    the allocations in and between npconv's threads (1845 a step with one thread pool, 0-240
    with the next), so only the tuned count is checked."""
    assert _faults_per_step(TRAINING_STEPS, "1") < 50
