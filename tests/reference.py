"""Independent float64 reference convolutions for npconv's test suites.

Imports only NumPy (never npconv, never scipy.signal) and is written from the definitions and the
public contract (``shared/design/api.md`` and the conventions file), so it can disagree with npconv:

* ``pad_reference``: every padded element is taken from an explicit per-mode index rule
  (zeros/constant fill, reflect = mirror without the edge, symmetric = mirror with the edge,
  replicate = edge, circular = wrap), not from ``np.pad``;
* ``conv_reference``: padding resolved here (valid, TF same, full, causal, int, per-dim, pairs),
  channels-first/OIHW, ``as_strided`` windows and one ``np.einsum`` per group, in float64;
* ``conv_transpose_reference``: the scatter definition -- every input element times the kernel is
  added into the output at ``i * stride + t * dilation - pad_before`` -- with Keras output sizes for
  string padding and PyTorch sizes for explicit padding (+ output_padding);
* ``expected_dtype``: the output dtype rule.

The second half holds a seeded random-configuration generator (test support, NumPy only) shared by
the agreement, gradient and consistency suites.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

CHANNELS_FIRST_NAMES = ("channels_first", "NCW", "NCHW", "NCDHW")
CHANNELS_LAST_NAMES = ("channels_last", "NWC", "NHWC", "NDHWC")


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def is_channels_first(data_format) -> bool:
    if data_format in CHANNELS_FIRST_NAMES:
        return True
    if data_format in CHANNELS_LAST_NAMES:
        return False
    raise ValueError(f"unknown data_format {data_format!r}")


def as_tuple(value, rank):
    """An int, or one int per spatial dim, as a tuple of ``rank`` Python ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * rank
    value = tuple(int(v) for v in value)
    if len(value) != rank:
        raise ValueError(f"expected {rank} values, got {value}")
    return value


def effective_size(k, d):
    """Extent of a kernel of size k dilated by d."""
    return (k - 1) * d + 1


def to_channels_first(x, data_format):
    x = np.asarray(x).astype(np.float64)
    return x if is_channels_first(data_format) else np.moveaxis(x, -1, 1)


def from_channels_first(y, data_format):
    return y if is_channels_first(data_format) else np.moveaxis(y, 1, -1)


def kernel_is_spatial_first(data_format, kernel_format=None) -> bool:
    """True for the (*k, I, O) 'HWIO' layout, False for the (O, I, *k) 'OIHW' layout."""
    if kernel_format is None:
        return not is_channels_first(data_format)
    if kernel_format.startswith("OI"):
        return False
    if kernel_format.endswith("IO"):
        return True
    raise ValueError(f"unknown kernel_format {kernel_format!r}")


def kernel_to_oihw(w, data_format, kernel_format=None):
    w = np.asarray(w).astype(np.float64)
    rank = w.ndim - 2
    if kernel_is_spatial_first(data_format, kernel_format):  # (*k, I, O) -> (O, I, *k)
        return np.transpose(w, (rank + 1, rank, *range(rank)))
    return w


def oihw_to_kernel(w_oihw, data_format, kernel_format=None):
    """Inverse of kernel_to_oihw (for building kernels in a requested layout)."""
    rank = w_oihw.ndim - 2
    if kernel_is_spatial_first(data_format, kernel_format):  # (O, I, *k) -> (*k, I, O)
        return np.transpose(w_oihw, (*range(2, rank + 2), 1, 0))
    return w_oihw


# --------------------------------------------------------------------------------------------------
# padding
# --------------------------------------------------------------------------------------------------


def resolve_padding(padding, in_spatial, kernel, stride=1, dilation=1):
    """One (before, after) pair per spatial dim, from every padding form of the contract.

    ``"same"`` is TensorFlow's rule for any stride/dilation:
    ``total = max((ceil(n / s) - 1) * s + keff - n, 0)``, ``before = total // 2``.
    """
    rank = len(in_spatial)
    kernel = as_tuple(kernel, rank)
    stride = as_tuple(stride, rank)
    dilation = as_tuple(dilation, rank)
    if isinstance(padding, str):
        form = padding.lower()
        if form == "causal" and rank != 1:
            raise ValueError("causal padding is 1-D only")
        pairs = []
        for n, k, s, d in zip(in_spatial, kernel, stride, dilation):
            keff = effective_size(k, d)
            if form == "valid":
                pairs.append((0, 0))
            elif form == "same":
                total = max((math.ceil(n / s) - 1) * s + keff - n, 0)
                pairs.append((total // 2, total - total // 2))
            elif form == "full":
                pairs.append((keff - 1, keff - 1))
            elif form == "causal":
                pairs.append((keff - 1, 0))
            else:
                raise ValueError(f"unknown padding {padding!r}")
        return pairs
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * rank
    items = list(padding)
    if len(items) != rank:
        raise ValueError(f"padding {padding!r} does not have {rank} entries")
    pairs = []
    for item in items:
        if isinstance(item, (int, np.integer)):
            pairs.append((int(item), int(item)))
        else:
            before, after = item
            pairs.append((int(before), int(after)))
    return pairs


def source_index(offset, n, mode):
    """Which input index (in [0, n)) the padded element at ``offset`` copies.

    ``offset`` is relative to the first interior element (negative: before the input, >= n: after
    it).  Returns None where the element is a fill value (zeros/constant outside the input).
    """
    if 0 <= offset < n:
        return offset
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":  # the nearest edge element
        return 0 if offset < 0 else n - 1
    if mode == "circular":  # wrap around: ... n-2 n-1 | 0 1 ... n-1 | 0 1 ...
        return offset % n
    if mode == "reflect":  # mirror about the edge element, edge not repeated: ... 2 1 | 0 1 2 ...
        if n == 1:
            return 0
        period = 2 * (n - 1)
        j = offset % period
        return j if j < n else period - j
    if mode == "symmetric":  # mirror including the edge element: ... 1 0 | 0 1 2 ...
        period = 2 * n
        j = offset % period
        return j if j < n else period - 1 - j
    raise ValueError(f"unknown padding_mode {mode!r}")


# the largest pad per side each mode allows (None: unlimited), as a function of the input size n
MODE_MAX_PAD = {
    "zeros": lambda n: None,
    "constant": lambda n: None,
    "replicate": lambda n: None,
    "reflect": lambda n: n - 1,
    "symmetric": lambda n: n,
    "circular": lambda n: n,
}


def pads_legal(pads, in_spatial, mode):
    for n, (before, after) in zip(in_spatial, pads):
        if before < 0 or after < 0:
            return False
        limit = MODE_MAX_PAD[mode](n)
        if limit is not None and max(before, after) > limit:
            return False
    return True


def pad_reference(x_cf, pads, mode="zeros", value=0.0):
    """Pad the spatial dims (2:) of a channels-first array; float64 result.

    Each output element along each spatial dim copies the input element named by
    ``source_index`` (the per-mode rule above); for zeros/constant an element is the fill value as
    soon as any of its spatial coordinates falls outside the input.
    """
    x = np.asarray(x_cf).astype(np.float64)
    spatial = x.shape[2:]
    if len(pads) != len(spatial):
        raise ValueError("one (before, after) pair per spatial dim")
    indices, insides = [], []
    for n, (before, after) in zip(spatial, pads):
        if before < 0 or after < 0:
            raise ValueError("negative padding")
        sources = [source_index(p - before, n, mode) for p in range(n + before + after)]
        insides.append(np.array([s is not None for s in sources], dtype=bool))
        indices.append(np.array([0 if s is None else s for s in sources], dtype=np.intp))
    out = x[(slice(None), slice(None)) + np.ix_(*indices)]
    if mode in ("zeros", "constant"):
        inside = np.ones(out.shape[2:], dtype=bool)
        for axis, mask in enumerate(insides):
            shape = [1] * len(spatial)
            shape[axis] = mask.size
            inside = inside & mask.reshape(shape)
        fill = 0.0 if mode == "zeros" else float(value)
        out = np.where(inside, out, fill)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------------


def conv_output_spatial(in_spatial, kernel, stride, padding, dilation):
    rank = len(in_spatial)
    kernel, stride, dilation = as_tuple(kernel, rank), as_tuple(stride, rank), as_tuple(dilation, rank)
    pads = resolve_padding(padding, in_spatial, kernel, stride, dilation)
    return tuple(
        (n + lo + hi - effective_size(k, d)) // s + 1
        for n, (lo, hi), k, s, d in zip(in_spatial, pads, kernel, stride, dilation)
    )


def conv_reference(
    x,
    w,
    stride=1,
    padding="valid",
    dilation=1,
    groups=1,
    data_format="channels_last",
    kernel_format=None,
    bias=None,
    padding_mode="zeros",
    pad_value=0.0,
    flip=False,
):
    """Float64 N-D convolution (cross-correlation; true convolution when ``flip``).

    y[n, o, p] = bias[o] + sum_{c in group(o), t} xpad[n, c, p * s + t * d] * w[o, c - c0, t]
    """
    w_oihw = kernel_to_oihw(w, data_format, kernel_format)
    rank = w_oihw.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError("rank 1-3 only")
    xc = to_channels_first(x, data_format)
    if xc.ndim != rank + 2:
        raise ValueError("x and w ranks differ")
    if flip:
        w_oihw = w_oihw[(slice(None), slice(None)) + (slice(None, None, -1),) * rank]
    stride, dilation = as_tuple(stride, rank), as_tuple(dilation, rank)
    kernel = w_oihw.shape[2:]
    batch, channels = xc.shape[:2]
    out_channels = w_oihw.shape[0]
    if channels % groups or out_channels % groups or w_oihw.shape[1] != channels // groups:
        raise ValueError("inconsistent groups/channels")
    pads = resolve_padding(padding, xc.shape[2:], kernel, stride, dilation)
    xp = pad_reference(xc, pads, padding_mode, pad_value)
    out_spatial = tuple(
        (p - effective_size(k, d)) // s + 1 for p, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)
    )
    if any(size < 1 for size in out_spatial):
        raise ValueError("kernel larger than the padded input")
    # windows[n, c, *p, *t] = xp[n, c, p * s + t * d]
    window_strides = (
        xp.strides[:2]
        + tuple(st * s for st, s in zip(xp.strides[2:], stride))
        + tuple(st * d for st, d in zip(xp.strides[2:], dilation))
    )
    windows = as_strided(xp, (batch, channels, *out_spatial, *kernel), window_strides, writeable=False)
    p_letters, t_letters = "pqr"[:rank], "tuv"[:rank]
    spec = f"nc{p_letters}{t_letters},oc{t_letters}->no{p_letters}"
    cg, og = channels // groups, out_channels // groups
    y = np.zeros((batch, out_channels, *out_spatial))
    for g in range(groups):
        y[:, g * og : (g + 1) * og] = np.einsum(
            spec, windows[:, g * cg : (g + 1) * cg], w_oihw[g * og : (g + 1) * og], optimize=True
        )
    if bias is not None:
        y = y + np.asarray(bias).astype(np.float64).reshape((1, out_channels) + (1,) * rank)
    return from_channels_first(y, data_format)


def depthwise_kernel_as_hwio(depthwise_w):
    """(kh, kw, C, M) depthwise kernel -> the equivalent grouped HWIO kernel (kh, kw, 1, C * M).

    Output channel c * M + m of the grouped conv (group c) is input channel c times w[..., c, m].
    """
    kh, kw, c, m = depthwise_w.shape
    return np.asarray(depthwise_w).reshape(kh, kw, 1, c * m)


# --------------------------------------------------------------------------------------------------
# transposed convolution
# --------------------------------------------------------------------------------------------------


def conv_transpose_geometry(in_spatial, kernel, stride=1, padding="valid", output_padding=None, dilation=1):
    """Output lengths and scatter offsets ``pad_before`` per spatial dim.

    String padding (Keras 3): valid -> L = (n - 1) * s + max(keff, s); same -> L = n * s; with
    output_padding: L = (n - 1) * s + keff - 2 * pad + op, pad = keff // 2 (same) or 0 (valid).
    pad_before: 0 for valid; for same, the TensorFlow SAME padding of the forward convolution whose
    input has length L (that is what tf.nn.conv_transpose scatters with).
    Explicit padding (PyTorch): L = (n - 1) * s - before - after + keff + op, pad_before = before.
    """
    rank = len(in_spatial)
    kernel, stride, dilation = as_tuple(kernel, rank), as_tuple(stride, rank), as_tuple(dilation, rank)
    ops = None if output_padding is None else as_tuple(output_padding, rank)
    lengths, befores = [], []
    if isinstance(padding, str):
        form = padding.lower()
        for i, (n, k, s, d) in enumerate(zip(in_spatial, kernel, stride, dilation)):
            keff = effective_size(k, d)
            if ops is None:
                length = (n - 1) * s + max(keff, s) if form == "valid" else n * s
            else:
                pad = keff // 2 if form == "same" else 0
                length = (n - 1) * s + keff - 2 * pad + ops[i]
            if form == "valid":
                before = 0
            elif form == "same":
                total = max((math.ceil(length / s) - 1) * s + keff - length, 0)
                before = total // 2
            else:
                raise ValueError(f"conv_transpose string padding must be valid/same, got {padding!r}")
            lengths.append(length)
            befores.append(before)
    else:
        pairs = resolve_padding(padding, in_spatial, kernel, stride, dilation)
        for i, (n, k, s, d, (before, after)) in enumerate(zip(in_spatial, kernel, stride, dilation, pairs)):
            op = 0 if ops is None else ops[i]
            lengths.append((n - 1) * s - before - after + effective_size(k, d) + op)
            befores.append(before)
    return tuple(lengths), tuple(befores)


def transpose_forward_consistent(in_spatial, kernel, stride=1, padding="valid", output_padding=None, dilation=1):
    """Whether the forward convolution (same padding scheme) maps the transpose's output length back
    to its input length in every dim -- the case where conv_transpose is exactly that forward
    convolution's vjp (TensorFlow refuses the other string-padding cases)."""
    rank = len(in_spatial)
    kernel, stride, dilation = as_tuple(kernel, rank), as_tuple(stride, rank), as_tuple(dilation, rank)
    lengths, _ = conv_transpose_geometry(in_spatial, kernel, stride, padding, output_padding, dilation)
    if any(length < 1 for length in lengths):
        return False
    if isinstance(padding, str):
        back = conv_output_spatial(lengths, kernel, stride, padding.lower(), dilation)
    else:
        pairs = resolve_padding(padding, in_spatial, kernel, stride, dilation)
        back = conv_output_spatial(lengths, kernel, stride, pairs, dilation)
    return tuple(back) == tuple(in_spatial)


def conv_transpose_reference(
    x,
    w,
    stride=1,
    padding="valid",
    output_padding=None,
    dilation=1,
    groups=1,
    data_format="channels_last",
    bias=None,
):
    """Transposed convolution by scattering: out[i * s + t * d - pad_before] += x[i] * w[t].

    ``w``: channels_last (*k, out // groups, in) (Keras Conv*DTranspose), channels_first
    (in, out // groups, *k) (PyTorch ConvTranspose*d).  Contributions that land outside [0, L)
    are dropped (that is the cropping by padding); output_padding only lengthens the output.
    """
    xc = to_channels_first(x, data_format)
    w = np.asarray(w).astype(np.float64)
    rank = w.ndim - 2
    if is_channels_first(data_format):
        w_io = w  # (in, out // g, *k)
    else:
        w_io = np.transpose(w, (rank + 1, rank, *range(rank)))  # (*k, out // g, in) -> (in, out // g, *k)
    stride, dilation = as_tuple(stride, rank), as_tuple(dilation, rank)
    kernel = w_io.shape[2:]
    batch, in_channels = xc.shape[:2]
    if w_io.shape[0] != in_channels or in_channels % groups:
        raise ValueError("inconsistent channels/groups")
    og = w_io.shape[1]
    cg = in_channels // groups
    in_spatial = xc.shape[2:]
    lengths, befores = conv_transpose_geometry(in_spatial, kernel, stride, padding, output_padding, dilation)
    if any(length < 1 for length in lengths):
        raise ValueError(f"empty output {lengths}")
    out = np.zeros((batch, og * groups, *lengths))
    for tap in itertools.product(*[range(k) for k in kernel]):
        sources, targets = [], []
        for n, t, s, d, b, length in zip(in_spatial, tap, stride, dilation, befores, lengths):
            i = np.arange(n)
            target = i * s + t * d - b
            keep = (target >= 0) & (target < length)
            sources.append(i[keep])
            targets.append(target[keep])
        if any(src.size == 0 for src in sources):
            continue
        xs = xc[(slice(None), slice(None)) + np.ix_(*sources)]  # (N, Cin, *m)
        for g in range(groups):
            contribution = np.einsum(
                "nc...,co->no...", xs[:, g * cg : (g + 1) * cg], w_io[(slice(g * cg, (g + 1) * cg), slice(None), *tap)]
            )
            # within one tap distinct inputs land on distinct outputs, so fancy += is exact
            out[(slice(None), slice(g * og, (g + 1) * og)) + np.ix_(*targets)] += contribution
    if bias is not None:
        out += np.asarray(bias).astype(np.float64).reshape((1, -1) + (1,) * rank)
    return from_channels_first(out, data_format)


# --------------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------------


def compute_dtype(dtype):
    """float16/32/64 keep their dtype; integer and bool inputs count as float32."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float32)
    raise TypeError(f"unsupported dtype {dtype}")


def expected_dtype(*dtypes):
    """npconv's result dtype: np.result_type of the operands' compute dtypes."""
    return np.result_type(*[compute_dtype(d) for d in dtypes])


# --------------------------------------------------------------------------------------------------
# seeded random configurations (test support; NumPy only)
# --------------------------------------------------------------------------------------------------

MODES = ("zeros", "constant", "reflect", "replicate", "circular", "symmetric")
PADDING_FORMS = ("valid", "same", "full", "causal", "int", "tuple", "pairs")
LAYOUT_ALIASES = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
KERNEL_FORMATS = {1: ("WIO", "OIW"), 2: ("HWIO", "OIHW"), 3: ("DHWIO", "OIDHW")}
# (x dtype, w dtype), drawn with these weights
DTYPE_PAIRS = (
    (("float64", "float64"), 40),
    (("float32", "float32"), 18),
    (("float16", "float16"), 10),
    (("int32", "int32"), 5),
    (("bool", "bool"), 3),
    (("int32", "float32"), 4),
    (("bool", "float64"), 3),
    (("float16", "float32"), 4),
    (("float32", "float64"), 3),
    (("uint8", "float16"), 3),
    (("int64", "int32"), 3),
    (("float64", "int32"), 2),
    (("int32", "float64"), 2),
)
MAX_SPATIAL = {1: 9, 2: 9, 3: 6}


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 10, shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-5, 6, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _maybe_scalar(rng, values, container=tuple):
    """An int when all values agree (half the time), else a tuple or list."""
    if len(set(values)) == 1 and rng.random() < 0.5:
        return int(values[0])
    return container(int(v) for v in values)


def _padding_value(rng, form, rank):
    if form in ("valid", "same", "full", "causal"):
        return form
    if form == "int":
        return int(rng.integers(0, 4))
    if form == "tuple":
        return tuple(int(v) for v in rng.integers(0, 4, rank))
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, 4, (rank, 2))]
    if rng.random() < 0.5 and pairs[0][0] == pairs[0][1]:
        pairs[0] = (pairs[0][0], (pairs[0][1] + 1) % 4)  # make asymmetry common
    return tuple(pairs) if rng.random() < 0.5 else [list(p) for p in pairs]


def random_conv_config(
    rng,
    index=0,
    *,
    rank=None,
    dtype_pairs=None,
    modes=None,
    forms=None,
    small=False,
    batch_range=(0, 3),
    allow_kernel_format=True,
    allow_aliases=True,
):
    """One valid conv configuration: dict(x, w, bias, params, id).

    ``index`` rotates the padding mode and padding form, so any 42 consecutive indices cover every
    (mode, form) pair; everything else is drawn from ``rng``.  ``small`` keeps tensors tiny
    (for exhaustive finite differences).
    """
    modes = MODES if modes is None else tuple(modes)
    forms = PADDING_FORMS if forms is None else tuple(forms)
    mode = modes[index % len(modes)]
    form = forms[(index // len(modes)) % len(forms)]
    if form == "causal":
        rank = 1
    for _attempt in range(10_000):
        r = int(rng.integers(1, 4)) if rank is None else rank
        max_n = 4 if small else MAX_SPATIAL[r]
        in_spatial = tuple(int(v) for v in rng.integers(1, max_n + 1, r))
        kernel = tuple(int(v) for v in rng.integers(1, (3 if small or r == 3 else 4) + 1, r))
        stride = tuple(int(v) for v in rng.integers(1, 4, r))
        dilation = tuple(int(v) for v in rng.integers(1, 4, r))
        padding = _padding_value(rng, form, r)
        pads = resolve_padding(padding, in_spatial, kernel, stride, dilation)
        if not pads_legal(pads, in_spatial, mode):
            continue
        if any(n + lo + hi < effective_size(k, d) for n, (lo, hi), k, d in zip(in_spatial, pads, kernel, dilation)):
            continue
        break
    else:
        raise RuntimeError("could not draw a configuration")
    # channels and groups
    kind = ("plain", "plain", "grouped", "depthwise")[int(rng.integers(4))]
    max_c = 2 if small else 6
    if kind == "grouped" and max_c >= 4:
        groups = int(rng.integers(2, 4))
        cin = groups * int(rng.integers(1, max_c // groups + 1))
        cout = groups * int(rng.integers(1, max_c // groups + 1))
    elif kind == "depthwise":
        groups = int(rng.integers(1, max_c + 1))
        cin = groups
        cout = groups * int(rng.integers(1, max_c // groups + 1))
    else:
        kind = "plain"
        groups, cin, cout = 1, int(rng.integers(1, max_c + 1)), int(rng.integers(1, max_c + 1))
    lo_b, hi_b = batch_range
    if lo_b == 0 and rng.random() < 0.06:
        batch = 0  # empty batches, rarely
    else:
        batch = int(rng.integers(max(lo_b, 1), hi_b + 1))
    if small:
        batch = min(batch, 2)
    channels_first = bool(rng.random() < 0.5)
    if allow_aliases and rng.random() < 0.25:
        data_format = LAYOUT_ALIASES[r][1 if channels_first else 0]
    else:
        data_format = "channels_first" if channels_first else "channels_last"
    kernel_format = None
    if allow_kernel_format and rng.random() < 0.25:
        kernel_format = KERNEL_FORMATS[r][int(rng.integers(2))]
    spatial_first = kernel_is_spatial_first(data_format, kernel_format)
    x_shape = (batch, cin, *in_spatial) if channels_first else (batch, *in_spatial, cin)
    w_shape = (*kernel, cin // groups, cout) if spatial_first else (cout, cin // groups, *kernel)
    pairs = DTYPE_PAIRS if dtype_pairs is None else tuple((p, 1) for p in dtype_pairs)
    weights = np.array([wt for _, wt in pairs], dtype=float)
    x_dtype, w_dtype = pairs[int(rng.choice(len(pairs), p=weights / weights.sum()))][0]
    x = random_array(rng, x_shape, x_dtype)
    w = random_array(rng, w_shape, w_dtype)
    out_dtype = expected_dtype(x.dtype, w.dtype)
    bias = rng.standard_normal(cout).astype(out_dtype) if rng.random() < 0.5 else None
    params = dict(
        stride=_maybe_scalar(rng, stride, tuple if rng.random() < 0.5 else list),
        padding=padding,
        dilation=_maybe_scalar(rng, dilation),
        groups=groups,
        data_format=data_format,
        kernel_format=kernel_format,
        padding_mode=mode,
        pad_value=float(np.round(rng.uniform(-2, 2), 2)) if mode == "constant" else 0.0,
        flip=bool(rng.random() < 0.3),
    )
    config = dict(x=x, w=w, bias=bias, params=params, index=index, kind=kind)
    config["id"] = describe_config(config)
    return config


def describe_config(config):
    """A readable one-line description (enough to rebuild the call, up to the random values)."""
    x, w, bias, p = config["x"], config["w"], config["bias"], config["params"]
    parts = [
        f"#{config.get('index', '?')}",
        f"x{tuple(x.shape)}:{x.dtype}",
        f"w{tuple(w.shape)}:{w.dtype}",
        f"data_format={p['data_format']}",
    ]
    if p.get("kernel_format") is not None:
        parts.append(f"kernel_format={p['kernel_format']}")
    parts += [
        f"stride={p['stride']}",
        f"dilation={p['dilation']}",
        f"padding={p['padding']!r}",
        f"padding_mode={p['padding_mode']}",
    ]
    if p["padding_mode"] == "constant":
        parts.append(f"pad_value={p['pad_value']}")
    parts.append(f"groups={p['groups']}")
    if p.get("flip"):
        parts.append("flip=True")
    if bias is not None:
        parts.append(f"bias:{bias.dtype}")
    return " ".join(parts)


def call_repro(config, function="nc.conv", algorithm=None):
    """A copy-pastable reproduction (arrays rebuilt from their values)."""
    x, w, bias, p = config["x"], config["w"], config["bias"], config["params"]
    args = [f"np.array({x.tolist()!r}, dtype='{x.dtype}')", f"np.array({w.tolist()!r}, dtype='{w.dtype}')"]
    kwargs = [f"{k}={v!r}" for k, v in p.items()]
    if bias is not None:
        kwargs.append(f"bias=np.array({bias.tolist()!r}, dtype='{bias.dtype}')")
    if algorithm is not None:
        kwargs.append(f"algorithm={algorithm!r}")
    return f"{function}({', '.join(args + kwargs)})"
