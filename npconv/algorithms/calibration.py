"""``auto``'s machine factors: how fast BLAS, FFTs, copies and Numba loops are on this machine.

Each algorithm's ``cost(spec, direction)`` estimates seconds from the FLOPs, bytes and transforms
of one convolution, with constants measured on one CPU.  ``auto`` multiplies each estimate by a
per-algorithm, per-direction factor and picks the lowest.  The balance between algorithms moves
between CPUs and with the thread count (measured: on an AVX-512 Zen 5 ``few_channels`` ran a
4x32x32x32 3x3 convolution in 0.66x Winograd's time, on an AVX2 Zen 3 in 1.33x), so the factors
are kept per machine, execution path (``"numba"`` or ``"numpy"``) and thread count:

- :data:`DEFAULT_FACTORS`, per execution path, apply until this machine is calibrated;
- :func:`calibrate` (``npconv calibrate`` on the command line) times every eligible algorithm on
  :data:`PROBES`, fits the factors, uses them from then on and stores them in the user's cache
  directory (:func:`cache_directory`), where every later process on this machine finds them.

A fitted factor is the default one times the median, over the probes, of measured / estimated
seconds; an algorithm no probe could time (``direct``, too slow to matter) gets the median of the
others' corrections, so the factors keep the defaults' scale.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from .._files import atomic_write

DIRECTIONS = ("forward", "backward_input", "backward_weight")

# Measured / estimated seconds of each algorithm: the median over the shapes of
# ``benchmarks/calibrate.py`` on an AMD Zen 5 (family 26), 2 threads.  The NumPy path's forward
# factors of fft and depthwise are its own (dw3x3: depthwise measured 0.69x, fft 0.88x of the
# Numba path's factors); its other factors are the Numba path's.  ``direct`` shares gemm's
# factor, as do the gradients of ``few_channels`` (they are gemm's).
DEFAULT_FACTORS = {
    "numba": {
        "forward": {"direct": 0.95, "gemm": 0.95, "winograd": 1.05, "winograd_2x2": 1.15, "fft": 1.6, "depthwise": 1.55, "few_channels": 1.0},
        "backward_input": {"direct": 0.75, "gemm": 0.75, "winograd": 1.05, "winograd_2x2": 1.2, "fft": 1.6, "depthwise": 1.55, "few_channels": 0.75},
        "backward_weight": {"direct": 1.15, "gemm": 1.15, "winograd": 0.98, "winograd_2x2": 1.1, "fft": 2.05, "depthwise": 2.05, "few_channels": 1.15},
    },
    "numpy": {
        "forward": {"direct": 0.95, "gemm": 0.95, "winograd": 1.05, "winograd_2x2": 1.15, "fft": 1.4, "depthwise": 1.05},
        "backward_input": {"direct": 0.75, "gemm": 0.75, "winograd": 1.05, "winograd_2x2": 1.2, "fft": 1.6, "depthwise": 1.55},
        "backward_weight": {"direct": 1.15, "gemm": 1.15, "winograd": 0.98, "winograd_2x2": 1.1, "fft": 2.05, "depthwise": 2.05},
    },
}

# (name, NHWC input shape, HWIO kernel shape, conv parameters): small convolutions (0.1-5 ms) that
# between them give every algorithm several eligible shapes of the kinds it wins on.
PROBES = [
    ("3x3", (2, 24, 24, 48), (3, 3, 48, 48), {"padding": "same"}),
    ("3x3_deep", (2, 12, 12, 128), (3, 3, 128, 128), {"padding": "same"}),
    ("3x3_batch", (16, 14, 14, 32), (3, 3, 32, 32), {"padding": "same"}),
    ("1x1", (4, 16, 16, 64), (1, 1, 64, 96), {}),
    ("3x3_stride2", (2, 32, 32, 32), (3, 3, 32, 64), {"padding": "same", "stride": 2}),
    ("rgb_5x5", (2, 48, 48, 3), (5, 5, 3, 16), {"padding": "same"}),
    ("gray_3x3", (8, 28, 28, 1), (3, 3, 1, 32), {"padding": "same"}),
    ("depthwise_3x3", (2, 32, 32, 96), (3, 3, 1, 96), {"padding": "same", "groups": 96}),
    ("depthwise_7x7", (2, 24, 24, 32), (7, 7, 1, 32), {"padding": "same", "groups": 32}),
    ("grouped_3x3", (2, 24, 24, 64), (3, 3, 16, 64), {"padding": "same", "groups": 4}),
    ("gray_15x15", (1, 128, 128, 1), (15, 15, 1, 1), {"padding": "same"}),
    ("planes_11x11", (1, 64, 64, 4), (11, 11, 4, 4), {"padding": "same"}),
]
UNTIMED = ("direct",)  # its loops take 10-100x the others' time on every probe
SKIP_ESTIMATED_SLOWER = 20.0  # a probe does not time algorithms estimated this much slower than its best
# An algorithm's factor is fitted on the probes where it measured within this ratio of the fastest
# (where auto's pick depends on it); on all its probes if it never did.
CONTENDER_RATIO = 2.0

_lock = threading.Lock()
_stored: dict | None = None  # the cache file's contents, read on first use
_generation = 0


def cache_directory() -> Path:
    """Where npconv keeps what it learns about this machine: ``$NPCONV_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/npconv``, else ``~/.cache/npconv``."""
    if os.environ.get("NPCONV_CACHE_DIR"):
        return Path(os.environ["NPCONV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "npconv"


def _cache_file() -> Path:
    return cache_directory() / "calibration.json"


def _cpu_identity() -> str:
    """Model name, family/model and widest vector extension (a virtual machine may name every
    generation of a vendor's CPUs alike)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor's block describes them all
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return f"{platform.machine()} {platform.processor()}".strip()
    flags = fields.get("flags", "").split()
    vector = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else ""
    return f"{fields.get('model name', platform.processor())} family {fields.get('cpu family', '?')} model {fields.get('model', '?')} {vector}".strip()


def machine_key(path: str, threads: int) -> str:
    """The key of one calibration: CPU, execution path, thread count and the versions whose cost
    models or kernels it measured."""
    from .. import __version__

    return f"{_cpu_identity()} | {path} | {threads} threads | npconv {__version__} | numpy {np.__version__}"


def _load() -> dict:
    global _stored
    with _lock:
        if _stored is None:
            try:
                _stored = json.loads(_cache_file().read_text(encoding="utf-8"))
            except (OSError, ValueError):  # no file yet, unreadable or damaged: the defaults apply
                _stored = {}
            if not isinstance(_stored, dict):
                _stored = {}
        return _stored


def factors(path: str, threads: int) -> dict[str, dict[str, float]]:
    """Per direction, per algorithm factors for ``path`` and ``threads``: this machine's
    calibration where one is stored, else :data:`DEFAULT_FACTORS`."""
    return _load().get(machine_key(path, threads)) or DEFAULT_FACTORS[path]


def generation() -> int:
    """A number that changes whenever the factors in use change (part of ``auto``'s cache key)."""
    return _generation


def forget() -> None:
    """Drop what was read from the cache directory (the next lookup reads it again): after
    changing ``NPCONV_CACHE_DIR``, or the file."""
    global _stored, _generation
    with _lock:
        _stored, _generation = None, _generation + 1


def _store(key: str, fitted: dict, save: bool) -> None:
    global _generation
    stored = _load()
    with _lock:
        stored[key] = fitted
        _generation += 1
        if not save:
            return
        cache_directory().mkdir(parents=True, exist_ok=True)
        text = json.dumps(stored, indent=1, sort_keys=True)
        atomic_write(_cache_file(), lambda temporary: temporary.write_text(text, encoding="utf-8"))


def fastest_times(runs: dict, repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` seconds of each callable, interleaved (after one untimed call each:
    compilation, caches)."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def calibrate(repeats: int = 5, save: bool = True) -> dict[str, dict[str, float]]:
    """Fit ``auto``'s per-algorithm factors to this machine, execution path and thread count.

    Times every eligible algorithm (but ``direct``, and those estimated over 20x slower than the
    best) on each of :data:`PROBES` in every direction, float32, on npconv's current thread count
    (:func:`npconv.set_num_threads`).  Takes a few seconds, plus the first compilation of the Numba
    kernels where that has not happened on this machine yet.

    Parameters
    ----------
    repeats : int, default 5
        Timed runs per algorithm and probe; the fastest counts (the others met other processes).
    save : bool, default True
        Store the factors in :func:`cache_directory` (``calibration.json``), for later processes.
        They are used by this process either way.

    Returns
    -------
    dict
        ``{direction: {algorithm: factor}}``, the factors now in use.

    Raises
    ------
    ValueError
        If ``repeats`` is not a positive integer.

    Notes
    -----
    For algorithm ``a`` in direction ``d``: ``factor = default * median_p(measured_p / estimated_p)``
    over the probes ``p`` that timed it, where ``estimated`` uses the default factor; an algorithm
    no probe timed is corrected by the median of the others' corrections.  The factors are kept
    under a key of CPU, path, thread count and npconv/NumPy versions (:func:`machine_key`).

    Examples
    --------
    >>> import npconv as nc
    >>> fitted = nc.calibrate(repeats=1, save=False)  # doctest: +SKIP
    >>> sorted(fitted)  # doctest: +SKIP
    ['backward_input', 'backward_weight', 'forward']
    """
    from .._threads import get_num_threads
    from . import execution_path, raw_costs  # the registry imports this module: import at call time

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be a positive integer. Received: repeats={repeats!r}")
    path, threads = execution_path(), get_num_threads()
    defaults = DEFAULT_FACTORS[path]
    fitted = {}
    for direction in DIRECTIONS:
        corrections: dict[str, list[float]] = {}  # log(measured / estimated) where in contention
        others: dict[str, list[float]] = {}  # ... where far behind the probe's fastest
        for probe in PROBES:
            estimates = _probe_estimates(probe, direction, raw_costs, defaults[direction])
            measured = fastest_times(_probe_runs(probe, direction, estimates), repeats)
            fastest = min(measured.values())
            for name, seconds in measured.items():
                kept = corrections if seconds <= CONTENDER_RATIO * fastest else others
                kept.setdefault(name, []).append(math.log(seconds / estimates[name]))
        medians = {name: statistics.median(corrections.get(name) or others[name]) for name in corrections.keys() | others.keys()}
        overall = statistics.median(medians.values())
        fitted[direction] = {name: factor * math.exp(medians.get(name, overall)) for name, factor in defaults[direction].items()}
    _store(machine_key(path, threads), fitted, save)
    return fitted


def _probe_estimates(probe, direction: str, raw_costs, default_factors: dict) -> dict[str, float]:
    """Estimated seconds, under the default factors, of the algorithms a probe times."""
    from ..explain import explain

    _, x_shape, w_shape, params = probe
    spec = explain(x_shape, w_shape, dtype="float32", **params).spec
    costs = raw_costs(spec, direction)
    estimates = {name: seconds * default_factors[name] for name, seconds in costs.items() if name not in UNTIMED}
    best = min(estimates.values())
    return {name: seconds for name, seconds in estimates.items() if seconds <= SKIP_ESTIMATED_SLOWER * best}


def _probe_runs(probe, direction: str, names) -> dict:
    """One call per algorithm of ``names``: ``direction`` of the probe's convolution."""
    from .. import ops

    _, x_shape, w_shape, params = probe
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    if direction == "forward":
        return {name: (lambda name=name: ops.conv(x, w, algorithm=name, **params)) for name in names}
    dy = ops.conv(x, w, **params)
    if direction == "backward_input":
        return {name: (lambda name=name: ops.conv_backprop_input(dy, w, x.shape, algorithm=name, **params)) for name in names}
    return {name: (lambda name=name: ops.conv_backprop_filter(x, dy, w.shape, algorithm=name, **params)) for name in names}
