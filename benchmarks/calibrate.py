"""Check ``auto``'s cost model against measurements: estimated vs measured time per algorithm.

    python benchmarks/calibrate.py [--repeats 3] [--threads 2] [--direction forward]

For each shape (the suite's, plus variations in size, channels, kernel, stride and groups) and
each eligible algorithm, prints the measured median and the estimate (cost model times the
machine factors in use: this machine's from ``npconv calibrate``, else the defaults), and whether
``auto`` picked an algorithm within 1.25x of the measured best.  The cost constants in
``npconv/algorithms/*.py`` were set from this script's output; it ends with the median measured /
estimated ratio per algorithm (run it again with ``NPCONV_DISABLE_NUMBA=1`` for the NumPy path).
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np

import npconv as nc
from npconv import bench
from npconv.algorithms import candidates, execution_path
from npconv.explain import explain

SHAPES = [case for case in bench.SUITE + bench.EXTRA] + [
    bench.Case("small3x3", (1, 16, 16, 16), (16, 16, 3, 3), padding=1),
    bench.Case("mid3x3", (4, 32, 32, 32), (32, 32, 3, 3), padding=1),
    bench.Case("wide3x3_7", (8, 512, 7, 7), (512, 512, 3, 3), padding=1),
    bench.Case("c3_5x5", (8, 3, 64, 64), (16, 3, 5, 5), padding=2),
    bench.Case("k9_1ch", (4, 1, 128, 128), (4, 1, 9, 9), padding=4),
    bench.Case("k21", (2, 4, 128, 128), (4, 4, 21, 21), padding=10),
    bench.Case("dw5x5", (8, 64, 32, 32), (64, 1, 5, 5), padding=2, groups=64),
    bench.Case("dw3x3s2", (8, 128, 28, 28), (128, 1, 3, 3), stride=2, padding=1, groups=128),
    bench.Case("g2", (8, 64, 28, 28), (64, 32, 3, 3), padding=1, groups=2),
    bench.Case("g32", (8, 128, 28, 28), (128, 4, 3, 3), padding=1, groups=32),
    bench.Case("pw_small", (64, 32, 14, 14), (64, 32, 1, 1)),
]


def _call(direction: str, x, w, dy, params, algorithm):
    if direction == "forward":
        return lambda: nc.conv(x, w, algorithm=algorithm, **params)
    if direction == "backward_input":
        return lambda: nc.conv_backprop_input(dy, w, x.shape, algorithm=algorithm, **params)
    return lambda: nc.conv_backprop_filter(x, dy, w.shape, algorithm=algorithm, **params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--direction", default="forward", choices=["forward", "backward_input", "backward_weight"])
    parser.add_argument("--skip", default="direct", help="comma-separated algorithms not to time (slow ones)")
    parser.add_argument("--fastest", action="store_true", help="the fastest repeat instead of the median (on a busy machine)")
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    args = parser.parse_args()
    print(bench.cpu_name(), bench.limit_threads(args.threads, None))
    skip = set(args.skip.split(",")) if args.skip else set()
    misses = 0
    log_ratios = {}  # algorithm -> log(measured / estimated) per shape, for the calibration factors
    rng = np.random.default_rng(0)
    for case in SHAPES:
        if args.shapes and case.name not in args.shapes.split(","):
            continue
        x = rng.standard_normal((case.x_shape[0], *case.x_shape[2:], case.x_shape[1]), dtype=np.float32)
        w = rng.standard_normal((*case.w_shape[2:], case.w_shape[1], case.w_shape[0]), dtype=np.float32)
        spec = explain(x.shape, w.shape, **case.params).spec
        dy = rng.standard_normal(spec.y_shape(), dtype=np.float32)
        estimates = {k: v for k, v in candidates(spec, args.direction).items() if k not in skip}
        runs = {name: _call(args.direction, x, w, dy, case.params, name) for name in estimates}
        measured = bench.interleaved_medians(runs, args.repeats, min if args.fastest else statistics.median)
        best = min(measured.values())
        pick = min(estimates, key=estimates.get)
        ok = measured[pick] <= 1.25 * best
        misses += not ok
        cells = ", ".join(
            f"{name} {measured[name] * 1e3:.2f} (est {estimates[name] * 1e3:.2f})" for name in sorted(measured, key=measured.get)
        )
        print(f"{case.name:14s} {'ok  ' if ok else 'MISS'} auto={pick:13s} {cells}", flush=True)
        for name in measured:
            log_ratios.setdefault(name, []).append(math.log(measured[name] / estimates[name]))
    print(f"{misses} shapes where auto's pick is > 1.25x the measured best")
    ratios = {name: math.exp(statistics.median(values)) for name, values in log_ratios.items()}
    print(f"median measured / estimated for {args.direction} on the {execution_path()} path:")
    print("  " + ", ".join(f"{name} {ratio:.2f}" for name, ratio in sorted(ratios.items())))

if __name__ == "__main__":
    main()
