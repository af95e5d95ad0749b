"""Random convolution configurations for the agreement and gradient sweeps (seeded, reproducible)."""

from __future__ import annotations

import numpy as np

from reference import resolve_padding

MODES = ("zeros", "constant", "reflect", "replicate", "circular", "symmetric")
CHANNELS_FIRST = ("channels_first", "NCW", "NCHW", "NCDHW")
LAYOUT_NAMES = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
KERNEL_FORMATS = {1: ("WIO", "OIW"), 2: ("HWIO", "OIHW"), 3: ("DHWIO", "OIDHW")}
MODE_LIMIT = {"reflect": -1, "symmetric": 0, "circular": 0}  # max pad per side = n + limit


def _padding_form(rng, rank, mode):
    forms = ["valid", "same", "full", "int", "tuple", "pairs"] + (["causal"] if rank == 1 else [])
    form = forms[rng.integers(len(forms))]
    if form in ("valid", "same", "full", "causal"):
        return form.upper() if form in ("valid", "same") and rng.random() < 0.2 else form
    if form == "int":
        return int(rng.integers(0, 3))
    if form == "tuple":
        return tuple(int(v) for v in rng.integers(0, 3, rank)) if rank > 1 else (int(rng.integers(0, 3)),)
    return [(int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2))]


def random_config(rng, dtypes=("float64", "float64", "float32", "float16", "int32", "bool", "mixed")):
    """A dict with x, w and the nc.conv keyword arguments (bias included), valid by construction."""
    while True:
        rank = int(rng.integers(1, 4))
        max_n = (9, 7, 5)[rank - 1]
        in_spatial = [int(v) for v in rng.integers(1, max_n + 1, rank)]
        kernel = [int(v) for v in rng.integers(1, 4, rank)]
        stride = [int(v) for v in rng.integers(1, 4, rank)]
        dilation = [int(v) for v in rng.integers(1, 4, rank)]
        mode = MODES[rng.integers(len(MODES))]
        padding = _padding_form(rng, rank, mode)
        pads = resolve_padding(padding, in_spatial, kernel, stride, dilation)
        if any(n + lo + hi < (k - 1) * d + 1 for n, (lo, hi), k, d in zip(in_spatial, pads, kernel, dilation)):
            continue
        if mode in MODE_LIMIT and any(max(p) > n + MODE_LIMIT[mode] for n, p in zip(in_spatial, pads)):
            continue
        break
    kind = rng.integers(4)
    if kind == 0:  # depthwise, maybe with a multiplier
        groups = int(rng.integers(1, 5))
        cin, cout = groups, groups * int(rng.integers(1, 3))
    elif kind == 1:  # grouped
        groups = int(rng.integers(2, 4))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    else:
        groups, cin, cout = 1, int(rng.integers(1, 5)), int(rng.integers(1, 5))
    batch = int(rng.integers(0, 4)) if rng.random() < 0.1 else int(rng.integers(1, 4))
    channels_last = rng.random() < 0.5
    named = rng.random() < 0.3
    data_format = LAYOUT_NAMES[rank][0 if channels_last else 1] if named else ("channels_last" if channels_last else "channels_first")
    kernel_format = None
    spatial_first = channels_last
    if rng.random() < 0.25:
        spatial_first = rng.random() < 0.5
        kernel_format = KERNEL_FORMATS[rank][0 if spatial_first else 1]
    x_shape = (batch, *in_spatial, cin) if channels_last else (batch, cin, *in_spatial)
    w_shape = (*kernel, cin // groups, cout) if spatial_first else (cout, cin // groups, *kernel)
    dtype = dtypes[rng.integers(len(dtypes))]
    # "mixed": int32 input with a float64 kernel (computes in float64)
    x = _random_array(rng, x_shape, "int32" if dtype == "mixed" else dtype)
    w = _random_array(rng, w_shape, "float64" if dtype == "mixed" else dtype)
    params = dict(
        stride=stride if rng.random() < 0.7 else (stride[0] if len(set(stride)) == 1 else stride),
        padding=padding,
        dilation=dilation,
        groups=groups,
        data_format=data_format,
        kernel_format=kernel_format,
        padding_mode=mode,
        pad_value=float(np.round(rng.standard_normal(), 2)) if mode == "constant" else 0.0,
        flip=bool(rng.random() < 0.3),
    )
    bias = _random_array(rng, (cout,), str(w.dtype)) if rng.random() < 0.5 else None
    return {"x": x, "w": w, "bias": bias, "params": params}


def _random_array(rng, shape, dtype):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        return rng.integers(-3, 4, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def describe(config) -> str:
    x, w = config["x"], config["w"]
    return f"x {x.shape} {x.dtype}, w {w.shape} {w.dtype}, bias {config['bias'] is not None}, {config['params']}"
