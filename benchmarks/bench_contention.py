"""npconv beside another busy process: how much slower each task runs than on a quiet machine.

    python benchmarks/bench_contention.py [--rounds 5] [--busy 1] [case ...]

Times, in this one process, the tasks a user runs (the seeds' CNN training an epoch of 1280
samples and predicting them, a 3x3 Sobel on a 4096x4096 image, a 31x31 Gaussian on 2048x2048, and
the forward of each case of the benchmark suite, ``npconv.bench.SUITE``) with the process's
default thread settings, untouched, first on the quiet machine and then while ``--busy`` other
processes (each one Python loop, i.e. one core) run beside it; and the same again, alternating,
for ``--rounds`` rounds.  Reported: the median time of each task quiet and busy, and their ratio
(busy / quiet: 1 is unaffected; on a 2-core machine with one busy process, about 2 is fair: half
the cores are taken).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import npconv as nc
from npconv.bench import CASES, SUITE, cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import keras_models  # noqa: E402  (the model definition shared with the tests)

BUSY_LOOP = "while True: pass"


def tasks(case_names: list[str]) -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((1280, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    nc.set_random_seed(0)
    model = keras_models.seeds_cnn(nc.layers, nc.Sequential)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    image = rng.random((4096, 4096), dtype=np.float32)
    photo = rng.random((2048, 2048), dtype=np.float32)
    gaussian = nc.kernels.gaussian(31, sigma=5.0).astype(np.float32)
    runs = {
        "seeds CNN fit, 1 epoch": lambda: model.fit(x, y, batch_size=64, epochs=1, verbose=0),
        "seeds CNN predict": lambda: model.predict(x, batch_size=256, verbose=0),
        "sobel 3x3, 4096^2": lambda: nc.image.filter2d(image, nc.kernels.sobel_x().astype(np.float32)),
        "gaussian 31x31, 2048^2": lambda: nc.image.filter2d(photo, gaussian),
    }
    for case in [CASES[name] for name in case_names]:
        xs = rng.standard_normal((case.x_shape[0], *case.x_shape[2:], case.x_shape[1])).astype(np.float32)
        ws = rng.standard_normal((*case.w_shape[2:], case.w_shape[1], case.w_shape[0])).astype(np.float32)
        runs[case.name] = lambda xs=xs, ws=ws, case=case: nc.conv(xs, ws, **case.params)
    return runs


def time_all(runs: dict) -> dict[str, float]:
    times = {}
    for name, run in runs.items():
        start = time.perf_counter()
        run()
        times[name] = time.perf_counter() - start
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", default=[case.name for case in SUITE])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside npconv")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_name()}; npconv threads: {nc.get_num_threads()}; numpy {np.__version__}; busy processes: {args.busy}")
    runs = tasks(args.cases)
    time_all(runs)  # warm-up: compilation, caches
    samples = {(name, state): [] for name in runs for state in ("quiet", "busy")}
    for _ in range(args.rounds):
        for name, seconds in time_all(runs).items():
            samples[(name, "quiet")].append(seconds)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.busy)]
        try:
            time.sleep(0.2)  # the busy loops are running
            for name, seconds in time_all(runs).items():
                samples[(name, "busy")].append(seconds)
        finally:
            for process in busy:
                process.kill()
                process.wait()
    print(f"{'task':26s} {'quiet ms':>10s} {'busy ms':>10s} {'busy/quiet':>11s}")
    ratios = []
    for name in runs:
        quiet, loaded = (statistics.median(samples[(name, state)]) for state in ("quiet", "busy"))
        ratios.append(loaded / quiet)
        print(f"{name:26s} {quiet * 1e3:10.2f} {loaded * 1e3:10.2f} {loaded / quiet:10.2f}x")
    print(f"worst {max(ratios):.2f}x, geomean {float(np.exp(np.mean(np.log(ratios)))):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
