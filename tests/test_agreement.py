"""npconv against the independent reference (tests/reference.py) on a broad seeded random sweep.

* ``test_conv_matches_reference``: 21 chunks x 100 = 2100 configurations -- ranks 1-3, both data
  formats (and the NHWC-style aliases), explicit kernel formats, strides and dilations 1-3, every
  padding form (valid, same, full, causal, int, per-dim, pairs incl. asymmetric) crossed with every
  padding mode (zeros, constant+pad_value, reflect, replicate, circular, symmetric), groups incl.
  depthwise with multipliers, bias, flip, float16/32/64, int/bool inputs, mixed dtypes, batch 0-3.
  Every configuration runs each algorithm ``nc.explain(...).candidates`` lists, plus ``"auto"``,
  and checks values, shape and dtype; ineligible algorithms must raise ValueError.
* conv1d/conv2d/conv3d, depthwise_conv2d, separable_conv2d and conv_transpose against the reference.
* Self-checks of the reference itself (np.pad, framework golden fixtures, adjointness).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import npconv as nc
from reference import (
    LAYOUT_ALIASES,
    MODE_MAX_PAD,
    MODES,
    PADDING_FORMS,
    as_tuple,
    call_repro,
    conv_reference,
    conv_transpose_geometry,
    conv_transpose_reference,
    depthwise_kernel_as_hwio,
    effective_size,
    expected_dtype,
    is_channels_first,
    kernel_is_spatial_first,
    pad_reference,
    pads_legal,
    random_array,
    random_conv_config,
    resolve_padding,
    transpose_forward_consistent,
)

SEED = 20261123
CHUNKS, PER_CHUNK = 21, 100
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "float16": 1e-2}
STATS = {"configs": 0, "pairs": 0, "chunks": set()}
MAX_REPORTED = 5


def chunk_configs(chunk):
    rng = np.random.default_rng([SEED, chunk])
    return [random_conv_config(rng, chunk * PER_CHUNK + j) for j in range(PER_CHUNK)]


def spatial_of(x, data_format):
    return x.shape[2:] if is_channels_first(data_format) else x.shape[1:-1]


def kernel_spatial_of(w, data_format, kernel_format):
    return w.shape[:-2] if kernel_is_spatial_first(data_format, kernel_format) else w.shape[2:]


def magnitude(x, w, bias, params):
    """max over outputs of sum |x| |w| (+ |bias|): the scale rounding errors are relative to."""
    p = {**params, "pad_value": abs(params.get("pad_value", 0.0))}
    scale = conv_reference(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), **p)
    total = float(np.max(scale, initial=0.0))
    if bias is not None:
        total += float(np.max(np.abs(bias.astype(np.float64)), initial=0.0))
    return total


def closeness(got, expected, scale, dtype):
    """(ok, max abs error, allowed) under the dtype's relative tolerance scaled by ``scale``."""
    allowed = TOLERANCE[np.dtype(dtype).name] * (scale + 1.0)
    err = float(np.max(np.abs(np.asarray(got, np.float64) - expected), initial=0.0))
    return bool(err <= allowed), err, allowed  # NaN -> not ok


def fail_message(failures, total, what="configurations"):
    head = "\n".join(failures[:MAX_REPORTED])
    more = f"\n... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
    return f"{len(failures)} failures over {total} {what}:\n{head}{more}"


def check_conv_config(config, function=nc.conv, check_extras=False):
    """Run every eligible algorithm + auto on one config; returns (pairs checked, failure lines)."""
    x, w, bias, params = config["x"], config["w"], config["bias"], config["params"]
    cid = config["id"]
    failures = []
    expected = conv_reference(x, w, bias=bias, **params)
    out_dtype = expected_dtype(x.dtype, w.dtype)
    scale = magnitude(x, w, bias, params)
    try:
        explanation = nc.explain(x.shape, w.shape, dtype=x.dtype, **params)
        candidates = list(explanation.candidates)
    except Exception as exc:  # noqa: BLE001 - reported with the config
        return 0, [f"explain raised {exc!r} :: {cid}"]
    if not candidates or not set(candidates) <= set(nc.algorithms()):
        failures.append(f"explain candidates {candidates} not a non-empty subset of {nc.algorithms()} :: {cid}")
    if tuple(explanation.output_shape) != expected.shape:
        failures.append(f"explain output_shape {explanation.output_shape} != {expected.shape} :: {cid}")
    pads = resolve_padding(
        params["padding"], spatial_of(x, params["data_format"]),
        kernel_spatial_of(w, params["data_format"], params["kernel_format"]), params["stride"], params["dilation"],
    )
    if tuple(tuple(int(v) for v in p) for p in explanation.padding) != tuple(pads):
        failures.append(f"explain padding {explanation.padding} != {tuple(pads)} :: {cid}")
    if explanation.algorithm not in candidates:
        failures.append(f"explain algorithm {explanation.algorithm!r} not in candidates {candidates} :: {cid}")
    pairs = 0
    if check_extras:
        copies = [a.copy() for a in (x, w) + (() if bias is None else (bias,))]
    for algorithm in [*candidates, "auto"]:
        try:
            y = function(x, w, bias=bias, algorithm=algorithm, **params)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"[{algorithm}] raised {exc!r} :: {cid}")
            continue
        pairs += 1
        if not isinstance(y, np.ndarray) or y.shape != expected.shape or y.dtype != out_dtype:
            failures.append(
                f"[{algorithm}] got {type(y).__name__} shape {getattr(y, 'shape', None)} dtype "
                f"{getattr(y, 'dtype', None)}, expected shape {expected.shape} dtype {out_dtype} :: {cid}"
            )
            continue
        ok, err, allowed = closeness(y, expected, scale, out_dtype)
        if not ok:
            failures.append(f"[{algorithm}] max error {err:.3g} > {allowed:.3g} :: {cid}")
        if check_extras and algorithm == "auto":
            again = function(x, w, bias=bias, algorithm=algorithm, **params)
            if not np.array_equal(again, y, equal_nan=True):
                failures.append(f"[auto] not bitwise deterministic on repeat :: {cid}")
    for algorithm in sorted(set(nc.algorithms()) - set(candidates)):
        try:
            function(x, w, bias=bias, algorithm=algorithm, **params)
        except ValueError:
            pass
        except Exception as exc:  # noqa: BLE001
            failures.append(f"[{algorithm}] ineligible, raised {exc!r} instead of ValueError :: {cid}")
        else:
            failures.append(f"[{algorithm}] ineligible (not in candidates) but ran :: {cid}")
    if check_extras:
        after = [x, w] + ([] if bias is None else [bias])
        if not all(np.array_equal(a, b) for a, b in zip(copies, after)):
            failures.append(f"inputs were mutated :: {cid}")
    if failures and x.size + w.size <= 120:
        failures[0] += f"\n    repro: {call_repro(config, algorithm=candidates[0] if candidates else None)}"
    return pairs, failures


# --------------------------------------------------------------------------------------------------
# the main sweep
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", range(CHUNKS), ids=lambda c: f"configs{c * PER_CHUNK}-{(c + 1) * PER_CHUNK - 1}")
def test_conv_matches_reference(chunk):
    pairs, failures = 0, []
    configs = chunk_configs(chunk)
    for j, config in enumerate(configs):
        n, f = check_conv_config(config, check_extras=j % 7 == 0)
        pairs += n
        failures += f
    STATS["configs"] += len(configs)
    STATS["pairs"] += pairs
    STATS["chunks"].add(chunk)
    assert not failures, fail_message(failures, len(configs))
    assert pairs >= 2 * len(configs)  # at least one candidate + auto per configuration


def test_sweep_covers_every_feature():
    """The generator really produces what the sweep claims (counted over all 2100 configs)."""
    assert CHUNKS * PER_CHUNK >= 2000
    seen = {}

    def count(key):
        seen[key] = seen.get(key, 0) + 1

    for chunk in range(CHUNKS):
        for c in chunk_configs(chunk):
            x, w, p = c["x"], c["w"], c["params"]
            rank = w.ndim - 2
            count(f"rank{rank}")
            count(f"mode={p['padding_mode']}")
            padding = p["padding"]
            if isinstance(padding, str):
                form = padding
            elif isinstance(padding, int):
                form = "int"
            elif all(isinstance(v, int) for v in padding):
                form = "tuple"
            else:
                form = "pairs"
                if any(a != b for a, b in padding):
                    count("asymmetric pairs")
            count(f"form={form}")
            pads = resolve_padding(padding, spatial_of(x, p["data_format"]),
                                   kernel_spatial_of(w, p["data_format"], p["kernel_format"]), p["stride"], p["dilation"])
            for n, pair in zip(spatial_of(x, p["data_format"]), pads):
                limit = MODE_MAX_PAD[p["padding_mode"]](n)
                if limit is not None and limit > 0 and max(pair) == limit:
                    count(f"{p['padding_mode']} pad at its limit")
                if limit is None and max(pair) > n:
                    count(f"{p['padding_mode']} pad > n")
            count(f"form={form} mode={p['padding_mode']}")
            count("channels_first" if is_channels_first(p["data_format"]) else "channels_last")
            if p["data_format"] in sum(LAYOUT_ALIASES.values(), ()):
                count("alias data_format")
            if p["kernel_format"] is not None:
                count("kernel_format")
                if kernel_is_spatial_first(p["data_format"], None) != kernel_is_spatial_first(p["data_format"], p["kernel_format"]):
                    count("kernel_format against data_format")
            stride, dilation = as_tuple(p["stride"], rank), as_tuple(p["dilation"], rank)
            count(f"max stride {max(stride)}")
            count(f"max dilation {max(dilation)}")
            cin = x.shape[1] if is_channels_first(p["data_format"]) else x.shape[-1]
            cout = w.shape[-1] if kernel_is_spatial_first(p["data_format"], p["kernel_format"]) else w.shape[0]
            if p["groups"] > 1:
                count("grouped" if p["groups"] < cin else "depthwise")
                if p["groups"] == cin and cout > cin:
                    count("depthwise multiplier>1")
            if c["bias"] is not None:
                count("bias")
            if p["flip"]:
                count("flip")
            count(f"dtypes {x.dtype}/{w.dtype}")
            count(f"batch {x.shape[0]}")
    for rank in (1, 2, 3):
        assert seen.get(f"rank{rank}", 0) >= 300, seen
    for mode in MODES:
        assert seen.get(f"mode={mode}", 0) >= 300, seen
        for form in PADDING_FORMS:
            assert seen.get(f"form={form} mode={mode}", 0) >= 30, (form, mode, seen)
    for key in ("asymmetric pairs", "channels_first", "channels_last", "alias data_format", "kernel_format",
                "kernel_format against data_format", "max stride 3", "max dilation 3", "grouped", "depthwise",
                "depthwise multiplier>1", "bias", "flip", "batch 0", "batch 3"):
        assert seen.get(key, 0) >= 30, (key, seen)
    for mode in ("reflect", "symmetric", "circular"):
        assert seen.get(f"{mode} pad at its limit", 0) >= 30, (mode, seen)
    for mode in ("zeros", "constant", "replicate"):
        assert seen.get(f"{mode} pad > n", 0) >= 30, (mode, seen)
    for dtypes in ("float64/float64", "float32/float32", "float16/float16", "int32/int32", "bool/bool",
                   "int32/float64", "float16/float32", "uint8/float16"):
        assert seen.get(f"dtypes {dtypes}", 0) >= 20, (dtypes, seen)


# --------------------------------------------------------------------------------------------------
# rank wrappers, depthwise, separable
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_wrappers_match_reference(rank):
    function = {1: nc.conv1d, 2: nc.conv2d, 3: nc.conv3d}[rank]
    rng = np.random.default_rng([SEED, 77, rank])
    failures, pairs = [], 0
    for i in range(60):
        forms = None if rank == 1 else tuple(f for f in PADDING_FORMS if f != "causal")
        config = random_conv_config(rng, i, rank=rank, forms=forms)
        n, f = check_conv_config(config, function=function)
        pairs += n
        failures += f
    STATS["pairs"] += pairs
    assert not failures, fail_message(failures, 60)


def random_depthwise_config(rng, index, dtypes=("float64", "float64", "float32", "float16")):
    mode = MODES[index % len(MODES)]
    forms = ("valid", "same", "full", "int", "tuple", "pairs")
    form = forms[(index // len(MODES)) % len(forms)]
    while True:
        spatial = tuple(int(v) for v in rng.integers(1, 9, 2))
        kernel = tuple(int(v) for v in rng.integers(1, 4, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        if form in ("valid", "same", "full"):
            padding = form
        elif form == "int":
            padding = int(rng.integers(0, 3))
        elif form == "tuple":
            padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        else:
            padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (2, 2)))
        pads = resolve_padding(padding, spatial, kernel, stride, dilation)
        if pads_legal(pads, spatial, mode) and all(
            n + lo + hi >= effective_size(k, d) for n, (lo, hi), k, d in zip(spatial, pads, kernel, dilation)
        ):
            break
    channels, multiplier = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    channels_first = bool(rng.random() < 0.5)
    data_format = ("NCHW" if channels_first else "NHWC") if rng.random() < 0.25 else (
        "channels_first" if channels_first else "channels_last")
    batch = int(rng.integers(1, 4))
    dtype = dtypes[int(rng.integers(len(dtypes)))]
    x = random_array(rng, (batch, channels, *spatial) if channels_first else (batch, *spatial, channels), dtype)
    w = random_array(rng, (*kernel, channels, multiplier), dtype)
    bias = rng.standard_normal(channels * multiplier).astype(dtype) if rng.random() < 0.5 else None
    params = dict(stride=stride if rng.random() < 0.5 else list(stride), padding=padding, dilation=dilation,
                  data_format=data_format)
    extra = dict(padding_mode=mode, pad_value=float(np.round(rng.uniform(-2, 2), 2)) if mode == "constant" else 0.0)
    cid = f"#{index} x{x.shape}:{x.dtype} w{w.shape} {params} {extra} bias={bias is not None}"
    return x, w, bias, params, extra, cid


@pytest.mark.parametrize("chunk", range(4))
def test_depthwise_conv2d_matches_reference(chunk):
    rng = np.random.default_rng([SEED, 88, chunk])
    failures, count = [], 50
    for i in range(count):
        x, w, bias, params, extra, cid = random_depthwise_config(rng, chunk * count + i)
        hwio = depthwise_kernel_as_hwio(w)
        grouped = dict(params, **extra, groups=w.shape[2], kernel_format="HWIO")
        expected = conv_reference(x, hwio, bias=bias, **grouped)
        scale = magnitude(x, hwio, bias, grouped)
        candidates = list(nc.explain(x.shape, hwio.shape, dtype=x.dtype, **grouped).candidates)
        for algorithm in [*candidates, "auto"]:
            try:
                y = nc.depthwise_conv2d(x, w, bias=bias, algorithm=algorithm, **params, **extra)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid}")
                continue
            if y.shape != expected.shape or y.dtype != x.dtype:
                failures.append(f"[{algorithm}] shape/dtype {y.shape} {y.dtype} != {expected.shape} {x.dtype} :: {cid}")
                continue
            ok, err, allowed = closeness(y, expected, scale, x.dtype)
            if not ok:
                failures.append(f"[{algorithm}] max error {err:.3g} > {allowed:.3g} :: {cid}")
    assert not failures, fail_message(failures, count)


@pytest.mark.parametrize("chunk", range(2))
def test_separable_conv2d_matches_reference(chunk):
    rng = np.random.default_rng([SEED, 99, chunk])
    failures, count = [], 50
    for i in range(count):
        x, dw, _, params, _, cid = random_depthwise_config(rng, chunk * count + i, dtypes=("float64", "float32"))
        channels, multiplier = dw.shape[2], dw.shape[3]
        out = int(rng.integers(1, 5))
        pw = random_array(rng, (1, 1, channels * multiplier, out), str(x.dtype))
        bias = rng.standard_normal(out).astype(x.dtype) if rng.random() < 0.6 else None
        grouped = dict(params, groups=channels, kernel_format="HWIO")
        middle = conv_reference(x, depthwise_kernel_as_hwio(dw), **grouped)
        expected = conv_reference(middle, pw, kernel_format="HWIO", data_format=params["data_format"], bias=bias)
        scale = magnitude(np.abs(middle), pw, bias, dict(data_format=params["data_format"], kernel_format="HWIO"))
        scale += float(np.max(np.abs(pw), initial=0)) * magnitude(x, depthwise_kernel_as_hwio(dw), None, grouped) * channels * multiplier
        for algorithm in ["auto", *nc.algorithms()]:
            try:
                y = nc.separable_conv2d(x, dw, pw, bias=bias, algorithm=algorithm, **params)
            except ValueError as exc:
                if algorithm != "auto" and "algorithm" in str(exc):
                    continue  # not eligible here
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid} pw{pw.shape}")
                continue
            except Exception as exc:  # noqa: BLE001
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid} pw{pw.shape}")
                continue
            if y.shape != expected.shape or y.dtype != x.dtype:
                failures.append(f"[{algorithm}] shape/dtype {y.shape} {y.dtype} != {expected.shape} {x.dtype} :: {cid}")
                continue
            ok, err, allowed = closeness(y, expected, scale, x.dtype)
            if not ok:
                failures.append(f"[{algorithm}] max error {err:.3g} > {allowed:.3g} :: {cid} pw{pw.shape}")
    assert not failures, fail_message(failures, count)


# --------------------------------------------------------------------------------------------------
# conv_transpose
# --------------------------------------------------------------------------------------------------


def random_transpose_config(rng, index):
    rank = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 4))
    cin, out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 4))
    spatial = tuple(int(v) for v in rng.integers(1, (7, 5, 4)[rank - 1] + 1, rank))
    kernel = tuple(int(v) for v in rng.integers(1, (5, 4, 3)[rank - 1] + 1, rank))
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 4, rank))
    form = ("valid", "same", "int", "tuple", "pairs")[index % 5]
    if form in ("valid", "same"):
        padding = form
    elif form == "int":
        padding = int(rng.integers(0, 3))
    elif form == "tuple":
        padding = tuple(int(v) for v in rng.integers(0, 3, rank))
    else:
        padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2)))
    output_padding = None
    if rng.random() < 0.5:
        ops = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        output_padding = ops[0] if len(set(ops)) == 1 and rng.random() < 0.5 else ops
    channels_first = bool(rng.random() < 0.5)
    dtype = "float32" if rng.random() < 0.2 else "float64"
    batch = int(rng.integers(1, 4))
    x = random_array(rng, (batch, cin, *spatial) if channels_first else (batch, *spatial, cin), dtype)
    w = random_array(rng, (cin, out_g, *kernel) if channels_first else (*kernel, out_g, cin), dtype)
    bias = rng.standard_normal(out_g * groups).astype(dtype) if rng.random() < 0.5 else None
    params = dict(
        stride=stride if len(set(stride)) > 1 or rng.random() < 0.5 else stride[0],
        padding=padding,
        output_padding=output_padding,
        dilation=dilation if len(set(dilation)) > 1 or rng.random() < 0.5 else dilation[0],
        groups=groups,
        data_format="channels_first" if channels_first else "channels_last",
    )
    cid = f"#{index} x{x.shape}:{dtype} w{w.shape} {params} bias={bias is not None}"
    return x, w, bias, params, spatial, kernel, cid


@pytest.mark.parametrize("chunk", range(8))
def test_conv_transpose_matches_scatter_reference(chunk):
    rng = np.random.default_rng([SEED, 55, chunk])
    failures, count, compared = [], 50, 0
    for i in range(count):
        x, w, bias, params, spatial, kernel, cid = random_transpose_config(rng, chunk * count + i)
        geometry = dict(stride=params["stride"], padding=params["padding"], output_padding=params["output_padding"],
                        dilation=params["dilation"])
        lengths, _ = conv_transpose_geometry(spatial, kernel, **geometry)
        if min(lengths) < 1:  # nothing to compute: must be refused
            try:
                nc.conv_transpose(x, w, bias=bias, **params)
            except ValueError:
                continue
            failures.append(f"empty output {lengths} accepted (expected ValueError) :: {cid}")
            continue
        # string padding whose Keras size the forward conv does not map back (TensorFlow refuses
        # these): a ValueError or the scatter result are both acceptable
        lenient = isinstance(params["padding"], str) and not transpose_forward_consistent(spatial, kernel, **geometry)
        expected = conv_transpose_reference(x, w, bias=bias, **params)
        scale = float(np.max(conv_transpose_reference(np.abs(x), np.abs(w), **params), initial=0))
        scale += 0.0 if bias is None else float(np.abs(bias).max())
        for algorithm in ["auto", *nc.algorithms()]:
            try:
                y = nc.conv_transpose(x, w, bias=bias, algorithm=algorithm, **params)
            except ValueError as exc:
                if lenient or (algorithm != "auto" and "algorithm" in str(exc)):
                    continue
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid}")
                continue
            except Exception as exc:  # noqa: BLE001
                failures.append(f"[{algorithm}] raised {exc!r} :: {cid}")
                continue
            if y.shape != expected.shape or y.dtype != x.dtype:
                failures.append(f"[{algorithm}] shape/dtype {y.shape} {y.dtype} != {expected.shape} {x.dtype} :: {cid}")
                continue
            ok, err, allowed = closeness(y, expected, scale, x.dtype)
            if not ok:
                failures.append(f"[{algorithm}] max error {err:.3g} > {allowed:.3g} :: {cid}")
            compared += 1
    assert not failures, fail_message(failures, count)
    assert compared >= count  # most configurations really compared


# --------------------------------------------------------------------------------------------------
# the reference checks itself against outside ground truth
# --------------------------------------------------------------------------------------------------


def test_reference_padding_agrees_with_np_pad():
    numpy_mode = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "symmetric": "symmetric",
                  "replicate": "edge", "circular": "wrap"}
    rng = np.random.default_rng([SEED, 1])
    checked = 0
    for i in range(600):
        rank = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(1, 6, rank))
        mode = MODES[i % len(MODES)]
        pads = [(int(a), int(b)) for a, b in rng.integers(0, 6, (rank, 2))]
        if not pads_legal(pads, spatial, mode):
            continue
        x = rng.standard_normal((2, 3, *spatial))
        kwargs = {"constant_values": -1.25} if mode == "constant" else {}
        expected = np.pad(x, [(0, 0), (0, 0), *pads], mode=numpy_mode[mode], **kwargs)
        np.testing.assert_array_equal(pad_reference(x, pads, mode, -1.25), expected, err_msg=f"{mode} {pads} {spatial}")
        checked += 1
    assert checked > 300


def _golden_files():
    folder = Path(__file__).resolve().parent / "fixtures"
    return [p for p in (folder / "golden_tf.npz", folder / "golden_torch.npz") if p.exists()]


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@pytest.mark.skipif(not _golden_files(), reason="no golden fixtures")
def test_reference_reproduces_framework_goldens():
    """TensorFlow/Keras and PyTorch results (tests/fixtures) validate the reference itself."""
    checked = 0
    for path in _golden_files():
        data = np.load(path, allow_pickle=False)
        for key in data.files:
            if not key.endswith("/call"):
                continue
            case = key[: -len("/call")]
            call = json.loads(str(data[key]))
            kwargs = {k: _tuples(v) for k, v in call["kwargs"].items() if k != "algorithm"}
            arrays = {k[len(case) + 1:]: data[k] for k in data.files if k.startswith(case + "/")}
            expected, function = arrays["expected"], call["function"]
            if function == "conv":
                got = conv_reference(arrays["x"], arrays["w"], bias=arrays.get("bias"), **kwargs)
            elif function == "conv_transpose":
                got = conv_transpose_reference(arrays["x"], arrays["w"], bias=arrays.get("bias"), **kwargs)
            elif function == "depthwise_conv2d":
                w = arrays["w"]
                got = conv_reference(arrays["x"], depthwise_kernel_as_hwio(w), groups=w.shape[2], kernel_format="HWIO",
                                     bias=arrays.get("bias"), **kwargs)
            elif function == "separable_conv2d":
                dw = arrays["depthwise_w"]
                middle = conv_reference(arrays["x"], depthwise_kernel_as_hwio(dw), groups=dw.shape[2],
                                        kernel_format="HWIO", **kwargs)
                got = conv_reference(middle, arrays["pointwise_w"], kernel_format="HWIO", bias=arrays.get("bias"),
                                     data_format=kwargs.get("data_format", "channels_last"))
            else:
                continue
            tol = 1e-4 if expected.dtype == np.float32 else 1e-10
            assert got.shape == expected.shape, case
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol * (1 + np.abs(expected).max()), err_msg=case)
            checked += 1
    assert checked >= 100


def test_reference_transpose_is_adjoint_of_reference_conv():
    """<conv_ref(z, w), x> == <z, conv_transpose_ref(x, w)> whenever the sizes correspond."""
    rng = np.random.default_rng([SEED, 2])
    checked = 0
    for i in range(400):
        x, w, _, params, spatial, kernel, cid = random_transpose_config(rng, i)
        x, w = x.astype(np.float64), w.astype(np.float64)
        geometry = dict(stride=params["stride"], padding=params["padding"], output_padding=params["output_padding"],
                        dilation=params["dilation"])
        if not transpose_forward_consistent(spatial, kernel, **geometry):
            continue
        y = conv_transpose_reference(x, w, **params)
        z = rng.standard_normal(y.shape)
        forward_padding = params["padding"]
        if not isinstance(forward_padding, str):
            forward_padding = resolve_padding(forward_padding, spatial, kernel, params["stride"], params["dilation"])
        # the transpose kernel is the forward kernel in the default layout of the same data_format
        forward = conv_reference(z, w, stride=params["stride"], padding=forward_padding, dilation=params["dilation"],
                                 groups=params["groups"], data_format=params["data_format"])
        assert forward.shape == x.shape, cid
        lhs, rhs = float(np.vdot(forward, x)), float(np.vdot(z, y))
        assert abs(lhs - rhs) <= 1e-10 * (1 + np.abs(forward).sum() * np.abs(x).max()), cid
        checked += 1
    assert checked >= 200


def test_report_counts():
    """Runs last: the number of (configuration, algorithm) pairs the sweep compared."""
    assert CHUNKS * PER_CHUNK >= 2000
    if STATS["chunks"] != set(range(CHUNKS)):
        pytest.skip("the sweep did not run in full in this process")
    print(f"\nagreement sweep: {STATS['configs']} configurations, {STATS['pairs']} algorithm/config pairs checked")
    assert STATS["configs"] >= 2000
    assert STATS["pairs"] >= 2 * STATS["configs"]
