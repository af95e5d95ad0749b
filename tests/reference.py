"""Independent reference convolution for the tests.

Imports only NumPy — nothing from npconv — and is written from the definitions, so it can disagree
with npconv's algorithms.  Everything is computed in float64 on channels-first arrays:

* padding: every padded element is filled from an explicit index rule per mode (no ``np.pad``);
* convolution: ``as_strided`` windows + ``np.einsum``, group by group;
* transposed convolution: the scatter definition (each input element times the kernel added into
  the output at ``i * stride + t * dilation - pad_before``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided


def resolve_padding(padding, in_spatial, kernel, stride, dilation):
    """One (before, after) pair per spatial dim, from any accepted padding form."""
    rank = len(in_spatial)
    if isinstance(padding, str):
        padding = padding.lower()
        pairs = []
        for n, k, s, d in zip(in_spatial, kernel, stride, dilation):
            extent = (k - 1) * d + 1
            if padding == "valid":
                pairs.append((0, 0))
            elif padding == "same":  # TensorFlow: out = ceil(n / s)
                out = math.ceil(n / s)
                total = max((out - 1) * s + extent - n, 0)
                pairs.append((total // 2, total - total // 2))
            elif padding == "full":
                pairs.append((extent - 1, extent - 1))
            elif padding == "causal":
                pairs.append((extent - 1, 0))
            else:
                raise ValueError(padding)
        return pairs
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    padding = list(padding)
    if all(isinstance(p, int) for p in padding):
        return [(p, p) for p in padding]
    return [tuple(p) for p in padding]


def source_index(i, n, mode):
    """Index in [0, n) that padded offset i (relative to the first interior element) copies."""
    if 0 <= i < n:
        return i
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    if mode == "reflect":  # mirror about the edge pixel: ... 2 1 | 0 1 2 ... (needs |i| < n)
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "symmetric":  # mirror including the edge pixel: ... 1 0 | 0 1 2 ...
        return -i - 1 if i < 0 else 2 * n - 1 - i
    raise ValueError(mode)


def pad_reference(x, pads, mode="zeros", value=0.0):
    """Pad the spatial dims (2:) of a channels-first float64 array, element by element rule."""
    spatial = x.shape[2:]
    out_spatial = [n + lo + hi for n, (lo, hi) in zip(spatial, pads)]
    out = np.empty(x.shape[:2] + tuple(out_spatial))
    for position in itertools.product(*[range(m) for m in out_spatial]):
        offsets = [p - lo for p, (lo, _) in zip(position, pads)]
        inside = all(0 <= o < n for o, n in zip(offsets, spatial))
        if inside:
            out[(..., *position)] = x[(..., *offsets)]
        elif mode in ("zeros", "constant"):
            out[(..., *position)] = value if mode == "constant" else 0.0
        else:
            source = [source_index(o, n, mode) for o, n in zip(offsets, spatial)]
            out[(..., *position)] = x[(..., *source)]
    return out


def to_channels_first(x, data_format):
    if data_format in ("channels_first", "NCW", "NCHW", "NCDHW"):
        return np.asarray(x, dtype=np.float64)
    return np.moveaxis(np.asarray(x, dtype=np.float64), -1, 1)


def from_channels_first(y, data_format):
    return y if data_format in ("channels_first", "NCW", "NCHW", "NCDHW") else np.moveaxis(y, 1, -1)


def kernel_to_oihw(w, data_format, kernel_format=None):
    w = np.asarray(w, dtype=np.float64)
    if kernel_format is None:
        spatial_first = data_format not in ("channels_first", "NCW", "NCHW", "NCDHW")
    else:
        spatial_first = kernel_format.endswith("IO")
    if spatial_first:  # (*k, I, O) -> (O, I, *k)
        rank = w.ndim - 2
        return np.transpose(w, (rank + 1, rank, *range(rank)))
    return w


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
    """Float64 convolution (cross-correlation unless flip) by strided windows and einsum."""
    xc = to_channels_first(x, data_format)
    wk = kernel_to_oihw(w, data_format, kernel_format)
    rank = wk.ndim - 2
    if flip:
        wk = wk[(slice(None), slice(None)) + (slice(None, None, -1),) * rank]
    stride = (stride,) * rank if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * rank if isinstance(dilation, int) else tuple(dilation)
    kernel = wk.shape[2:]
    pads = resolve_padding(padding, xc.shape[2:], kernel, stride, dilation)
    xp = pad_reference(xc, pads, padding_mode, pad_value)
    n, c = xp.shape[:2]
    o = wk.shape[0]
    out_spatial = [(p - (k - 1) * d - 1) // s + 1 for p, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)]
    # windows[n, c, *out, *k] = xp[n, c, out*s + t*d]
    strides = xp.strides[:2] + tuple(st * s for st, s in zip(xp.strides[2:], stride))
    strides += tuple(st * d for st, d in zip(xp.strides[2:], dilation))
    windows = as_strided(xp, (n, c, *out_spatial, *kernel), strides, writeable=False)
    letters_out = "xyz"[:rank]
    letters_k = "uvw"[:rank]
    cg, og = c // groups, o // groups
    parts = []
    for g in range(groups):
        parts.append(
            np.einsum(
                f"nc{letters_out}{letters_k},oc{letters_k}->no{letters_out}",
                windows[:, g * cg : (g + 1) * cg],
                wk[g * og : (g + 1) * og],
            )
        )
    y = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0, *out_spatial))
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape((1, -1) + (1,) * rank)
    return from_channels_first(y, data_format)


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
    """Transposed convolution by scattering: out[i*s + t*d - before] += x[i] * w[t].

    ``w``: channels_last (*k, out // groups, in) (Keras), channels_first (in, out // groups, *k)
    (PyTorch). Output sizes: Keras for string padding, PyTorch for explicit padding.
    """
    xc = to_channels_first(x, data_format)
    w = np.asarray(w, dtype=np.float64)
    rank = w.ndim - 2
    if data_format in ("channels_first", "NCW", "NCHW", "NCDHW"):
        wk = w  # (in, out_g, *k)
    else:
        wk = np.transpose(w, (rank + 1, rank, *range(rank)))  # (*k, out_g, in) -> (in, out_g, *k)
    stride = (stride,) * rank if isinstance(stride, int) else tuple(stride)
    dilation = (dilation,) * rank if isinstance(dilation, int) else tuple(dilation)
    if output_padding is not None and isinstance(output_padding, int):
        output_padding = (output_padding,) * rank
    kernel = wk.shape[2:]
    n, cin = xc.shape[:2]
    out_channels = wk.shape[1] * groups
    lengths, befores = [], []
    for i, (size, k, s, d) in enumerate(zip(xc.shape[2:], kernel, stride, dilation)):
        extent = (k - 1) * d + 1
        op = None if output_padding is None else output_padding[i]
        if isinstance(padding, str):
            mode = padding.lower()
            if op is None:
                length = size * s + max(extent - s, 0) if mode == "valid" else size * s
            else:
                pad = extent // 2 if mode == "same" else 0
                length = (size - 1) * s + extent - 2 * pad + op
            if mode == "valid":
                before = 0
            else:  # TF computes SAME padding from the output length
                total = max((math.ceil(length / s) - 1) * s + extent - length, 0)
                before = total // 2
        else:
            pairs = resolve_padding(padding, xc.shape[2:], kernel, stride, dilation)
            before, after = pairs[i]
            length = (size - 1) * s - before - after + extent + (op or 0)
        lengths.append(length)
        befores.append(before)
    out = np.zeros((n, out_channels, *lengths))
    cin_g = cin // groups
    og = wk.shape[1]
    for position in itertools.product(*[range(m) for m in xc.shape[2:]]):
        for tap in itertools.product(*[range(k) for k in kernel]):
            target = [p * s + t * d - b for p, t, s, d, b in zip(position, tap, stride, dilation, befores)]
            if not all(0 <= q < length for q, length in zip(target, lengths)):
                continue
            for g in range(groups):
                contribution = np.einsum(
                    "ni,io->no", xc[(slice(None), slice(g * cin_g, (g + 1) * cin_g), *position)],
                    wk[(slice(g * cin_g, (g + 1) * cin_g), slice(None), *tap)],
                )
                out[(slice(None), slice(g * og, (g + 1) * og), *target)] += contribution
    if bias is not None:
        out += np.asarray(bias, np.float64).reshape((1, -1) + (1,) * rank)
    return from_channels_first(out, data_format)


def expected_dtype(*dtypes):
    """npconv's output dtype rule: floats keep theirs, bool/int count as float32, widest wins."""
    floats = [np.dtype(d) if np.dtype(d).kind == "f" else np.dtype(np.float32) for d in dtypes]
    return np.result_type(*floats)
