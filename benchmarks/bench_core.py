"""Core benchmark: npconv's ``gemm`` vs PyTorch CPU ``F.conv2d`` on ResNet's first 3x3 stage.

    python benchmarks/bench_core.py [--repeats 7]

Runs both libraries interleaved in one process (median of ``--repeats`` runs each, after a warm-up),
with the same thread count, and prints the ratio ``torch_time / npconv_time`` (> 1: npconv faster)
and npconv's peak extra memory (tracemalloc).  PyTorch is optional (``pip install torch==2.13.0``);
without it only npconv's numbers are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
import tracemalloc

import numpy as np

import npconv as nc


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = fields.get("Model name", "?").strip()
        family = f"family {fields.get('CPU family', '?').strip()} model {fields.get('Model', '?').strip()}"
        flags = fields.get("Flags", "")
        vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        return f"{model} ({family}), {vector}, {len(os.sched_getaffinity(0))} cores"
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def median_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_extra_bytes(function) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


CASES = {
    # name: (NCHW input shape, OIHW kernel shape, conv kwargs)
    "resnet3x3_64": ((8, 64, 56, 56), (64, 64, 3, 3), {"stride": 1, "padding": 1}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(len(os.sched_getaffinity(0)))
    except ImportError:
        torch = None
    print(f"CPU: {cpu_name()}; numpy {np.__version__}; torch {torch.__version__ if torch else 'not installed'}")
    rng = np.random.default_rng(0)
    for name, (x_shape, w_shape, params) in CASES.items():
        x_nchw = rng.standard_normal(x_shape, dtype=np.float32)
        w_oihw = rng.standard_normal(w_shape, dtype=np.float32)
        x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
        w_hwio = np.ascontiguousarray(w_oihw.transpose(2, 3, 1, 0))
        runs = {
            "npconv gemm NHWC": lambda: nc.conv(x_nhwc, w_hwio, algorithm="gemm", **params),
            "npconv gemm NCHW": lambda: nc.conv(x_nchw, w_oihw, data_format="channels_first", algorithm="gemm", **params),
        }
        if torch is not None:
            xt, wt = torch.from_numpy(x_nchw), torch.from_numpy(w_oihw)
            runs["torch F.conv2d NCHW"] = lambda: F.conv2d(xt, wt, **params)
        times = {label: [] for label in runs}
        for _ in range(args.repeats):  # interleaved: each round runs every contender once
            for label, run in runs.items():
                times[label].append(median_time(run, 1))
        in_out = x_nchw.nbytes + runs["npconv gemm NHWC"]().nbytes
        print(f"\n{name}: input {x_shape} NCHW, kernel {w_shape}, {params}")
        reference = statistics.median(times["torch F.conv2d NCHW"]) if torch is not None else None
        for label, values in times.items():
            seconds = statistics.median(values)
            ratio = f", torch/npconv = {reference / seconds:.2f}x" if reference and "npconv" in label else ""
            print(f"  {label:22s} {seconds * 1e3:8.2f} ms{ratio}")
        for label in ("npconv gemm NHWC", "npconv gemm NCHW"):
            peak = peak_extra_bytes(runs[label])
            print(f"  {label} peak extra memory {peak / 2**20:.1f} MiB = {peak / in_out:.2f}x (input + output)")


if __name__ == "__main__":
    main()
