"""Robustness tests for npconv's public API.

* inputs are never mutated, read-only inputs work;
* non-contiguous / negative-stride / transposed / Fortran-order / read-only inputs give the same
  result as C-contiguous copies;
* N=0 batches give correctly shaped empty results;
* NaN / Inf locality: a non-finite input pixel makes non-finite exactly the outputs whose
  receptive window (after padding, including the copies of the pixel made by reflect / replicate /
  circular / symmetric padding) covers it.  The expected mask is computed here with plain loops
  over an indicator array padded by np.pad (independent of npconv);
* determinism: repeated calls are bitwise identical;
* dtype rules;
* Python lists as inputs.

Algorithms: for `nc.conv` the eligible ones are `nc.explain(...).candidates` (conventions).  For
the other ops every name in `nc.algorithms()` is tried and an algorithm is counted as ineligible
only when the op raises ValueError naming `algorithm`.
"""


import numpy as np
import pytest

import npconv as nc

MODES = ["zeros", "constant", "reflect", "replicate", "circular", "symmetric"]
NP_PAD_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect",
               "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}


def rng(seed=0):
    return np.random.default_rng(seed)


def randn(shape, dtype=np.float64, seed=0):
    return rng(seed).standard_normal(shape).astype(dtype)


def conv_candidates(x, w, **params):
    params = {k: v for k, v in params.items() if k not in ("bias", "algorithm")}
    cands = list(nc.explain(x.shape, w.shape, dtype=x.dtype, **params).candidates)
    assert cands, "explain() lists no eligible algorithm"
    assert set(cands) <= set(nc.algorithms())
    return cands


def all_algorithms(fn, *args, **kw):
    """{algorithm: fn(*args, algorithm=name, **kw)} over every eligible algorithm."""
    out = {}
    for name in nc.algorithms():
        try:
            out[name] = fn(*args, algorithm=name, **kw)
        except ValueError as e:
            if "algorithm" in str(e):
                continue  # not eligible for this call
            raise
    assert out, "no algorithm accepted the call"
    return out


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def readonly(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------
# Shared 2-D problem (channels_last)
# ---------------------------------------------------------------------------------------------

X = randn((2, 6, 7, 3), seed=1)
W = randn((3, 3, 3, 4), seed=2)
B = randn((4,), seed=3)
WT = randn((3, 3, 4, 3), seed=4)          # conv_transpose kernel: (kh, kw, out, in)
DW = randn((3, 3, 3, 2), seed=5)          # depthwise (kh, kw, C, mult)
PW = randn((1, 1, 6, 4), seed=6)          # pointwise (1, 1, C*mult, out)


def mode_params(mode, flip=False):
    p = dict(stride=(2, 1), padding="same", dilation=(1, 2), padding_mode=mode, flip=flip)
    if mode == "constant":
        p["pad_value"] = 0.25
    return p


# ---------------------------------------------------------------------------------------------
# 1. Inputs are never mutated; read-only inputs work
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flip", [False, True], ids=["xcorr", "flip"])
@pytest.mark.parametrize("mode", MODES)
def test_inputs_not_mutated_and_readonly_ok(mode, flip):
    p = mode_params(mode, flip)
    x, w, b = X.copy(), W.copy(), B.copy()
    y0 = nc.conv(x, w, **p)
    dy = randn(y0.shape, seed=7)
    dyc = dy.copy()
    dp = {k: v for k, v in p.items() if k != "flip"}

    results = {}
    for a in conv_candidates(x, w, **p):
        results["conv", a] = nc.conv(x, w, bias=b, algorithm=a, **p)
    for a, r in all_algorithms(nc.conv_backprop_input, dy, w, x.shape, **p).items():
        results["bpi", a] = r
    for a, r in all_algorithms(nc.conv_backprop_filter, x, dy, w.shape, **p).items():
        results["bpf", a] = r
    for a, r in all_algorithms(nc.depthwise_conv2d, x, DW, bias=None, **dp).items():
        results["dw", a] = r
    for name, arr, ref in [("x", x, X), ("w", w, W), ("bias", b, B), ("dy", dy, dyc)]:
        assert np.array_equal(arr, ref), f"{name} was mutated"
        assert arr.flags.writeable

    # the same calls with read-only inputs work and give identical results
    xr, wr, br, dyr, dwr = (readonly(a) for a in (X, W, B, dyc, DW))
    for (op, a), r in results.items():
        if op == "conv":
            r2 = nc.conv(xr, wr, bias=br, algorithm=a, **p)
        elif op == "bpi":
            r2 = nc.conv_backprop_input(dyr, wr, xr.shape, algorithm=a, **p)
        elif op == "bpf":
            r2 = nc.conv_backprop_filter(xr, dyr, wr.shape, algorithm=a, **p)
        else:
            r2 = nc.depthwise_conv2d(xr, dwr, algorithm=a, **dp)
        assert same_bits(r, r2), (op, a)
        assert r.flags.writeable, f"{op}/{a} returned a read-only array"


@pytest.mark.parametrize("stride, padding", [(1, "valid"), (2, "same"), (2, 1)])
def test_transpose_and_separable_not_mutated_and_readonly_ok(stride, padding):
    x, wt, dw, pw, b = X.copy(), WT.copy(), DW.copy(), PW.copy(), B.copy()
    op = 1 if isinstance(padding, int) else None
    # (conv_transpose's bias handling is checked in test_errors.py; here it is left out)
    res_t = all_algorithms(nc.conv_transpose, x, wt, stride=stride, padding=padding,
                           output_padding=op)
    res_s = all_algorithms(nc.separable_conv2d, x, dw, pw, stride=stride, padding=padding,
                           bias=b)
    for name, arr, ref in [("x", x, X), ("w", wt, WT), ("depthwise_w", dw, DW),
                           ("pointwise_w", pw, PW), ("bias", b, B)]:
        assert np.array_equal(arr, ref), f"{name} was mutated"
    xr, wtr, dwr, pwr, br = (readonly(a) for a in (X, WT, DW, PW, B))
    for a, r in res_t.items():
        assert same_bits(r, nc.conv_transpose(xr, wtr, stride=stride, padding=padding,
                                              output_padding=op, algorithm=a))
    for a, r in res_s.items():
        assert same_bits(r, nc.separable_conv2d(xr, dwr, pwr, stride=stride, padding=padding,
                                                bias=br, algorithm=a))


# ---------------------------------------------------------------------------------------------
# 2. Memory layout does not change the result
# ---------------------------------------------------------------------------------------------

def _x_variants():
    base = randn((4, 12, 7, 5), seed=11)
    cf = randn((2, 3, 6, 7), seed=12)
    return {
        "step-slices": base[::2, ::2, :, 1:4],
        "negative-strides": randn((2, 6, 7, 3), seed=13)[:, ::-1, ::-1, :],
        "transposed-view": cf.transpose(0, 2, 3, 1),
        "fortran": np.asfortranarray(randn((2, 6, 7, 3), seed=14)),
        "readonly": readonly(randn((2, 6, 7, 3), seed=15)),
        "broadcast-zero-stride": np.broadcast_to(randn((1, 6, 7, 3), seed=16), (2, 6, 7, 3)),
    }


def _w_variants():
    return {
        "w-contig": W,
        "w-transposed-oihw": np.ascontiguousarray(W.transpose(3, 2, 0, 1)).transpose(2, 3, 1, 0),
        "w-reversed": randn((3, 3, 3, 4), seed=17)[::-1, :, ::-1],
        "w-fortran": np.asfortranarray(W),
    }


def _close(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wname", list(_w_variants()))
@pytest.mark.parametrize("xname", list(_x_variants()))
def test_layout_invariance_conv(xname, wname):
    x, w = _x_variants()[xname], _w_variants()[wname]
    assert x.shape == (2, 6, 7, 3) and w.shape == (3, 3, 3, 4)
    xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
    for p in (dict(), dict(stride=2, padding="same", padding_mode="reflect"),
              dict(dilation=2, padding=1, padding_mode="circular", flip=True)):
        for a in conv_candidates(xc, wc, **p):
            _close(nc.conv(x, w, algorithm=a, **p), nc.conv(xc, wc, algorithm=a, **p))


def test_layout_invariance_channels_first_views():
    xl = randn((2, 6, 7, 3), seed=21)
    x_cf_view = xl.transpose(0, 3, 1, 2)                 # NCHW view of an NHWC buffer
    w_oihw_view = W.transpose(3, 2, 0, 1)                # OIHW view of an HWIO buffer
    xc, wc = np.ascontiguousarray(x_cf_view), np.ascontiguousarray(w_oihw_view)
    p = dict(data_format="channels_first", padding="same", stride=2)
    for a in conv_candidates(xc, wc, **p):
        _close(nc.conv(x_cf_view, w_oihw_view, algorithm=a, **p),
               nc.conv(xc, wc, algorithm=a, **p))


@pytest.mark.parametrize("xname", ["step-slices", "transposed-view", "fortran", "readonly",
                                   "negative-strides"])
def test_layout_invariance_other_ops(xname):
    x = _x_variants()[xname]
    xc = np.ascontiguousarray(x)
    p = dict(stride=2, padding="same", padding_mode="symmetric")
    y = nc.conv(xc, W, **p)
    dyc = randn(y.shape, seed=22)
    dy = np.asfortranarray(dyc)[..., ::1]
    dy_strided = np.repeat(dyc, 2, axis=2)[:, :, ::2]
    for d in (dy, dy_strided):
        for a, r in all_algorithms(nc.conv_backprop_input, d, _w_variants()["w-reversed"],
                                   x.shape, **p).items():
            _close(r, nc.conv_backprop_input(dyc, np.ascontiguousarray(
                _w_variants()["w-reversed"]), x.shape, algorithm=a, **p))
        for a, r in all_algorithms(nc.conv_backprop_filter, x, d, W.shape, **p).items():
            _close(r, nc.conv_backprop_filter(xc, dyc, W.shape, algorithm=a, **p))
    wt_view = np.asfortranarray(WT)
    for a, r in all_algorithms(nc.conv_transpose, x, wt_view, stride=2, padding="same").items():
        _close(r, nc.conv_transpose(xc, WT, stride=2, padding="same", algorithm=a))
    dw_view = np.ascontiguousarray(DW[:, ::-1])[:, ::-1]      # negative stride, same values
    for a, r in all_algorithms(nc.depthwise_conv2d, x, dw_view, padding="same").items():
        _close(r, nc.depthwise_conv2d(xc, DW, padding="same", algorithm=a))
    for a, r in all_algorithms(nc.separable_conv2d, x, np.asfortranarray(DW),
                               np.asfortranarray(PW), padding="same").items():
        _close(r, nc.separable_conv2d(xc, DW, PW, padding="same", algorithm=a))


# ---------------------------------------------------------------------------------------------
# 3. Empty batch
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_empty_batch(data_format):
    cl = data_format == "channels_last"
    x1 = randn((1, 6, 7, 3) if cl else (1, 3, 6, 7), seed=31)
    w = W if cl else np.ascontiguousarray(W.transpose(3, 2, 0, 1))
    wt = WT if cl else np.ascontiguousarray(WT.transpose(3, 2, 0, 1))   # (in, out, kh, kw)
    x0 = x1[:0]
    p = dict(stride=2, padding="same", data_format=data_format)

    y1 = nc.conv(x1, w, **p)
    for a in conv_candidates(x0, w, **p):
        y0 = nc.conv(x0, w, bias=B, algorithm=a, **p)
        assert y0.shape == (0,) + y1.shape[1:] and y0.dtype == y1.dtype, a
    dy0 = np.zeros((0,) + y1.shape[1:])
    for a, dx in all_algorithms(nc.conv_backprop_input, dy0, w, x0.shape, **p).items():
        assert dx.shape == x0.shape, a
    for a, dw in all_algorithms(nc.conv_backprop_filter, x0, dy0, w.shape, **p).items():
        assert dw.shape == w.shape, a
        assert np.array_equal(dw, np.zeros(w.shape)), a  # sum over an empty batch
    t1 = nc.conv_transpose(x1, wt, stride=2, padding="same", data_format=data_format)
    for a, t0 in all_algorithms(nc.conv_transpose, x0, wt, stride=2, padding="same",
                                data_format=data_format).items():
        assert t0.shape == (0,) + t1.shape[1:], a
    d1 = nc.depthwise_conv2d(x1, DW, padding="same", data_format=data_format)
    for a, d0 in all_algorithms(nc.depthwise_conv2d, x0, DW, padding="same",
                                data_format=data_format).items():
        assert d0.shape == (0,) + d1.shape[1:], a
    s1 = nc.separable_conv2d(x1, DW, PW, data_format=data_format)
    for a, s0 in all_algorithms(nc.separable_conv2d, x0, DW, PW,
                                data_format=data_format).items():
        assert s0.shape == (0,) + s1.shape[1:], a


def test_empty_batch_1d_and_3d():
    for x, w in [(np.zeros((0, 9, 2)), np.ones((3, 2, 5))),
                 (np.zeros((0, 4, 5, 3, 2)), np.ones((2, 2, 2, 2, 3)))]:
        y = nc.conv(x, w, padding="same")
        assert y.shape == x.shape[:-1] + (w.shape[-1],)


# ---------------------------------------------------------------------------------------------
# 4. NaN / Inf locality
# ---------------------------------------------------------------------------------------------

def resolve_padding(padding, n, k, s, d):
    """Per-dim (before, after), written from the api.md rules (independent of npconv)."""
    r = len(n)
    keff = [(k[i] - 1) * d[i] + 1 for i in range(r)]
    if padding == "valid":
        return [(0, 0)] * r
    if padding == "same":
        out = []
        for i in range(r):
            total = max((-(-n[i] // s[i]) - 1) * s[i] + keff[i] - n[i], 0)
            out.append((total // 2, total - total // 2))
        return out
    if padding == "full":
        return [(ke - 1, ke - 1) for ke in keff]
    if padding == "causal":
        return [(ke - 1, 0) for ke in keff]
    if isinstance(padding, int):
        return [(padding, padding)] * r
    if all(isinstance(p, int) for p in padding):
        return [(p, p) for p in padding]
    return [tuple(p) for p in padding]


def dependency_mask(n, pixel, k, s, d, pads, mode):
    """Boolean mask over output positions whose window (taps only) touches `pixel` or one of
    its copies in the padding.  Plain loops over a padded 0/1 indicator."""
    ind = np.zeros(n)
    ind[pixel] = 1.0
    kw = {"constant_values": 0.0} if NP_PAD_MODE[mode] == "constant" else {}
    padded = np.pad(ind, pads, mode=NP_PAD_MODE[mode], **kw)
    out_shape = tuple((padded.shape[i] - ((k[i] - 1) * d[i] + 1)) // s[i] + 1
                      for i in range(len(n)))
    mask = np.zeros(out_shape, bool)
    for o in np.ndindex(*out_shape):
        total = 0.0
        for t in np.ndindex(*k):
            total += padded[tuple(o[i] * s[i] + t[i] * d[i] for i in range(len(n)))]
        mask[o] = total > 0
    return mask


def _tup(v, r):
    return (v,) * r if isinstance(v, int) else tuple(v)


def _locality_configs():
    cfgs = []
    for mode in MODES:
        cfgs += [
            dict(n=(7, 6), k=(3, 3), stride=1, dilation=1, padding="same", mode=mode),
            dict(n=(7, 6), k=(3, 3), stride=2, dilation=1, padding="same", mode=mode),
            dict(n=(7, 6), k=(3, 3), stride=1, dilation=2, padding=2, mode=mode),
            dict(n=(7, 6), k=(2, 3), stride=(2, 1), dilation=(1, 2),
                 padding=((1, 2), (2, 1)), mode=mode),
        ]
    cfgs += [
        dict(n=(9,), k=(3,), stride=1, dilation=1, padding="causal", mode="zeros"),
        dict(n=(9,), k=(3,), stride=1, dilation=1, padding="full", mode="reflect"),
        dict(n=(9,), k=(3,), stride=2, dilation=2, padding="same", mode="circular"),
        dict(n=(9,), k=(4,), stride=3, dilation=1, padding=(3,), mode="symmetric"),
        dict(n=(7, 6), k=(3, 3), stride=1, dilation=1, padding="same", mode="reflect",
             groups=2, data_format="channels_first"),
        dict(n=(7, 6), k=(3, 3), stride=2, dilation=2, padding="same", mode="replicate",
             groups=2, data_format="channels_first"),
        dict(n=(7, 6), k=(3, 3), stride=1, dilation=1, padding="full", mode="zeros",
             flip=True),
        dict(n=(4, 5, 3), k=(2, 2, 2), stride=1, dilation=1, padding="same", mode="symmetric"),
        dict(n=(4, 5, 3), k=(2, 3, 2), stride=2, dilation=1, padding=1, mode="circular"),
    ]
    return cfgs


LOC_CFGS = _locality_configs()


def _cfg_id(c):
    return "{}d-k{}-s{}-d{}-p{}-{}{}{}".format(
        len(c["n"]), "x".join(map(str, c["k"])), c["stride"], c["dilation"], c["padding"],
        c["mode"], "-g2cf" if c.get("groups") else "", "-flip" if c.get("flip") else ""
    ).replace(" ", "")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("cfg", LOC_CFGS, ids=[_cfg_id(c) for c in LOC_CFGS])
def test_nonfinite_locality(cfg, bad, dtype):
    n, k = cfg["n"], cfg["k"]
    r = len(n)
    s, d = _tup(cfg["stride"], r), _tup(cfg["dilation"], r)
    groups = cfg.get("groups", 1)
    cl = cfg.get("data_format", "channels_last") == "channels_last"
    C, O = (4, 4) if groups > 1 else (2, 3)
    # one bad pixel per batch element: a corner, an interior point, the far corner
    pixels = [(0, tuple(0 for _ in n), 0),
              (1, tuple(m // 2 for m in n), 1 % C),
              (2, tuple(m - 1 for m in n), C - 1)]
    x = np.abs(randn((3,) + n + (C,), dtype, seed=41)) + 0.5
    w = np.abs(randn(k + (C // groups, O), dtype, seed=42)) + 0.5   # all taps non-zero
    for b, pix, c in pixels:
        x[(b,) + pix + (c,)] = bad
    params = dict(stride=cfg["stride"], dilation=cfg["dilation"], padding=cfg["padding"],
                  padding_mode=cfg["mode"], groups=groups, flip=cfg.get("flip", False))
    if cfg["mode"] == "constant":
        params["pad_value"] = -1.5
    if not cl:
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        w = np.ascontiguousarray(np.moveaxis(np.moveaxis(w, -1, 0), -1, 1))
        params["data_format"] = "channels_first"

    pads = resolve_padding(cfg["padding"], n, k, s, d)
    masks = [dependency_mask(n, pix, k, s, d, pads, cfg["mode"]) for _, pix, _ in pixels]
    expected = np.zeros((3,) + masks[0].shape + (O,), bool)
    og = O // groups
    for (b, _, c), m in zip(pixels, masks):
        g = c // (C // groups)
        expected[b, ..., g * og:(g + 1) * og] |= m[..., None]
    if not cl:
        expected = np.moveaxis(expected, -1, 1)

    for a in conv_candidates(x, w, **params):
        y = nc.conv(x, w, algorithm=a, **params)
        assert y.shape == expected.shape, a
        got = ~np.isfinite(y)
        if np.isnan(bad):
            assert np.array_equal(np.isnan(y), got), f"{a}: NaN input produced Inf outputs"
        wrong = np.argwhere(got != expected)
        assert wrong.size == 0, (
            f"algorithm={a}: {len(wrong)} outputs with wrong finiteness, e.g. index "
            f"{tuple(wrong[0])} expected non-finite={expected[tuple(wrong[0])]}")


# ---------------------------------------------------------------------------------------------
# 5. Determinism
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [
    dict(padding="same"),
    dict(stride=2, dilation=2, padding="same", padding_mode="reflect"),
    dict(padding=1, groups=3),
], ids=["same", "s2d2-reflect", "grouped"])
def test_deterministic_conv(p, dtype):
    x = randn((2, 9, 8, 3), dtype, seed=51)
    w = randn((3, 3, 3 // p.get("groups", 1), 6), dtype, seed=52)
    other_x = randn((1, 17, 5, 3), dtype, seed=53)
    other_w = randn((2, 4, 3, 2), dtype, seed=57)
    for a in conv_candidates(x, w, **p):
        first = nc.conv(x, w, algorithm=a, **p)
        nc.conv(other_x, other_w, padding="same")        # unrelated call in between
        for _ in range(2):
            assert same_bits(first, nc.conv(x, w, algorithm=a, **p)), a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deterministic_other_ops(dtype):
    x = randn((2, 9, 8, 3), dtype, seed=54)
    w = randn((3, 3, 3, 4), dtype, seed=55)
    p = dict(stride=2, padding="same", padding_mode="circular")
    dy = randn(nc.conv(x, w, **p).shape, dtype, seed=56)
    calls = [
        lambda a: nc.conv_backprop_input(dy, w, x.shape, algorithm=a, **p),
        lambda a: nc.conv_backprop_filter(x, dy, w.shape, algorithm=a, **p),
        lambda a: nc.conv_transpose(x, WT.astype(dtype), stride=2, padding="same",
                                    algorithm=a),
        lambda a: nc.depthwise_conv2d(x, DW.astype(dtype), padding="same", algorithm=a),
        lambda a: nc.separable_conv2d(x, DW.astype(dtype), PW.astype(dtype), algorithm=a),
    ]
    for call in calls:
        for a, first in all_algorithms(lambda algorithm: call(algorithm)).items():
            assert same_bits(first, call(a)), a
            assert same_bits(first, call(a)), a


# ---------------------------------------------------------------------------------------------
# 6. dtype rules
# ---------------------------------------------------------------------------------------------

DTYPE_CASES = [
    (np.float16, np.float16, np.float16),
    (np.float32, np.float32, np.float32),
    (np.float64, np.float64, np.float64),
    (np.int32, np.int32, np.float32),
    (np.int64, np.int64, np.float32),
    (np.uint8, np.uint8, np.float32),
    (np.bool_, np.bool_, np.float32),
    (np.int32, np.float32, np.float32),
    (np.uint8, np.float32, np.float32),
    (np.int64, np.float64, np.float64),
    (np.float64, np.int32, np.float64),
    (np.float16, np.float32, np.float32),
    (np.float32, np.float16, np.float32),
    (np.float16, np.int32, np.float32),
    (np.float32, np.float64, np.float64),
]


def _rule(a, b):
    """Conventions: float16/32/64 keep their dtype, int/bool compute in float32; result is
    np.result_type of the two compute dtypes."""
    def compute(d):
        return np.dtype(d) if np.issubdtype(d, np.floating) else np.dtype(np.float32)
    return np.result_type(compute(a), compute(b))


def _typed(shape, dtype, seed):
    v = rng(seed).integers(0, 4, size=shape)
    if dtype == np.bool_:
        return (v % 2).astype(bool)
    if np.issubdtype(dtype, np.floating):
        return (v / 4.0).astype(dtype)       # exactly representable even in float16
    return v.astype(dtype)


@pytest.mark.parametrize("xd, wd, expected", DTYPE_CASES,
                         ids=[f"{np.dtype(a).name}-{np.dtype(b).name}"
                              for a, b, _ in DTYPE_CASES])
def test_dtype_rules(xd, wd, expected):
    x = _typed((2, 6, 5, 3), xd, 61)
    w = _typed((3, 3, 3, 4), wd, 62)
    assert _rule(xd, wd) == expected  # the table agrees with the conventions' rule
    ref = nc.conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    y = nc.conv(x, w, padding="same")
    assert y.dtype == expected
    np.testing.assert_allclose(y, ref, rtol=1e-3 if expected == np.float16 else 1e-6)
    assert x.dtype == xd and w.dtype == wd

    dy = _typed(y.shape, xd, 63)
    assert nc.conv_backprop_input(dy, w, x.shape, padding="same").dtype == expected
    # conv_backprop_filter's operands are x and dy (both of x's dtype here)
    assert nc.conv_backprop_filter(x, dy, w.shape, padding="same").dtype == _rule(xd, xd)
    wt = _typed((3, 3, 2, 3), wd, 64)
    assert nc.conv_transpose(x, wt, stride=2, padding="same").dtype == expected
    dw = _typed((3, 3, 3, 1), wd, 65)
    assert nc.depthwise_conv2d(x, dw, padding="same").dtype == expected


def test_float16_computed_in_float32():
    # 1024 + 0.375 + 0.375: a float16 accumulator (spacing 1.0 at 1024) sums in order to 1024,
    # float32 accumulation gives 1024.75, which rounds to 1025 in float16.
    x = np.array([1024, 0.375, 0.375], np.float16).reshape(1, 3, 1)
    w = np.ones((3, 1, 1), np.float16)
    y = nc.conv(x, w)
    assert y.dtype == np.float16 and float(y[0, 0, 0]) == 1025.0


# ---------------------------------------------------------------------------------------------
# 7. Python lists
# ---------------------------------------------------------------------------------------------

def test_python_lists():
    # npconv accepts nested Python lists (converted with np.asarray): a list of Python floats
    # becomes float64, so the result is bitwise the float64 ndarray result.
    x = _typed((1, 5, 4, 2), np.float64, 71)
    w = _typed((3, 3, 2, 3), np.float64, 72)
    y = nc.conv(x.tolist(), w.tolist(), padding="same")
    assert isinstance(y, np.ndarray)
    assert same_bits(y, nc.conv(x, w, padding="same"))
