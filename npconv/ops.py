"""Public convolution operations: forward, both gradients, transposed, depthwise and separable.

Each function validates its arguments into a :class:`~npconv._spec.ConvSpec`, brings the arrays to
the internal layout (input ``(N, *spatial, C)``, kernel ``(groups, *k, C // groups, out // groups)``),
runs one registered algorithm (:func:`~npconv.algorithms.run` pads the input in its padding mode),
and brings the result back to the user's layout and dtype.  The gradients are the algorithms'
``backward_*`` methods plus the adjoint of the padding, so they are exact for every padding mode.
"""

from __future__ import annotations

import math

import numpy as np

from . import _epilogue
from ._spec import (
    ConvSpec,
    _explicit_padding,
    as_numeric_array,
    make_spec,
    memory_limit_bytes,
    normalize_ints,
    output_size,
    parse_data_format,
    parse_groups,
    parse_kernel_format,
    received,
    same_padding,
)
from .algorithms import run, select

# --------------------------------------------------------------------------- layout plumbing


def _channels_last(array: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """A channels-last view of a user-layout data array (no copy)."""
    return array if spec.channels_last else np.moveaxis(array, 1, -1)


def _internal_kernel(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """User kernel -> ``(groups, *k, C_g, O_g)`` in the compute dtype, flipped for ``flip=True``."""
    rank, g = spec.rank, spec.groups
    if spec.kernel_spatial_first:  # (*k, C_g, O) -> (*k, C_g, G, O_g) -> (G, *k, C_g, O_g)
        grouped = w.reshape(*spec.kernel_spatial, spec.in_per_group, g, spec.out_per_group)
        order = (rank + 1, *range(rank + 1), rank + 2)
    else:  # (O, C_g, *k) -> (G, O_g, C_g, *k) -> (G, *k, C_g, O_g)
        grouped = w.reshape(g, spec.out_per_group, spec.in_per_group, *spec.kernel_spatial)
        order = (0, *range(3, rank + 3), 2, 1)
    internal = grouped.transpose(order)
    if spec.flip:
        internal = internal[(slice(None), *[slice(None, None, -1)] * rank)]
    return np.ascontiguousarray(internal, dtype=spec.dtype)


def _user_kernel(dw: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Inverse of :func:`_internal_kernel` (for the filter gradient)."""
    rank = spec.rank
    if spec.flip:
        dw = dw[(slice(None), *[slice(None, None, -1)] * rank)]
    if spec.kernel_spatial_first:  # (G, *k, C_g, O_g) -> (*k, C_g, G, O_g)
        order = (*range(1, rank + 2), 0, rank + 2)
    else:  # (G, *k, C_g, O_g) -> (G, O_g, C_g, *k)
        order = (0, rank + 2, rank + 1, *range(1, rank + 1))
    return np.ascontiguousarray(dw.transpose(order)).reshape(spec.w_shape()).astype(spec.out_dtype, copy=False)


def _user_output(y: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Internal channels-last result -> the user's data_format and output dtype, contiguous."""
    if not spec.channels_last:
        y = np.moveaxis(y, -1, 1)
    return np.ascontiguousarray(y, dtype=spec.out_dtype)


def _bias_array(bias, channels: int, dtype) -> np.ndarray | None:
    """Validated bias in the compute dtype (checked before any work is done), or None."""
    if bias is None:
        return None
    bias = as_numeric_array(bias, "bias")
    _check_shape(bias, (channels,), "bias")
    return bias.astype(dtype, copy=False)


def _check_shape(array: np.ndarray, expected: tuple, name: str, **context) -> None:
    if array.shape != tuple(expected):
        details = ", ".join(f"{key}={value!r}" for key, value in context.items())
        raise ValueError(
            f"Invalid `{name}`: expected shape {tuple(expected)} for this convolution. "
            f"Received: {name}.shape={array.shape}" + (f", {details}" if details else "")
        )


def _shape_argument(shape, like: np.ndarray, like_name: str, name: str) -> tuple[int, ...]:
    """Validate a user-given full array shape (``input_shape`` / ``kernel_shape``) of as many dims
    as the array ``like`` (checked first: 3-5 dims, batch, 1-3 spatial and channels)."""
    if not 3 <= like.ndim <= 5:
        raise ValueError(
            f"Invalid value for argument `{like_name}`: expected 3, 4 or 5 dims (1-3 spatial dims). "
            f"Received: {like_name}.shape={like.shape}"
        )
    ndim = like.ndim
    ok = isinstance(shape, (tuple, list)) and len(shape) == ndim
    ok = ok and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in shape)
    if not ok:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a tuple of {ndim} non-negative ints. "
            f"{received(**{name: shape})}"
        )
    return tuple(int(v) for v in shape)


CONV_PARAMS = frozenset(
    ("stride", "padding", "dilation", "groups", "data_format", "kernel_format", "padding_mode", "pad_value", "flip")
)


def _plan(x_shape, w_shape, dtypes, conv_params: dict, function_name: str, direction: str = "forward"):
    """Validate ``conv``'s keyword arguments into a spec and pick the algorithm that will run its
    ``direction`` (forward, backward_input or backward_weight)."""
    params = dict(conv_params)
    algorithm = params.pop("algorithm", "auto")
    unknown = sorted(set(params) - CONV_PARAMS)
    if unknown:
        raise TypeError(
            f"{function_name}() got unexpected keyword arguments {unknown}; it takes conv's keyword "
            f"arguments except bias: {sorted(CONV_PARAMS | {'algorithm'})}"
        )
    spec = make_spec(x_shape, w_shape, dtypes=dtypes, **params)
    select(spec, algorithm, direction)  # checks the name and eligibility before any work
    return spec, algorithm


# --------------------------------------------------------------------------- forward


def conv(
    x,
    w,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    groups=1,
    data_format="channels_last",
    kernel_format=None,
    bias=None,
    activation=None,
    padding_mode="zeros",
    pad_value=0.0,
    flip=False,
    algorithm="auto",
) -> np.ndarray:
    """N-d convolution (cross-correlation, as in every deep-learning library) for N = 1, 2, 3.

    ``y[n, o, f] = bias[f] + sum_{t, c} xpad[n, o * stride + t * dilation, c] * w[t, c, f]``
    (``f`` in group ``g`` only sees that group's channels ``c``).  Output size per spatial dim::

        out = (n + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1

    Parameters
    ----------
    x : array, ``(N, *spatial, C)`` for ``data_format="channels_last"`` (TF), or
        ``(N, C, *spatial)`` for ``"channels_first"`` (PyTorch). ``"NHWC"``-style strings work too.
    w : array, ``(*k, C // groups, out_channels)`` (HWIO) for channels_last, or
        ``(out_channels, C // groups, *k)`` (OIHW) for channels_first; ``kernel_format`` overrides.
    stride, dilation : int or one int per spatial dim, >= 1.
    padding : ``"valid"``, ``"same"`` (TensorFlow's rule for any stride/dilation: the odd pixel goes
        after), ``"full"``, ``"causal"`` (1-D), an int, one int per dim, or ``(before, after)`` pairs.
    groups : grouped convolution; ``groups == C`` is depthwise.
    bias : ``(out_channels,)`` or None.
    activation : None (``"linear"``) or ``"relu"``: applied to ``conv + bias`` in the same pass over
        the output (fused, like oneDNN's post-ops), instead of one more pass per operation.
    padding_mode : ``"zeros"``, ``"constant"`` (``pad_value``), ``"reflect"``, ``"replicate"``,
        ``"circular"``, ``"symmetric"`` — NumPy's ``np.pad`` meanings.
    flip : True computes true convolution (kernel rotated 180 degrees), as ``scipy.signal``.
    algorithm : ``"auto"`` (lowest estimated time), ``"measure"`` (opt-in autotune: times the
        eligible algorithms on the first call with these shapes and caches the fastest) or a name
        from :func:`npconv.algorithms`.

    Returns the output in ``x``'s layout; float16/32/64 keep their dtype, ints and bools give float32
    (float64 if either operand is float64).

    Examples
    --------
    >>> import numpy as np, npconv as nc
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)              # NHWC
    >>> w = np.ones((2, 2, 1, 1))                            # HWIO
    >>> nc.conv(x, w)[0, :, :, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> nc.conv(x, w, stride=2, padding="same").shape
    (1, 2, 2, 1)
    """
    x = as_numeric_array(x, "x")
    w = as_numeric_array(w, "w")
    conv_params = dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        data_format=data_format,
        kernel_format=kernel_format,
        padding_mode=padding_mode,
        pad_value=pad_value,
        flip=flip,
        algorithm=algorithm,
    )
    activation = _epilogue.check_activation(activation)
    spec, algorithm = _plan(x.shape, w.shape, (x.dtype, w.dtype), conv_params, "conv")
    bias = _bias_array(bias, spec.out_channels, spec.dtype)
    y = run(spec, algorithm, "forward", _channels_last(x, spec), _internal_kernel(w, spec))
    _epilogue.apply(y, bias, activation)
    return _user_output(y, spec)


def _ranked(rank: int, function_name: str):
    def ranked_conv(x, w, **kwargs):
        w = as_numeric_array(w, "w")
        if w.ndim != rank + 2:
            raise ValueError(
                f"{function_name} needs a kernel with {rank} spatial dims (w.ndim == {rank + 2}). "
                f"Received: w.shape={w.shape}"
            )
        return conv(x, w, **kwargs)

    ranked_conv.__name__ = ranked_conv.__qualname__ = function_name
    ranked_conv.__doc__ = (
        f"{rank}-D convolution: :func:`conv` with the kernel rank checked "
        f"(``w.ndim == {rank + 2}``). Same arguments as :func:`conv`."
    )
    return ranked_conv


conv1d = _ranked(1, "conv1d")
conv2d = _ranked(2, "conv2d")
conv3d = _ranked(3, "conv3d")


# --------------------------------------------------------------------------- gradients


def conv_backprop_input(dy, w, input_shape, **conv_params) -> np.ndarray:
    """Gradient of ``conv(x, w, **conv_params)`` w.r.t. ``x``: the vector-Jacobian product with ``dy``.

    ``conv_params`` are :func:`conv`'s keyword arguments except ``bias``.  ``input_shape`` is ``x.shape``; ``dy`` has ``conv``'s output shape.  The gradient flows back
    through every padding mode (a reflected pixel's gradient lands on the pixel it mirrors).
    Satisfies ``<conv(x, w), dy> == <x, conv_backprop_input(dy, w, x.shape)>`` (zeros padding).

    >>> import numpy as np, npconv as nc
    >>> dy = np.ones((1, 3, 1))
    >>> nc.conv_backprop_input(dy, np.array([[[1.0]], [[2.0]]]), (1, 4, 1))[0, :, 0]
    array([1., 3., 3., 2.])
    """
    dy = as_numeric_array(dy, "dy")
    w = as_numeric_array(w, "w")
    input_shape = _shape_argument(input_shape, w, "w", "input_shape")
    spec, algorithm = _plan(input_shape, w.shape, (dy.dtype, w.dtype), conv_params, "conv_backprop_input", "backward_input")
    _check_shape(dy, spec.y_shape(), "dy", input_shape=input_shape)
    dy_internal = np.asarray(_channels_last(dy, spec), dtype=spec.dtype)
    return _user_output(run(spec, algorithm, "backward_input", dy_internal, _internal_kernel(w, spec)), spec)


def conv_backprop_filter(x, dy, kernel_shape, **conv_params) -> np.ndarray:
    """Gradient of ``conv(x, w, **conv_params)`` w.r.t. ``w``: the vector-Jacobian product with ``dy``.

    ``conv_params`` are :func:`conv`'s keyword arguments except ``bias``.  ``kernel_shape`` is ``w.shape`` (in its kernel layout); the result has that shape.
    Satisfies ``<conv(x, w), dy> == <w, conv_backprop_filter(x, dy, w.shape)>``.

    >>> import numpy as np, npconv as nc
    >>> x = np.arange(4.0).reshape(1, 4, 1)
    >>> nc.conv_backprop_filter(x, np.ones((1, 3, 1)), (2, 1, 1))[:, 0, 0]
    array([3., 6.])
    """
    x = as_numeric_array(x, "x")
    dy = as_numeric_array(dy, "dy")
    kernel_shape = _shape_argument(kernel_shape, x, "x", "kernel_shape")
    spec, algorithm = _plan(x.shape, kernel_shape, (x.dtype, dy.dtype), conv_params, "conv_backprop_filter", "backward_weight")
    _check_shape(dy, spec.y_shape(), "dy", kernel_shape=kernel_shape)
    dy_internal = np.asarray(_channels_last(dy, spec), dtype=spec.dtype)
    return _user_kernel(run(spec, algorithm, "backward_weight", _channels_last(x, spec), dy_internal), spec)


# --------------------------------------------------------------------------- transposed


def transpose_output_size(n: int, k: int, s: int, d: int, padding, output_padding) -> tuple[int, tuple[int, int]]:
    """Output length and forward ``(before, after)`` padding of a transposed convolution, one dim.

    String padding follows Keras 3 ``Conv*DTranspose``; explicit padding follows PyTorch's
    ``ConvTranspose*d``: ``(n - 1) * s - before - after + d * (k - 1) + output_padding + 1``.

    >>> transpose_output_size(4, 3, 2, 1, "same", None)      # Keras: n * stride
    (8, (0, 1))
    >>> transpose_output_size(4, 3, 2, 1, (1, 1), 1)         # PyTorch, padding=1, output_padding=1
    (8, (1, 1))
    """
    extent = d * (k - 1) + 1
    if isinstance(padding, str):
        mode = padding.lower()
        if output_padding is None:
            length = {"valid": (n - 1) * s + max(extent, s), "same": n * s}.get(mode)
            output_padding = 0
        else:
            length = None
        if length is None:
            total = {"valid": 0, "same": 2 * (extent // 2), "full": 2 * (extent - 1), "causal": extent - 1}[mode]
            length = (n - 1) * s + extent - total + output_padding
        pads = {
            "valid": (0, 0),
            "same": same_padding(length, k, s, d),
            "full": (extent - 1, extent - 1),
            "causal": (extent - 1, 0),
        }[mode]
        return length, pads
    lo, hi = padding
    return (n - 1) * s - lo - hi + extent + (output_padding or 0), (lo, hi)


def conv_transpose(
    x,
    w,
    *,
    stride=1,
    padding="valid",
    output_padding=None,
    dilation=1,
    groups=1,
    data_format="channels_last",
    kernel_format=None,
    bias=None,
    algorithm="auto",
) -> np.ndarray:
    """Transposed convolution ("deconvolution"): the gradient of a forward convolution w.r.t. its input.

    ``w`` is that forward convolution's kernel: channels_last ``(*k, out_channels // groups,
    in_channels)`` (TF/Keras ``Conv2DTranspose``), channels_first ``(in_channels,
    out_channels // groups, *k)`` (PyTorch ``ConvTranspose2d``).  Output size per spatial dim:

    - string padding (Keras): ``"valid"``: ``(n - 1) * s + max(d * (k - 1) + 1, s)``;
      ``"same"``: ``n * s``; with ``output_padding``: ``(n - 1) * s + k_eff - 2 * pad + output_padding``.
    - explicit padding (PyTorch): ``(n - 1) * s - before - after + d * (k - 1) + output_padding + 1``.

    ``output_padding`` must be smaller than the stride or the dilation.

    >>> import numpy as np, npconv as nc
    >>> x = np.ones((1, 2, 2, 1))
    >>> nc.conv_transpose(x, np.ones((3, 3, 1, 1)), stride=2, padding="same")[0, :, :, 0]
    array([[1., 1., 2., 1.],
           [1., 1., 2., 1.],
           [2., 2., 4., 2.],
           [1., 1., 2., 1.]])
    """
    x = as_numeric_array(x, "x")
    w = as_numeric_array(w, "w")
    rank = w.ndim - 2
    if rank not in (1, 2, 3) or x.ndim != w.ndim:
        raise ValueError(
            f"Invalid input: expected a kernel with 1-3 spatial dims and an input with the same number "
            f"of dims. Received: x.shape={x.shape}, w.shape={w.shape}"
        )
    channels_last = parse_data_format(data_format, rank)
    spatial_first = parse_kernel_format(kernel_format, rank, channels_last)
    strides = normalize_ints(stride, rank, "stride")
    dilations = normalize_ints(dilation, rank, "dilation")
    groups = parse_groups(groups)
    output_paddings = None
    if output_padding is not None:
        output_paddings = normalize_ints(output_padding, rank, "output_padding", minimum=0)
        for op, s, d in zip(output_paddings, strides, dilations):
            if op >= s and op >= d:
                raise ValueError(
                    "Invalid value for argument `output_padding`: must be smaller than either the stride "
                    f"or the dilation. {received(output_padding=output_padding)}"
                )
    batch, in_channels = x.shape[0], x.shape[-1] if channels_last else x.shape[1]
    spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    kernel_spatial = w.shape[:-2] if spatial_first else w.shape[2:]
    w_in = w.shape[-1] if spatial_first else w.shape[0]
    if w_in != in_channels:
        raise ValueError(
            f"Channel mismatch: the input has {in_channels} channels but the transposed kernel expects "
            f"{w_in}. Received: x.shape={x.shape}, w.shape={w.shape}"
        )
    out_channels = (w.shape[-2] if spatial_first else w.shape[1]) * groups
    pairs = padding if isinstance(padding, str) else _explicit_padding(padding, rank)
    if not isinstance(padding, str) and any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"Invalid value for argument `padding`: must be >= 0. {received(padding=padding)}")
    if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full", "causal"):
        raise ValueError(
            "Invalid value for argument `padding`: expected 'valid', 'same', 'full', 'causal', an int, a "
            f"tuple of ints or (before, after) pairs. {received(padding=padding)}"
        )
    if isinstance(padding, str) and padding.lower() == "causal" and rank != 1:
        raise ValueError(f"Invalid value for argument `padding`: 'causal' is 1-D only. {received(padding=padding)}")
    lengths, forward_pads = [], []
    for i in range(rank):
        length, pads = transpose_output_size(
            spatial[i],
            kernel_spatial[i],
            strides[i],
            dilations[i],
            padding if isinstance(padding, str) else pairs[i],
            None if output_paddings is None else output_paddings[i],
        )
        if length < 1:
            raise ValueError(
                f"The transposed convolution's output would be empty (length {length} along spatial dim "
                f"{i}). {received(padding=padding, output_padding=output_padding)}"
            )
        if output_size(length, *pads, kernel_spatial[i], strides[i], dilations[i]) < spatial[i]:
            # e.g. Keras' size for padding="same" with an even kernel and output_padding (TF refuses it too)
            raise ValueError(
                f"Inconsistent transposed convolution: an output of length {length} along spatial dim {i} "
                f"(padding {pads}) gives a forward convolution with fewer than the input's {spatial[i]} "
                f"positions. {received(padding=padding, output_padding=output_padding)}"
            )
        lengths.append(length)
        forward_pads.append(pads)
    output_shape = (batch, *lengths, out_channels) if channels_last else (batch, out_channels, *lengths)
    if math.prod(output_shape) * 8 > memory_limit_bytes():
        raise ValueError(
            f"The transposed convolution's output {output_shape} would not fit in this machine's memory. "
            f"{received(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)}, "
            f"x.shape={x.shape}, w.shape={w.shape}"
        )
    spec = make_spec(
        output_shape,
        w.shape,
        stride=strides,
        padding=tuple(forward_pads),
        dilation=dilations,
        groups=groups,
        data_format=data_format,
        kernel_format=kernel_format,
        dtypes=(x.dtype, w.dtype),
        out_spatial=tuple(spatial),
    )
    select(spec, algorithm, "backward_input")
    bias = _bias_array(bias, spec.in_channels, spec.dtype)  # the forward conv's input = our output
    x_internal = np.asarray(_channels_last(x, spec), dtype=spec.dtype)
    y = run(spec, algorithm, "backward_input", x_internal, _internal_kernel(w, spec))
    _epilogue.apply(y, bias, "linear")  # in place: y is this call's own array
    return _user_output(y, spec)


# --------------------------------------------------------------------------- depthwise, separable


def depthwise_conv2d(
    x,
    w,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    data_format="channels_last",
    bias=None,
    padding_mode="zeros",
    pad_value=0.0,
    algorithm="auto",
) -> np.ndarray:
    """Depthwise 2-D convolution with TensorFlow's kernel ``(kh, kw, C, multiplier)``.

    Every input channel ``c`` is convolved with its own ``multiplier`` filters; output channel
    ``c * multiplier + m`` (in any data_format). Same as ``conv(..., groups=C)``.

    >>> import numpy as np, npconv as nc
    >>> x = np.ones((1, 3, 3, 2))
    >>> w = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))], axis=-1)[:, :, :, None]  # (3, 3, 2, 1)
    >>> nc.depthwise_conv2d(x, w)[0, 0, 0]
    array([ 9., 18.])
    """
    x = as_numeric_array(x, "x")
    w = as_numeric_array(w, "w")
    channels_last = parse_data_format(data_format, 2)
    if w.ndim != 4 or x.ndim != 4:
        raise ValueError(
            "depthwise_conv2d needs a 4-D input and a (kh, kw, in_channels, multiplier) kernel. "
            f"Received: x.shape={x.shape}, w.shape={w.shape}"
        )
    channels = x.shape[-1] if channels_last else x.shape[1]
    if w.shape[2] != channels:
        raise ValueError(
            f"Channel mismatch: the input has {channels} channels but the depthwise kernel has "
            f"{w.shape[2]}. Received: x.shape={x.shape}, w.shape={w.shape}"
        )
    kh, kw, _, multiplier = w.shape
    return conv(
        x,
        w.reshape(kh, kw, 1, channels * multiplier),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=max(channels, 1),
        data_format=data_format,
        kernel_format="HWIO",
        bias=bias,
        padding_mode=padding_mode,
        pad_value=pad_value,
        algorithm=algorithm,
    )


def separable_conv2d(
    x,
    depthwise_w,
    pointwise_w,
    *,
    stride=1,
    padding="valid",
    dilation=1,
    data_format="channels_last",
    bias=None,
    padding_mode="zeros",
    pad_value=0.0,
    algorithm="auto",
) -> np.ndarray:
    """Depthwise separable 2-D convolution: :func:`depthwise_conv2d`, then a 1x1 convolution.

    ``depthwise_w`` is ``(kh, kw, C, multiplier)``, ``pointwise_w`` ``(1, 1, C * multiplier, out)``;
    ``bias`` (``(out,)``) is added after the pointwise step, as in Keras ``SeparableConv2D``.

    >>> import numpy as np, npconv as nc
    >>> y = nc.separable_conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 2)), np.ones((1, 1, 6, 4)))
    >>> y.shape, float(y[0, 0, 0, 0])
    ((1, 3, 3, 4), 54.0)
    """
    depthwise_w = as_numeric_array(depthwise_w, "depthwise_w")
    pointwise_w = as_numeric_array(pointwise_w, "pointwise_w")
    if depthwise_w.ndim != 4:
        raise ValueError(
            "Invalid depthwise kernel: expected 4 dims (kh, kw, in_channels, multiplier). "
            f"Received: depthwise_w.shape={depthwise_w.shape}"
        )
    if pointwise_w.shape[:3] != (1, 1, depthwise_w.shape[2] * depthwise_w.shape[3]):
        raise ValueError(
            "Invalid pointwise kernel: expected shape (1, 1, in_channels * multiplier, out_channels) = "
            f"(1, 1, {depthwise_w.shape[2] * depthwise_w.shape[3]}, out). "
            f"Received: pointwise_w.shape={pointwise_w.shape}"
        )
    if pointwise_w.ndim != 4:
        raise ValueError(
            f"Invalid pointwise kernel: expected 4 dims (1, 1, C * multiplier, out). "
            f"Received: pointwise_w.shape={pointwise_w.shape}"
        )
    depthwise = depthwise_conv2d(
        x,
        depthwise_w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        data_format=data_format,
        padding_mode=padding_mode,
        pad_value=pad_value,
        algorithm=algorithm,
    )
    return conv(depthwise, pointwise_w, data_format=data_format, kernel_format="HWIO", bias=bias, algorithm=algorithm)
