"""The benchmark suite: npconv against PyTorch (and SciPy) on common convolution shapes.

``npconv bench`` (or ``python benchmarks/bench_suite.py``) times, interleaved in one process with
the same thread count for everyone, the median (``--fastest``: the minimum) of ``repeats`` runs of

- forward: ``nc.conv`` (``algorithm="auto"``, channels_last data) vs ``torch.nn.functional.conv2d``
  (NCHW), and ``scipy.signal.fftconvolve(..., mode="same")`` for single-channel cases;
- forward + backward: ``nc.conv`` + ``nc.conv_backprop_input`` + ``nc.conv_backprop_filter`` vs
  ``conv2d`` + ``backward()`` computing both gradients;
- every eligible algorithm forward, to check ``auto`` against the best of them;

and reports npconv's peak extra memory (tracemalloc) relative to input + output (forward) and to
``x + y + dy + dx`` (forward + backward).  Ratios are
``other_time / npconv_time``: above 1, npconv is faster.  PyTorch and SciPy are optional; what is
missing is skipped.  Shapes are given as PyTorch writes them (NCHW input, OIHW kernel).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import subprocess
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from . import ops
from ._threads import available_cores, set_num_threads
from .explain import explain


@dataclass(frozen=True)
class Case:
    name: str
    x_shape: tuple[int, ...]  # NCHW
    w_shape: tuple[int, ...]  # OIHW (I = in_channels // groups)
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def params(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "groups": self.groups}

    @property
    def single_channel(self) -> bool:
        return self.x_shape[1] == 1 and self.w_shape[0] == 1


SUITE = [
    Case("resnet3x3_64", (8, 64, 56, 56), (64, 64, 3, 3), padding=1),
    Case("resnet3x3_256", (8, 256, 14, 14), (256, 256, 3, 3), padding=1),
    Case("pw1x1", (8, 256, 28, 28), (512, 256, 1, 1)),
    Case("stem7x7s2", (8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    Case("s2_3x3", (8, 128, 28, 28), (256, 128, 3, 3), stride=2, padding=1),
    Case("dw3x3", (8, 256, 28, 28), (256, 1, 3, 3), padding=1, groups=256),
    Case("grouped", (8, 128, 28, 28), (128, 16, 3, 3), padding=1, groups=8),
    Case("fmnist1", (64, 1, 28, 28), (32, 1, 3, 3), padding=1),
    Case("fmnist2", (64, 32, 14, 14), (64, 32, 3, 3), padding=1),
    Case("gabor31", (1, 1, 512, 512), (1, 1, 31, 31), padding=15),
]
EXTRA = [Case("batched15x15", (4, 8, 256, 256), (8, 8, 15, 15), padding=7)]
CASES = {case.name: case for case in SUITE + EXTRA}


def cpu_name() -> str:
    """``lscpu``'s model name, family/model, vector extension and usable cores."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    model = fields.get("Model name", "?").strip()
    family = f"family {fields.get('CPU family', '?').strip()} model {fields.get('Model', '?').strip()}"
    flags = fields.get("Flags", "")
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model} ({family}), {vector}, {available_cores()} cores"


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# Before each timed call: a pause, then one untimed call of the same function.  OpenBLAS's and
# OpenMP's worker threads keep spinning for up to ~0.1 s after a call, and on a 2-core machine they
# slow whatever runs next (measured: PyTorch's 1x1 conv right after a NumPy GEMM 46-54 ms, 26 ms
# after a 0.2 s pause); the untimed call then wakes the timed library's own threads and caches,
# which the pause let go cold.  Every library gets the same treatment.
SETTLE_SECONDS = 0.15


def interleaved_medians(runs: dict, repeats: int, statistic=statistics.median) -> dict[str, float]:
    """Median (or another ``statistic``) seconds of each callable; each round runs every one once,
    each time after a pause of ``SETTLE_SECONDS`` and one untimed call, starting one further
    along the list than the round before, so that no callable always runs right after the same
    one."""
    times = {label: [] for label in runs}
    labels = list(runs)
    for round_index in range(repeats):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            time.sleep(SETTLE_SECONDS)
            runs[label]()
            times[label].append(_timed(runs[label]))
    return {label: statistic(values) for label, values in times.items()}


def peak_extra_bytes(function) -> int:
    """Peak bytes allocated while ``function`` runs (its result included)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class Result:
    case: Case
    algorithm: str  # what auto picked for the forward
    times: dict[str, float] = field(default_factory=dict)  # label -> median seconds
    peak_bytes: int = 0  # forward
    in_out_bytes: int = 0  # x + y
    peak_train_bytes: int = 0  # forward + both gradients; compared with x + y + dy + dx

    def ratio(self, other: str, ours: str) -> float | None:
        if other in self.times and ours in self.times:
            return self.times[other] / self.times[ours]
        return None


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _scipy_fftconvolve():
    try:
        from scipy.signal import fftconvolve
    except ImportError:  # pragma: no cover - scipy is a dependency
        return None
    return fftconvolve


def run_case(case: Case, repeats: int, backward: bool, algorithms: bool, seed: int = 0, statistic=statistics.median) -> Result:
    torch = _torch()
    rng = np.random.default_rng(seed)
    x_nchw = rng.standard_normal(case.x_shape, dtype=np.float32)
    w_oihw = rng.standard_normal(case.w_shape, dtype=np.float32)
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))  # npconv's default: channels_last, HWIO
    w = np.ascontiguousarray(w_oihw.transpose(2, 3, 1, 0))
    params = case.params
    y = ops.conv(x, w, **params)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    choice = explain(x.shape, w.shape, dtype=np.float32, **params)
    result = Result(case, choice.algorithm, in_out_bytes=x.nbytes + y.nbytes)

    runs = {"npconv": lambda: ops.conv(x, w, **params)}
    if torch is not None:
        xt, wt = torch.from_numpy(x_nchw), torch.from_numpy(w_oihw)
        runs["torch"] = lambda: torch.nn.functional.conv2d(xt, wt, **params)
    fftconvolve = _scipy_fftconvolve()
    if case.single_channel and fftconvolve is not None:
        image, kernel = x_nchw[0, 0], w_oihw[0, 0, ::-1, ::-1]  # correlation = convolution with the flipped kernel
        runs["scipy"] = lambda: fftconvolve(image, kernel, mode="same")
    if algorithms:
        for name in choice.candidates:
            runs[f"npconv[{name}]"] = lambda name=name: ops.conv(x, w, algorithm=name, **params)
    if backward:

        def npconv_train():
            ops.conv(x, w, **params)
            ops.conv_backprop_input(dy, w, x.shape, **params)
            ops.conv_backprop_filter(x, dy, w.shape, **params)

        runs["npconv fwd+bwd"] = npconv_train
        if torch is not None:
            dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))

            def torch_train():
                xg = torch.from_numpy(x_nchw).requires_grad_()
                wg = torch.from_numpy(w_oihw).requires_grad_()
                torch.nn.functional.conv2d(xg, wg, **params).backward(dyt)

            runs["torch fwd+bwd"] = torch_train
    result.times = interleaved_medians(runs, repeats, statistic)
    result.peak_bytes = peak_extra_bytes(runs["npconv"])
    if backward:
        result.peak_train_bytes = peak_extra_bytes(runs["npconv fwd+bwd"])
    return result


def geomean(values) -> float:
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _fmt_ratio(value) -> str:
    return f"{value:.2f}x" if value else "-"


def table(results: list[Result], markdown: bool = False) -> str:
    """The ratio table (``other / npconv``: > 1 means npconv is faster).  "pick/best": the time of
    the algorithm ``auto`` picked over the fastest algorithm's, both from the per-algorithm runs
    (timed alike); the ``auto`` call's own time is "npconv ms" (its choice is a cached lookup), and
    two timings of one algorithm differed by up to 1.3x on a shared machine."""
    header = ["case", "auto picks", "npconv ms", "torch ms", "vs torch", "vs scipy", "fwd+bwd ms", "torch ms",
              "vs torch", "pick/best", "peak/(in+out)", "fwd+bwd peak"]
    rows = []
    for r in results:
        t = r.times
        alg_times = [v for k, v in t.items() if k.startswith("npconv[")]
        rows.append([
            r.case.name,
            r.algorithm,
            f"{t['npconv'] * 1e3:.2f}",
            f"{t['torch'] * 1e3:.2f}" if "torch" in t else "-",
            _fmt_ratio(r.ratio("torch", "npconv")),
            _fmt_ratio(r.ratio("scipy", "npconv")),
            f"{t['npconv fwd+bwd'] * 1e3:.2f}" if "npconv fwd+bwd" in t else "-",
            f"{t['torch fwd+bwd'] * 1e3:.2f}" if "torch fwd+bwd" in t else "-",
            _fmt_ratio(r.ratio("torch fwd+bwd", "npconv fwd+bwd")),
            f"{t.get(f'npconv[{r.algorithm}]', t['npconv']) / min(alg_times):.2f}" if alg_times else "-",
            f"{r.peak_bytes / r.in_out_bytes:.2f}",
            f"{r.peak_train_bytes / (2 * r.in_out_bytes):.2f}" if r.peak_train_bytes else "-",
        ])
    suite = [r for r in results if r.case.name in {c.name for c in SUITE}]
    rows.append([
        "geomean (suite)", "", "", "",
        _fmt_ratio(geomean(r.ratio("torch", "npconv") for r in suite)), "", "", "",
        _fmt_ratio(geomean(r.ratio("torch fwd+bwd", "npconv fwd+bwd") for r in suite)), "", "", "",
    ])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)) for row in [header, *rows])


def algorithm_table(results: list[Result]) -> str:
    """Forward milliseconds of every eligible algorithm per case (``*``: auto's pick)."""
    lines = []
    for r in results:
        cells = [f"{k[7:-1]}{'*' if k[7:-1] == r.algorithm else ''} {v * 1e3:.2f}"
                 for k, v in sorted(r.times.items(), key=lambda kv: kv[1]) if k.startswith("npconv[")]
        lines.append(f"  {r.case.name:14s} " + ", ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="npconv bench", description="npconv vs PyTorch / SciPy, interleaved.")
    parser.add_argument("cases", nargs="*", help=f"case names (default: the suite and {[c.name for c in EXTRA]})")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--no-backward", action="store_true", help="forward only")
    parser.add_argument("--no-algorithms", action="store_true", help="skip timing each algorithm")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--fastest", action="store_true", help="each call's fastest repeat instead of the median (on a busy shared machine)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    cases = [CASES[name] for name in args.cases] or list(CASES.values())
    torch = _torch()
    limits = limit_threads(args.threads, torch)
    print(f"CPU: {cpu_name()}; threads: {args.threads}; numpy {np.__version__}; "
          f"torch {torch.__version__ if torch else 'not installed'}; {limits}; "
          f"{'fastest' if args.fastest else 'median'} of {args.repeats} repeats")
    results, statistic = [], min if args.fastest else statistics.median
    for case in cases:
        result = run_case(case, args.repeats, not args.no_backward, not args.no_algorithms, statistic=statistic)
        results.append(result)
        print(f"  {case.name}: done ({result.times['npconv'] * 1e3:.2f} ms forward, auto picks {result.algorithm})", flush=True)
    print(table(results, markdown=args.markdown))
    if not args.no_algorithms:
        print("forward ms per algorithm:")
        print(algorithm_table(results))
    return 0


def limit_threads(threads: int, torch) -> str:
    """Give BLAS, npconv and PyTorch the same thread count; say what was limited."""
    set_num_threads(threads)
    limited = ["npconv"]
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limited.append("BLAS not limited: threadpoolctl is missing")
    else:
        threadpool_limits(threads)
        limited.append("BLAS (threadpoolctl)")
    if torch is not None:
        torch.set_num_threads(threads)
        limited.append("torch")
    return "limited: " + ", ".join(limited)
