"""Argument parsing, validation and shape arithmetic for every convolution.

Everything a user passes (strides, padding strings, layouts, dtypes, ...) is checked here once and
turned into a frozen :class:`ConvSpec`.  Algorithms only ever see a ``ConvSpec`` and arrays in one
internal layout, so no algorithm branches on user-facing strings.

Shape rule (integer arithmetic only), per spatial dim with input ``n``, padding ``lo``/``hi``,
kernel ``k``, dilation ``d`` and stride ``s``::

    out = (n + lo + hi - d * (k - 1) - 1) // s + 1
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from dataclasses import dataclass

import numpy as np

PADDING_MODES = ("zeros", "constant", "reflect", "replicate", "circular", "symmetric")

# data_format spellings -> (channels_last, rank or None when any rank is fine)
_DATA_FORMATS = {
    "channels_last": (True, None),
    "channels_first": (False, None),
    "NWC": (True, 1),
    "NCW": (False, 1),
    "NHWC": (True, 2),
    "NCHW": (False, 2),
    "NDHWC": (True, 3),
    "NCDHW": (False, 3),
}
# kernel_format spellings -> (spatial dims first, rank)
_KERNEL_FORMATS = {
    "WIO": (True, 1),
    "HWIO": (True, 2),
    "DHWIO": (True, 3),
    "OIW": (False, 1),
    "OIHW": (False, 2),
    "OIDHW": (False, 3),
}


def received(**values) -> str:
    """Keras-style tail of an error message: ``Received: stride=0, padding='foo'``."""
    return "Received: " + ", ".join(f"{name}={value!r}" for name, value in values.items())


def _shape_repr(shape) -> tuple:
    return tuple(int(v) for v in shape)


# --------------------------------------------------------------------------- scalar arguments


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def normalize_ints(value, rank: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each ``>= minimum``, as a tuple of ``rank`` ints."""
    if _is_int(value):
        items = (int(value),) * rank
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) != rank:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected an int or {rank} ints "
                f"(one per spatial dim). {received(**{name: value})}"
            )
        items = tuple(int(v) for v in value)
    else:
        raise TypeError(
            f"Invalid type for argument `{name}`: expected an int or a tuple of {rank} ints. "
            f"{received(**{name: value})}"
        )
    if any(v < minimum for v in items):
        raise ValueError(
            f"Invalid value for argument `{name}`: every entry must be >= {minimum}. "
            f"{received(**{name: value})}"
        )
    return items


def parse_data_format(data_format, rank: int | None = None) -> bool:
    """Return True for channels_last. Accepts 'channels_last'/'channels_first' and 'NHWC'-style."""
    if not isinstance(data_format, str) or data_format not in _DATA_FORMATS:
        raise ValueError(
            "Invalid value for argument `data_format`: expected 'channels_last', 'channels_first' "
            f"or one of {sorted(set(_DATA_FORMATS) - {'channels_last', 'channels_first'})}. "
            f"{received(data_format=data_format)}"
        )
    channels_last, format_rank = _DATA_FORMATS[data_format]
    if rank is not None and format_rank is not None and format_rank != rank:
        raise ValueError(
            f"Invalid value for argument `data_format`: {data_format!r} is for {format_rank}-D "
            f"convolution but the kernel has {rank} spatial dims. {received(data_format=data_format)}"
        )
    return channels_last


def parse_kernel_format(kernel_format, rank: int, channels_last: bool) -> bool:
    """Return True when the kernel's spatial dims come first (HWIO), False for OIHW."""
    if kernel_format is None:
        return channels_last
    if not isinstance(kernel_format, str) or kernel_format not in _KERNEL_FORMATS:
        raise ValueError(
            "Invalid value for argument `kernel_format`: expected None or one of "
            f"{sorted(_KERNEL_FORMATS)}. {received(kernel_format=kernel_format)}"
        )
    spatial_first, format_rank = _KERNEL_FORMATS[kernel_format]
    if format_rank != rank:
        raise ValueError(
            f"Invalid value for argument `kernel_format`: {kernel_format!r} is for {format_rank}-D "
            f"kernels but the kernel has {rank} spatial dims. {received(kernel_format=kernel_format)}"
        )
    return spatial_first


def parse_padding_mode(padding_mode) -> str:
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(
            f"Invalid value for argument `padding_mode`: expected one of {list(PADDING_MODES)}. "
            f"{received(padding_mode=padding_mode)}"
        )
    return padding_mode


def parse_pad_value(pad_value) -> float:
    if not isinstance(pad_value, numbers.Real) or isinstance(pad_value, (bool, np.bool_)):
        raise TypeError(
            f"Invalid type for argument `pad_value`: expected a real number. "
            f"{received(pad_value=pad_value)}"
        )
    return float(pad_value)


def parse_flip(flip) -> bool:
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"Invalid type for argument `flip`: expected a bool. {received(flip=flip)}")
    return bool(flip)


def parse_groups(groups) -> int:
    if not _is_int(groups):
        raise TypeError(f"Invalid type for argument `groups`: expected an int. {received(groups=groups)}")
    if groups < 1:
        raise ValueError(f"Invalid value for argument `groups`: must be >= 1. {received(groups=groups)}")
    return int(groups)


# --------------------------------------------------------------------------- padding


def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: output ``ceil(n / s)``, the odd pixel goes after.

    >>> same_padding(28, 3, 2, 1)   # stride 2: one pixel, after
    (0, 1)
    >>> same_padding(5, 3, 1, 2)    # dilated kernel spans 5
    (2, 2)
    """
    total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, in_spatial, kernel_spatial, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Turn any accepted ``padding`` form into one ``(before, after)`` pair per spatial dim."""
    rank = len(in_spatial)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * rank
        if mode == "same":
            return tuple(
                same_padding(n, k, s, d) for n, k, s, d in zip(in_spatial, kernel_spatial, stride, dilation)
            )
        if mode == "full":
            return tuple(((k - 1) * d, (k - 1) * d) for k, d in zip(kernel_spatial, dilation))
        if mode == "causal":
            if rank != 1:
                raise ValueError(
                    "Invalid value for argument `padding`: 'causal' padding is only defined for 1-D "
                    f"convolution, but this one has {rank} spatial dims. {received(padding=padding)}"
                )
            return (((kernel_spatial[0] - 1) * dilation[0], 0),)
        raise ValueError(
            "Invalid value for argument `padding`: expected 'valid', 'same', 'full', 'causal', an "
            f"int, a tuple of ints or a sequence of (before, after) pairs. {received(padding=padding)}"
        )
    pairs = _explicit_padding(padding, rank)
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"Invalid value for argument `padding`: must be >= 0. {received(padding=padding)}")
    return pairs


def _explicit_padding(padding, rank: int) -> tuple[tuple[int, int], ...]:
    if _is_int(padding):
        return ((int(padding), int(padding)),) * rank
    if isinstance(padding, (tuple, list)) and len(padding) == rank:
        if all(_is_int(p) for p in padding) and rank > 1:
            return tuple((int(p), int(p)) for p in padding)
        if all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) for v in p) for p in padding):
            return tuple((int(p[0]), int(p[1])) for p in padding)
        if rank == 1 and _is_int(padding[0]):
            return ((int(padding[0]), int(padding[0])),)
    raise ValueError(
        f"Invalid value for argument `padding`: expected an int, {rank} ints or {rank} "
        f"(before, after) pairs for this {rank}-D convolution. {received(padding=padding)}"
    )


def output_size(n: int, lo: int, hi: int, k: int, s: int, d: int) -> int:
    """``(n + lo + hi - d*(k-1) - 1) // s + 1``; may be <= 0 when the kernel does not fit."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


# --------------------------------------------------------------------------- arrays and dtypes


def as_numeric_array(value, name: str) -> np.ndarray:
    """``np.asarray`` that accepts bool, int and float arrays and rejects everything else."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"Argument `{name}` could not be converted to an array ({exc}). Received: {name}={reprlib.repr(value)}"
        ) from None
    if array.dtype.kind not in "biuf" or array.dtype.itemsize > 8:
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected a bool, integer or float16/32/64 array. "
            f"Received: {name}.dtype={array.dtype}"
        )
    return array


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """A bool, integer or float16/32/64 dtype, else TypeError."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"Invalid value for argument `{name}`: not a dtype. {received(**{name: dtype})}") from None
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected a bool, integer or float16/32/64 dtype. "
            f"Received: {name}={dtype}"
        )
    return dtype


def result_dtypes(*dtypes) -> tuple[np.dtype, np.dtype]:
    """(output dtype, compute dtype) under npconv's dtype rules.

    Floats keep their dtype, bool and integers count as float32, the widest wins; float16 is
    computed in float32.

    >>> [str(d) for d in result_dtypes(np.float16, np.float16)]
    ['float16', 'float32']
    >>> [str(d) for d in result_dtypes(np.int64, np.float64)]
    ['float64', 'float64']
    """
    as_float = [np.dtype(d) if np.dtype(d).kind == "f" else np.dtype(np.float32) for d in dtypes]
    out = np.result_type(*as_float)
    compute = np.dtype(np.float32) if out == np.float16 else out
    return out, compute


def memory_limit_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ConvSpec:
    """Everything about one convolution, resolved and validated.

    Shapes are in npconv's internal layout: input ``(N, *spatial, C)``; kernel
    ``(groups, *kernel_spatial, C // groups, out_channels // groups)``; output
    ``(N, *out_spatial, out_channels)``.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_spatial: tuple[int, ...]
    kernel_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    padding_mode: str
    pad_value: float
    flip: bool
    channels_last: bool
    kernel_spatial_first: bool
    dtype: np.dtype  # compute dtype
    out_dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.in_spatial)

    @property
    def padded_spatial(self) -> tuple[int, ...]:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_spatial, self.padding))

    @property
    def zero_padding(self) -> bool:
        """Whether the border reads zeros (``"zeros"``, or ``"constant"`` with value 0)."""
        return self.padding_mode == "zeros" or (self.padding_mode == "constant" and self.pad_value == 0)

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def taps(self) -> int:
        return math.prod(self.kernel_spatial)

    @property
    def output_positions(self) -> int:
        return self.batch * math.prod(self.out_spatial)

    @property
    def flops(self) -> int:
        """Multiply-adds counted as 2 FLOPs."""
        return 2 * self.output_positions * self.out_channels * self.taps * self.in_per_group

    def x_shape(self) -> tuple[int, ...]:
        """Input shape in the user's data_format."""
        return self._user_data_shape(self.in_spatial, self.in_channels)

    def y_shape(self) -> tuple[int, ...]:
        """Output shape in the user's data_format."""
        return self._user_data_shape(self.out_spatial, self.out_channels)

    def w_shape(self) -> tuple[int, ...]:
        """Kernel shape in the user's kernel_format."""
        if self.kernel_spatial_first:
            return (*self.kernel_spatial, self.in_per_group, self.out_channels)
        return (self.out_channels, self.in_per_group, *self.kernel_spatial)

    def _user_data_shape(self, spatial, channels) -> tuple[int, ...]:
        if self.channels_last:
            return (self.batch, *spatial, channels)
        return (self.batch, channels, *spatial)

    def item_bytes(self) -> int:
        return self.dtype.itemsize


def make_spec(
    x_shape,
    w_shape,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    groups=1,
    data_format="channels_last",
    kernel_format=None,
    padding_mode="zeros",
    pad_value=0.0,
    flip=False,
    dtypes=(np.float32, np.float32),
    out_spatial=None,
) -> ConvSpec:
    """Validate a convolution's arguments and resolve them into a :class:`ConvSpec`.

    ``x_shape``/``w_shape`` are in the user's layouts. ``out_spatial`` is only given by
    ``conv_transpose``, whose output_padding may leave trailing rows no window reaches.
    """
    x_shape = _shape_repr(x_shape)
    w_shape = _shape_repr(w_shape)
    rank = len(w_shape) - 2
    if rank not in (1, 2, 3):
        raise ValueError(
            "Invalid kernel: expected 1, 2 or 3 spatial dims (w.ndim 3, 4 or 5). "
            f"Received: w.shape={w_shape}"
        )
    if len(x_shape) != rank + 2:
        raise ValueError(
            f"Invalid input: a {rank}-D kernel needs an input with {rank + 2} dims "
            f"(batch, {rank} spatial, channels). Received: x.shape={x_shape}, w.shape={w_shape}"
        )
    channels_last = parse_data_format(data_format, rank)
    spatial_first = parse_kernel_format(kernel_format, rank, channels_last)
    stride = normalize_ints(stride, rank, "stride")
    dilation = normalize_ints(dilation, rank, "dilation")
    groups = parse_groups(groups)
    padding_mode = parse_padding_mode(padding_mode)
    pad_value = parse_pad_value(pad_value)
    flip = parse_flip(flip)

    if channels_last:
        batch, in_spatial, in_channels = x_shape[0], x_shape[1:-1], x_shape[-1]
    else:
        batch, in_channels, in_spatial = x_shape[0], x_shape[1], x_shape[2:]
    if spatial_first:
        kernel_spatial, kernel_in, out_channels = w_shape[:-2], w_shape[-2], w_shape[-1]
    else:
        out_channels, kernel_in, kernel_spatial = w_shape[0], w_shape[1], w_shape[2:]

    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"Invalid value for argument `groups`: must divide both in_channels ({in_channels}) and "
            f"out_channels ({out_channels}). {received(groups=groups)}"
        )
    if kernel_in * groups != in_channels:
        raise ValueError(
            f"Channel mismatch: the input has {in_channels} channels, so with groups={groups} the "
            f"kernel needs {in_channels // groups} input channels, not {kernel_in}. "
            f"Received: x.shape={x_shape}, w.shape={w_shape}"
        )
    if min(kernel_spatial, default=1) < 1 or out_channels < 1:
        raise ValueError(f"Invalid kernel: every dim must be >= 1. Received: w.shape={w_shape}")

    pads = resolve_padding(padding, in_spatial, kernel_spatial, stride, dilation)
    _check_mode_padding(padding_mode, pads, in_spatial, padding)

    computed = []
    for n, (lo, hi), k, s, d in zip(in_spatial, pads, kernel_spatial, stride, dilation):
        extent = d * (k - 1) + 1
        if n + lo + hi < extent:
            raise ValueError(
                f"The kernel (extent {extent} with dilation {d}) is larger than the padded input "
                f"({n} + {lo} + {hi} = {n + lo + hi}). "
                f"Received: w.shape={w_shape}, x.shape={x_shape}, padding={padding!r}"
            )
        computed.append(output_size(n, lo, hi, k, s, d))
    out_spatial = tuple(computed) if out_spatial is None else tuple(out_spatial)

    out_dtype, compute_dtype = result_dtypes(*dtypes)
    limit = memory_limit_bytes()
    padded_elems = batch * in_channels * math.prod(n + lo + hi for n, (lo, hi) in zip(in_spatial, pads))
    out_elems = batch * out_channels * math.prod(out_spatial)
    if max(padded_elems, out_elems) * compute_dtype.itemsize > limit:
        raise ValueError(
            f"The padded input ({padded_elems} elements) or the output ({out_elems} elements) would not "
            f"fit in this machine's memory ({limit} bytes). "
            f"Received: padding={padding!r}, x.shape={x_shape}, w.shape={w_shape}"
        )

    return ConvSpec(
        batch=batch,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        in_spatial=tuple(in_spatial),
        kernel_spatial=tuple(kernel_spatial),
        out_spatial=out_spatial,
        stride=stride,
        dilation=dilation,
        padding=pads,
        padding_mode=padding_mode,
        pad_value=pad_value,
        flip=flip,
        channels_last=channels_last,
        kernel_spatial_first=spatial_first,
        dtype=compute_dtype,
        out_dtype=out_dtype,
    )


def _check_mode_padding(mode: str, pads, in_spatial, padding) -> None:
    """Mirror and wrap padding can only copy pixels that exist (TF MirrorPad / PyTorch limits)."""
    limits = {"reflect": -1, "symmetric": 0, "circular": 0}  # max pad = n + offset
    if mode not in limits:
        return
    for n, (lo, hi) in zip(in_spatial, pads):
        if max(lo, hi) > n + limits[mode]:
            bound = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"Invalid padding for padding_mode={mode!r}: each side must be {bound} the input size "
                f"({n}) along its dim, got ({lo}, {hi}). Received: padding={padding!r}, "
                f"padding_mode={mode!r}"
            )
