"""Property-based tests (Hypothesis) of npconv's public API against the independent reference.

Valid calls -- ranks 1-3, both data formats and their NHWC-style aliases, explicit kernel formats,
strides, dilations, every padding form (case variants of the strings, ints, NumPy ints, per-dim
tuples and lists, (before, after) pairs) and padding mode within its size limit, groups incl.
depthwise with multipliers, bias, relu, flip, float16/32/64, int/bool and mixed dtypes, batch 0,
zero input channels, and arrays that are read-only, strided slices (reversed too), transposes,
Fortran-ordered, byte-swapped or unaligned -- must agree with ``tests/reference.py`` for every
eligible algorithm (``nc.explain(...).candidates``; each algorithm's test draws mostly shapes it
is eligible for), ``auto`` and ``measure``: the forward pass, both gradients, ``conv_transpose``,
``depthwise_conv2d`` and ``separable_conv2d``; leave their inputs untouched; and be bitwise
repeatable.  The gradients are compared with exact reference gradients built from the reference
convolution alone: the input gradient from the Jacobian of one sample (the reference applied to
one-hot inputs), the filter gradient from the reference applied with one-hot kernels (the window
of the padded input each tap sees).  Larger calls (up to 64 channels) check the gradients by the
adjoint identities and that 1 and 2 npconv threads give the same bits; NaN/Inf inputs must stay
in their receptive fields.

Invalid calls must raise only ``ValueError``/``TypeError`` naming the offending parameter, Keras
style (``Received: name=value``), and calls that request huge sizes (a stride, dilation, padding,
``output_padding``, ``input_shape`` or ``kernel_shape`` of 2**32 and more) must trace less than
1 MiB of allocations (and, where the call is valid, still give the right result).

Profiles (registered in ``tests/conftest.py``): ``ci``, the default (derandomized: the same
examples on every run, about a minute on 2 cores with ``-n 2`` once Numba's cache is warm), and
``long`` (20x the examples, freshly random on each run):
``NPCONV_HYPOTHESIS_PROFILE=long python -m pytest -n 2 tests/test_properties.py`` (or
``--hypothesis-profile=long``).  Example counts are multiples of the profile's ``max_examples``
(:func:`examples`).  A failure prints its shrunk example as a one-line Python reproducer.
"""

from __future__ import annotations

import math
import re
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from reference import (
    KERNEL_FORMATS,
    LAYOUT_ALIASES,
    MODES,
    conv_reference,
    conv_transpose_geometry,
    conv_transpose_reference,
    depthwise_kernel_as_hwio,
    expected_dtype,
    is_channels_first,
    kernel_is_spatial_first,
    oihw_to_kernel,
    pads_legal,
    resolve_padding,
    to_channels_first,
    transpose_forward_consistent,
)

import npconv as nc
from npconv.shapes import output_shape, receptive_field

BASE = settings().max_examples  # the loaded profile's unit (ci: 100, long: 2000)
LONG = BASE >= 200
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "float16": 1e-2}
ALGORITHMS = tuple(nc.algorithms())
MAX_N = {1: 9, 2: 7, 3: 4}  # spatial sizes: keep every example fast
MAX_K = {1: 5, 2: 3, 3: 3}
MIB = 2**20


def examples(factor: float) -> int:
    return max(2, round(BASE * factor))


# ------------------------------------------------------------------------------------ arrays


@dataclass
class Arr:
    """An array and the Python statements that rebuild it (for one-line reproducers)."""

    name: str
    array: object
    statements: list

    def __repr__(self):
        return "; ".join(self.statements)

    def _repr_pretty_(self, printer, cycle):  # how Hypothesis shows a falsifying example
        printer.text(repr(self))

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype


def _values_expr(kind: str, seed: int, shape: tuple, dtype: str) -> str:
    """A NumPy expression for an array of ``shape`` and ``dtype`` (evaluated, and printed in repros)."""
    rng = f"np.random.default_rng({seed})"
    kind_of = np.dtype(dtype).kind
    if kind == "ones":
        return f"np.ones({shape}, {dtype!r})"
    if kind_of == "b":
        return f"({rng}.random({shape}) < 0.5)"
    if kind_of == "u":
        return f"{rng}.integers(0, {4 if kind == 'ints' else 10}, {shape}).astype({dtype!r})"
    if kind_of == "i" or kind == "ints":
        return f"{rng}.integers(-3, 4, {shape}).astype({dtype!r})"
    return f"{rng}.standard_normal({shape}).astype({dtype!r})"


def _build(name: str, statements: list) -> Arr:
    namespace = {"np": np}
    exec("\n".join(statements), namespace)  # noqa: S102 - our own generated statements
    return Arr(name, namespace[name], statements)


@st.composite
def arrays(draw, name, shape, dtype, layouts=True, kinds=("ones", "ints", "normal")):
    """An array of ``shape``/``dtype``: ones, small ints or N(0, 1) values, in a random memory layout
    (C order, a strided slice of a larger array -- every other element, reversed or both --, a
    transpose of a contiguous array, Fortran order, non-native byte order, unaligned data),
    read-only half of the time."""
    shape = tuple(int(v) for v in shape)
    dtype = np.dtype(dtype).name
    kind = draw(st.sampled_from(kinds))
    seed = 0 if kind == "ones" else draw(st.integers(0, 255))
    layout = draw(st.sampled_from(["contiguous", "contiguous", "sliced", "transposed", "fortran", "byteswapped", "unaligned"])) if layouts and shape else "contiguous"
    if layout == "sliced":
        axis = draw(st.integers(0, len(shape) - 1))
        step = draw(st.sampled_from([2, -1, -2]))
        base = shape[:axis] + (shape[axis] * abs(step),) + shape[axis + 1 :]
        index = ", ".join([":"] * axis + [f"::{step}"])
        expr = f"{_values_expr(kind, seed, base, dtype)}[{index}]"
    elif layout == "transposed":
        perm = draw(st.permutations(range(len(shape))))
        inverse = tuple(int(i) for i in np.argsort(perm))
        base = tuple(shape[p] for p in perm)
        expr = f"{_values_expr(kind, seed, base, dtype)}.transpose({inverse})"
    elif layout == "fortran":
        expr = f"np.asfortranarray({_values_expr(kind, seed, shape, dtype)})"
    elif layout == "byteswapped":  # non-native byte order
        expr = f"{_values_expr(kind, seed, shape, dtype)}.astype({np.dtype(dtype).newbyteorder('S').str!r})"
    elif layout == "unaligned":  # data one byte off its natural alignment (writable)
        expr = f"(lambda a: np.ndarray(a.shape, a.dtype, bytearray(1) + a.tobytes(), 1))({_values_expr(kind, seed, shape, dtype)})"
    else:
        expr = _values_expr(kind, seed, shape, dtype)
    statements = [f"{name} = {expr}"]
    if layouts and draw(st.booleans()):
        statements.append(f"{name}.flags.writeable = False")
    arr = _build(name, statements)
    assert arr.shape == shape and arr.dtype.name == dtype, (arr.shape, shape, arr.dtype, dtype)
    return arr


# ------------------------------------------------------------------------------------ cases

DTYPE_PAIRS = [  # (x, w); the first is the shrink target
    ("float64", "float64"),
    ("float32", "float32"),
    ("float16", "float16"),
    ("float64", "float64"),
    ("float32", "float32"),
    ("int32", "int32"),
    ("bool", "bool"),
    ("int32", "float32"),
    ("bool", "float64"),
    ("float16", "float32"),
    ("float32", "float64"),
    ("uint8", "float16"),
    ("int64", "int32"),
    ("float64", "int8"),
]
FLOAT_PAIRS = [("float64", "float64"), ("float32", "float32"), ("float16", "float16")]
DEFAULTS = dict(stride=1, padding="valid", dilation=1, groups=1, data_format="channels_last", kernel_format=None,
                padding_mode="zeros", pad_value=0.0, flip=False)  # fmt: skip
# Which shapes each algorithm runs (its eligibility), so that its test draws mostly eligible calls.
FAMILY = {"winograd": "winograd", "winograd_2x2": "winograd", "few_channels": "few_channels"}


@dataclass
class Case:
    """One convolution call: arrays, the conv keyword arguments (all of them) and extras."""

    x: Arr
    w: Arr
    bias: Arr | None
    params: dict
    activation: str | None = None
    extra: list = field(default_factory=list)  # more Arr (dy, ...)

    @property
    def rank(self):
        return self.w.array.ndim - 2

    @property
    def out_dtype(self):
        return result_dtype(self.x.dtype, self.w.dtype)

    def __repr__(self):
        return f"Case({self.repro(call_text('nc.conv', ['x', 'w'] + (['bias=bias'] if self.bias is not None else []), self.kwargs()))})"

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))

    def kwargs(self, **more):
        """The keyword arguments that differ from conv's defaults (what the call and repro pass)."""
        out = {k: v for k, v in self.params.items() if not (k in DEFAULTS and _same(v, DEFAULTS[k]))}
        if self.params["padding_mode"] != "constant":
            out.pop("pad_value", None)
        out.update(more)
        return out

    def repro(self, call: str, arrays_used=None) -> str:
        used = [self.x, self.w] + ([self.bias] if self.bias is not None else []) + self.extra
        if arrays_used is not None:
            used = [a for a in used if a.name in arrays_used]
        lines = ["import numpy as np, npconv as nc"] + [s for a in used for s in a.statements] + [call]
        return "; ".join(lines)


def result_dtype(*dtypes):
    """The contract's result dtype, in native byte order (a big-endian float64 gives float64)."""
    return expected_dtype(*dtypes).newbyteorder("=")


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def call_text(function: str, args: list, kwargs: dict) -> str:
    parts = list(args) + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


def _n_min(form, mode, keff, pair):
    """The smallest input size along one dim for which the padding fits the kernel and the mode's
    limit (reflect: each side < n; symmetric, circular: <= n)."""
    if form == "valid":
        return keff
    if form == "same":  # total padding <= keff - 1, each side <= ceil((keff - 1) / 2) < keff
        return keff if mode in ("reflect", "symmetric", "circular") else 1
    lo, hi = (keff - 1, keff - 1) if form == "full" else (keff - 1, 0) if form == "causal" else pair
    n = max(1, keff - lo - hi)
    if mode == "reflect":
        n = max(n, max(lo, hi) + 1)
    elif mode in ("symmetric", "circular"):
        n = max(n, lo, hi)
    return n


@st.composite
def geometries(draw, rank, family="generic", forms=None, modes=MODES):
    """(spatial sizes, kernel sizes, params) of a valid convolution."""
    mode = draw(st.sampled_from(modes))
    all_forms = ["valid", "same", "full", "int", "tuple", "pairs"] + (["causal"] if rank == 1 else [])
    form = draw(st.sampled_from([f for f in all_forms if forms is None or f in forms]))
    kernel, stride, dilation, pairs = [], [], [], []
    for _ in range(rank):
        if family == "winograd":
            k, s, d = 3, 1, 1
        else:
            k = draw(st.integers(1, MAX_K[rank]))
            s = draw(st.integers(1, 3))
            d = draw(st.integers(1, 3 if k == 1 else max(1, min(3, (MAX_N[rank] - 1) // (k - 1)))))
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        pairs.append((draw(st.integers(0, 3)), draw(st.integers(0, 3))) if form == "pairs" else None)
    if form in ("valid", "same", "full", "causal"):
        padding = draw(st.sampled_from([form, form, form.upper(), form.title()]))
    elif form == "int":
        p = draw(st.integers(0, 3))
        padding = draw(st.sampled_from([p, np.int64(p)]))
        pairs = [(p, p)] * rank
    elif form == "tuple":
        values = [draw(st.integers(0, 3)) for _ in range(rank)]
        padding = draw(st.sampled_from([tuple, list]))(values)
        pairs = [(p, p) for p in values]
    else:
        padding = tuple(pairs) if draw(st.booleans()) else [list(p) for p in pairs]
    spatial = []
    for k, d, pair in zip(kernel, dilation, pairs):
        lowest = _n_min(form if form in ("valid", "same", "full", "causal") else "pairs", mode, (k - 1) * d + 1, pair)
        spatial.append(draw(st.integers(lowest, max(lowest, MAX_N[rank]))))
    assert pads_legal(resolve_padding(padding, spatial, kernel, stride, dilation), spatial, mode)
    params = dict(
        stride=_ints(draw, stride),
        padding=padding,
        dilation=_ints(draw, dilation),
        padding_mode=mode,
        pad_value=draw(st.sampled_from([1.5, -2.0, 0.0, 0.25, 2, np.float32(-0.5)])) if mode == "constant" else 0.0,
    )
    return tuple(spatial), tuple(kernel), params


def _ints(draw, values):
    """An int when every dim agrees (sometimes a NumPy int), else a tuple or a list."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return draw(st.sampled_from([values[0], np.int64(values[0])]))
    return draw(st.sampled_from([tuple, list]))(values)


@st.composite
def conv_cases(draw, algorithm="auto", empty=False, dtype_pairs=None, ranks=None, relu=True, layouts=True, kinds=("ones", "ints", "normal")):
    """A valid ``nc.conv`` call, biased towards shapes ``algorithm`` is eligible for.

    ``empty``: a zero-size batch or zero input channels (zero output channels are refused by
    design: "Invalid kernel: every dim must be >= 1")."""
    family = FAMILY.get(algorithm) or draw(st.sampled_from(["generic", "generic", "winograd", "few_channels"]))
    rank = draw(st.sampled_from(ranks or ([2, 1] if family == "winograd" else [2, 1, 3])))
    spatial, kernel, params = draw(geometries(rank, "winograd" if family == "winograd" else "generic"))
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, cin_g, cout_g = 1, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif kind == "grouped":
        groups, cin_g, cout_g = draw(st.integers(2, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    else:
        groups, cin_g, cout_g = draw(st.integers(1, 4)), 1, draw(st.integers(1, 2))
    if family == "few_channels":
        cout_g = draw(st.sampled_from([16, 32]))
        groups = min(groups, 2)
    batch = draw(st.sampled_from([1, 2, 1, 3, 0]))
    if empty:
        if draw(st.booleans()):
            batch = 0
        else:
            groups, cin_g = 1, 0
    cin, cout = groups * cin_g, groups * cout_g
    channels_first = draw(st.booleans())
    if draw(st.sampled_from([False, False, True])):
        data_format = LAYOUT_ALIASES[rank][1 if channels_first else 0]
    else:
        data_format = "channels_first" if channels_first else "channels_last"
    kernel_format = draw(st.sampled_from([None, None, "spatial_first", "channels_first"]))
    if kernel_format is not None:
        kernel_format = KERNEL_FORMATS[rank][0 if kernel_format == "spatial_first" else 1]
    pairs = dtype_pairs or DTYPE_PAIRS
    if family == "few_channels":
        pairs = [p for p in pairs if result_dtype(*p).name in ("float32", "float64")]
    x_dtype, w_dtype = draw(st.sampled_from(pairs))
    x_shape = (batch, cin, *spatial) if channels_first else (batch, *spatial, cin)
    spatial_first = kernel_is_spatial_first(data_format, kernel_format)
    w_shape = (*kernel, cin_g, cout) if spatial_first else (cout, cin_g, *kernel)
    x = draw(arrays("x", x_shape, x_dtype, layouts, kinds))
    w = draw(arrays("w", w_shape, w_dtype, layouts, kinds))
    out_dtype = result_dtype(x_dtype, w_dtype)
    bias = draw(arrays("bias", (cout,), out_dtype, layouts, kinds)) if draw(st.booleans()) else None
    params.update(groups=draw(st.sampled_from([groups, groups, np.int64(groups)])), data_format=data_format,
                  kernel_format=kernel_format, flip=draw(st.sampled_from([False, True, np.bool_(True)])))
    activation = draw(st.sampled_from([None, "relu"])) if relu else None
    return Case(x, w, bias, params, activation)


# ------------------------------------------------------------------------------------ checks


def magnitude(x, w, params, bias=None) -> float:
    """max over outputs of sum |x| |w| (+ |bias|): the scale rounding errors are relative to."""
    p = {**params, "pad_value": abs(params.get("pad_value", 0.0))}
    x = np.nan_to_num(np.abs(np.asarray(x, np.float64)), nan=0.0, posinf=0.0)
    scale = float(np.max(conv_reference(x, np.abs(np.asarray(w, np.float64)), **p), initial=0.0))
    if bias is not None:
        scale += float(np.max(np.abs(np.asarray(bias, np.float64)), initial=0.0))
    return scale


def assert_close(got, expected, scale, dtype, repro, what="result"):
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}\n  {repro}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}\n  {repro}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}\n  {repro}"
    allowed = TOLERANCE[np.dtype(dtype).name] * (scale + 1.0)
    error = np.abs(np.asarray(got, np.float64) - expected)
    worst = float(np.max(error, initial=0.0))
    where = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
    assert worst <= allowed, (  # NaN fails too
        f"{what}: max error {worst:.3g} > {allowed:.3g} at {tuple(int(i) for i in where)} "
        f"(got {got[where] if error.size else None}, expected {expected[where] if error.size else None}, "
        f"scale {scale:.3g})\n  {repro}"
    )


def snapshot(*arrs):
    return [(a.array.copy(), a.array.flags.writeable, a.array.strides) for a in arrs]


def assert_untouched(arrs, before, repro):
    for a, (copy, writeable, strides) in zip(arrs, before):
        assert np.array_equal(a.array, copy, equal_nan=True), f"input `{a.name}` was modified\n  {repro}"
        assert a.array.flags.writeable == writeable and a.array.strides == strides, f"`{a.name}` flags changed\n  {repro}"


def eligible(x_shape, w_shape, dtype, params) -> set:
    explanation = nc.explain(x_shape, w_shape, dtype=dtype, **params)
    return set(explanation.candidates)


def runs(algorithm, candidates) -> bool:
    return algorithm in ("auto", "measure") or algorithm in candidates


def is_ineligible_error(error, algorithm) -> bool:
    """The documented refusal of a named algorithm: ValueError naming ``algorithm``."""
    return isinstance(error, ValueError) and f"algorithm={algorithm!r}" in str(error)


def _probe(algorithm) -> bool:
    """Whether ``algorithm`` is eligible for a shape of its family in this install (few_channels
    needs Numba)."""
    if algorithm in ("auto", "measure", "direct", "gemm", "fft", "depthwise"):
        return True
    if FAMILY.get(algorithm) == "few_channels":
        return algorithm in nc.explain((1, 8, 8, 1), (3, 3, 1, 16), dtype=np.float32).candidates
    return algorithm in nc.explain((1, 8, 8, 2), (3, 3, 2, 4), dtype=np.float32).candidates


def algorithm_params(with_auto=True, measure=False):
    names = (*ALGORITHMS, "auto") if with_auto else ALGORITHMS
    names += ("measure",) if measure else ()
    return [pytest.param(a, marks=pytest.mark.skipif(not _probe(a), reason=f"{a} is not available")) for a in names]


# ------------------------------------------------------------------------------------ forward


def check_forward(case: Case, algorithm: str):
    x, w, bias, params = case.x, case.w, case.bias, case.params
    expected = conv_reference(x.array, w.array, bias=None if bias is None else bias.array, **params)
    if case.activation == "relu":
        expected = np.maximum(expected, 0.0)
    out_dtype = case.out_dtype
    candidates = eligible(x.shape, w.shape, out_dtype, params)
    assume(runs(algorithm, candidates))
    kwargs = case.kwargs(algorithm=algorithm)
    if case.activation:
        kwargs["activation"] = case.activation
    repro = case.repro(call_text("nc.conv", ["x", "w"] + (["bias=bias"] if bias is not None else []), kwargs))
    note(f"reproducer: {repro}")
    if bias is not None:
        kwargs["bias"] = bias.array
    before = snapshot(x, w, *([bias] if bias is not None else []))
    y = nc.conv(x.array, w.array, **kwargs)
    assert_close(y, expected, magnitude(x.array, w.array, params, None if bias is None else bias.array), out_dtype, repro)
    assert_untouched([x, w] + ([bias] if bias is not None else []), before, repro)
    again = nc.conv(x.array, w.array, **kwargs)
    assert np.array_equal(y, again, equal_nan=True), f"not bitwise repeatable\n  {repro}"


@pytest.mark.parametrize("algorithm", algorithm_params(measure=True))
@settings(max_examples=examples(1.5))
@given(data=st.data())
def test_conv_matches_reference(algorithm, data):
    """nc.conv == reference for every eligible algorithm, ``auto`` and ``measure``; inputs untouched;
    bitwise repeatable."""
    check_forward(data.draw(conv_cases(algorithm), label="case"), algorithm)


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(0.5))
@given(data=st.data())
def test_empty_tensors(algorithm, data):
    """Batch 0 and zero input channels: forward and both gradients give correctly shaped results
    (zeros, or the bias), like the reference."""
    case = data.draw(conv_cases(algorithm, empty=True), label="case")
    check_forward(case, algorithm)
    dy = data.draw(arrays("dy", conv_reference(case.x.array, case.w.array, **case.params).shape, case.out_dtype), label="dy")
    check_backprop_input(case, dy, algorithm)
    check_backprop_filter(case, dy, algorithm)


@settings(max_examples=examples(2))
@given(case=conv_cases(relu=False))
def test_eligibility_is_what_explain_says(case):
    """Every algorithm ``nc.explain`` lists runs (forward and both gradients); every other one is
    refused with the documented ValueError naming ``algorithm``; explain's shape and padding are the
    reference's."""
    params = case.params
    expected_shape = conv_reference(case.x.array[:0], case.w.array, **params).shape[1:]
    explanation = nc.explain(case.x.shape, case.w.shape, dtype=case.out_dtype, **params)
    rank = case.rank
    spatial = case.x.shape[2:] if is_channels_first(params["data_format"]) else case.x.shape[1:-1]
    kernel = case.w.shape[:rank] if kernel_is_spatial_first(params["data_format"], params["kernel_format"]) else case.w.shape[2:]
    pads = resolve_padding(params["padding"], spatial, kernel, params["stride"], params["dilation"])
    assert tuple(explanation.output_shape[1:]) == expected_shape
    assert tuple(tuple(int(v) for v in p) for p in explanation.padding) == tuple(pads)
    candidates = set(explanation.candidates)
    assert candidates and candidates <= set(ALGORITHMS) and explanation.algorithm in candidates
    dy = np.zeros((case.x.shape[0], *expected_shape), case.out_dtype)
    for algorithm in ALGORITHMS:
        kwargs = case.kwargs(algorithm=algorithm)
        repro = case.repro(call_text("nc.conv", ["x", "w"], kwargs))
        calls = {
            "conv": (nc.conv, case.x.array, case.w.array),
            "conv_backprop_input": (nc.conv_backprop_input, dy, case.w.array, case.x.shape),
            "conv_backprop_filter": (nc.conv_backprop_filter, case.x.array, dy, case.w.shape),
        }
        for name, (function, *args) in calls.items():
            note(f"{name} with algorithm={algorithm!r} ({'eligible' if algorithm in candidates else 'not eligible'}): {repro}")
            if algorithm in candidates:
                function(*args, **kwargs)  # an eligible algorithm must run; any exception fails the property
            else:
                with pytest.raises(ValueError, match=re.escape(f"algorithm={algorithm!r}")):
                    function(*args, **kwargs)


# ------------------------------------------------------------------------------------ gradients


def reference_input_gradient(dy, w, x_shape, params):
    """(dx, scale): the exact vjp from the Jacobian of one sample -- the reference convolution of
    one-hot inputs (the padding's constant is an offset, not part of the linear map)."""
    linear = {**params, "padding_mode": "zeros" if params["padding_mode"] == "constant" else params["padding_mode"]}
    size = math.prod(x_shape[1:])
    basis = np.eye(size).reshape((size, *x_shape[1:]))
    outputs = math.prod(dy.shape[1:])
    jacobian = conv_reference(basis, w, **linear).reshape(size, outputs)
    jacobian_abs = conv_reference(basis, np.abs(np.asarray(w, np.float64)), **linear).reshape(size, outputs)
    flat = np.asarray(dy, np.float64).reshape(dy.shape[0], outputs)
    dx = (flat @ jacobian.T).reshape(x_shape)
    scale = float(np.max(np.abs(flat) @ jacobian_abs.T, initial=0.0))
    return dx, scale


def reference_filter_gradient(x, dy, w_shape, params):
    """(dw, scale): the reference convolution with one-hot kernels gives, per (channel, tap), the
    window of the padded input each tap sees (constant padding, reflections and flip included);
    dw is those windows contracted with dy, group by group."""
    data_format, kernel_format = params["data_format"], params["kernel_format"]
    rank = len(w_shape) - 2
    if kernel_is_spatial_first(data_format, kernel_format):
        kernel, cg, out = w_shape[:rank], w_shape[rank], w_shape[rank + 1]
    else:
        out, cg, kernel = w_shape[0], w_shape[1], w_shape[2:]
    groups = params["groups"]
    og, taps = out // groups, math.prod(kernel)
    xc, dyc = to_channels_first(x, data_format), to_channels_first(dy, data_format)
    batch = xc.shape[0]
    basis = np.eye(cg * taps).reshape((cg * taps, cg, *kernel))
    window_params = {**params, "groups": 1, "data_format": "channels_first", "kernel_format": None}
    abs_params = {**window_params, "pad_value": abs(params["pad_value"])}
    dw = np.zeros((out, cg, *kernel))
    scale = 0.0
    positions = math.prod(dyc.shape[2:])
    for g in range(groups):
        xg = xc[:, g * cg : (g + 1) * cg]
        dyg = dyc[:, g * og : (g + 1) * og].reshape(batch, og, positions)
        windows = conv_reference(xg, basis, **window_params).reshape(batch, cg * taps, positions)
        dw[g * og : (g + 1) * og] = np.einsum("nip,nop->oi", windows, dyg).reshape(og, cg, *kernel)
        windows_abs = conv_reference(np.abs(xg), basis, **abs_params).reshape(batch, cg * taps, positions)
        scale = max(scale, float(np.max(np.einsum("nip,nop->oi", windows_abs, np.abs(dyg)), initial=0.0)))
    return oihw_to_kernel(dw, data_format, kernel_format), scale


def _grad_case(data, algorithm):
    case = data.draw(conv_cases(algorithm, relu=False), label="case")
    shape = conv_reference(case.x.array[:0], case.w.array, **case.params).shape[1:]
    dy = data.draw(arrays("dy", (case.x.shape[0], *shape), case.out_dtype), label="dy")
    return case, dy, data.draw(st.sampled_from(["tuple", "list", "numpy ints"]), label="shape argument")


def check_backprop_input(case: Case, dy: Arr, algorithm: str, shape_form="tuple"):
    x_shape = case.x.shape
    assume(runs(algorithm, eligible(x_shape, case.w.shape, case.out_dtype, case.params)))
    kwargs = case.kwargs(algorithm=algorithm)
    case_dy = Case(case.x, case.w, None, case.params, extra=[dy])
    shape_arg = shape_argument(x_shape, shape_form)
    repro = case_dy.repro(call_text("nc.conv_backprop_input", ["dy", "w", repr(shape_arg)], kwargs), {"w", "dy"})
    note(f"reproducer: {repro}")
    expected, scale = reference_input_gradient(dy.array, case.w.array, x_shape, case.params)
    before = snapshot(dy, case.w)
    dx = nc.conv_backprop_input(dy.array, case.w.array, shape_arg, **kwargs)
    assert_close(dx, expected, scale, result_dtype(dy.dtype, case.w.dtype), repro, "dx")
    assert_untouched([dy, case.w], before, repro)
    again = nc.conv_backprop_input(dy.array, case.w.array, shape_arg, **kwargs)
    assert np.array_equal(dx, again, equal_nan=True), f"dx not bitwise repeatable\n  {repro}"


def check_backprop_filter(case: Case, dy: Arr, algorithm: str, shape_form="tuple"):
    w_shape = case.w.shape
    assume(runs(algorithm, eligible(case.x.shape, w_shape, case.out_dtype, case.params)))
    kwargs = case.kwargs(algorithm=algorithm)
    case_dy = Case(case.x, case.w, None, case.params, extra=[dy])
    shape_arg = shape_argument(w_shape, shape_form)
    repro = case_dy.repro(call_text("nc.conv_backprop_filter", ["x", "dy", repr(shape_arg)], kwargs), {"x", "dy"})
    note(f"reproducer: {repro}")
    expected, scale = reference_filter_gradient(case.x.array, dy.array, w_shape, case.params)
    before = snapshot(case.x, dy)
    dw = nc.conv_backprop_filter(case.x.array, dy.array, shape_arg, **kwargs)
    assert_close(dw, expected, scale, result_dtype(case.x.dtype, dy.dtype), repro, "dw")
    assert_untouched([case.x, dy], before, repro)
    again = nc.conv_backprop_filter(case.x.array, dy.array, shape_arg, **kwargs)
    assert np.array_equal(dw, again, equal_nan=True), f"dw not bitwise repeatable\n  {repro}"


def shape_argument(shape, form="tuple"):
    """``input_shape`` / ``kernel_shape`` as a tuple, a list, or a tuple of NumPy ints."""
    if form == "list":
        return [int(v) for v in shape]
    if form == "numpy ints":
        return tuple(np.int64(v) for v in shape)
    return tuple(int(v) for v in shape)


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(1))
@given(data=st.data())
def test_conv_backprop_input_matches_reference(algorithm, data):
    """conv_backprop_input == the exact reference vjp, for every eligible algorithm."""
    case, dy, form = _grad_case(data, algorithm)
    check_backprop_input(case, dy, algorithm, form)


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(1))
@given(data=st.data())
def test_conv_backprop_filter_matches_reference(algorithm, data):
    """conv_backprop_filter == the exact reference vjp, for every eligible algorithm."""
    case, dy, form = _grad_case(data, algorithm)
    check_backprop_filter(case, dy, algorithm, form)


# ------------------------------------------------------------------------------------ medium shapes


@st.composite
def medium_cases(draw, algorithm):
    """Fewer, larger calls (up to 64 channels): the algorithms' blocking, chunking and threading."""
    family = FAMILY.get(algorithm) or draw(st.sampled_from(["generic", "winograd", "few_channels"]))
    rank = draw(st.sampled_from([2, 1]))
    if family == "winograd":
        kernel, stride, dilation = (3,) * rank, 1, 1
    else:
        kernel = tuple(draw(st.integers(1, 5)) for _ in range(rank))
        stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    keff = max((k - 1) * dilation + 1 for k in kernel)
    spatial = tuple(draw(st.integers(max(keff, 6), 14 if rank == 2 else 96)) for _ in range(rank))
    groups = draw(st.sampled_from([1, 1, 2]))
    if family == "few_channels":
        cin_g, cout_g = draw(st.integers(1, 4)), draw(st.sampled_from([16, 32, 48]))
    else:
        cin_g, cout_g = draw(st.sampled_from([8, 16, 64, 3])), draw(st.sampled_from([8, 16, 64, 5]))
    batch = draw(st.integers(1, 3))
    channels_first = draw(st.booleans())
    dtype = draw(st.sampled_from(["float32", "float64"]))
    cin, cout = groups * cin_g, groups * cout_g
    x = draw(arrays("x", (batch, cin, *spatial) if channels_first else (batch, *spatial, cin), dtype, kinds=("normal",)))
    w = draw(arrays("w", (cout, cin_g, *kernel) if channels_first else (*kernel, cin_g, cout), dtype, kinds=("normal",)))
    mode = draw(st.sampled_from(["zeros", "reflect", "constant", "circular"]))
    params = dict(DEFAULTS, stride=stride, dilation=dilation, padding=draw(st.sampled_from(["valid", "same", 1])), groups=groups,
                  data_format="channels_first" if channels_first else "channels_last", padding_mode=mode,
                  pad_value=0.5 if mode == "constant" else 0.0)
    return Case(x, w, None, params)


def _with_threads(count, call):
    previous = nc.get_num_threads()
    nc.set_num_threads(count)
    try:
        return call()
    finally:
        nc.set_num_threads(previous)


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(0.2))
@given(data=st.data())
def test_medium_shapes_forward_gradients_and_thread_counts(algorithm, data):
    """Up to 64 channels: the forward equals the reference, both gradients satisfy the adjoint
    identities <conv(v) - conv(0), dy> == <v, dx> and <conv_w(u), dy> == <u, dw> (against the
    reference), and 1 and 2 npconv threads give bitwise the same results (a named algorithm; auto's
    pick depends on the thread count)."""
    case = data.draw(medium_cases(algorithm), label="case")
    x, w, params = case.x.array, case.w.array, case.params
    assume(runs(algorithm, eligible(x.shape, w.shape, case.out_dtype, params)))
    kwargs = case.kwargs(algorithm=algorithm)
    note(f"reproducer: {case.repro(call_text('nc.conv', ['x', 'w'], kwargs))}")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="directions seed"))
    y = _with_threads(2, lambda: nc.conv(x, w, **kwargs))
    expected = conv_reference(x, w, **params)
    assert_close(y, expected, magnitude(x, w, params), case.out_dtype, "forward")
    dy = rng.standard_normal(y.shape).astype(case.out_dtype)
    dx = _with_threads(2, lambda: nc.conv_backprop_input(dy, w, x.shape, **kwargs))
    dw = _with_threads(2, lambda: nc.conv_backprop_filter(x, dy, w.shape, **kwargs))
    v, u = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    linear = dict(params, padding_mode="zeros" if params["padding_mode"] == "constant" else params["padding_mode"])
    tolerance = TOLERANCE[case.out_dtype.name]
    lhs_x = float(np.vdot(conv_reference(v, w, **linear), dy))
    scale_x = float(np.vdot(conv_reference(np.abs(v), np.abs(w), **linear), np.abs(dy)))
    assert abs(lhs_x - float(np.vdot(v, dx))) <= tolerance * (scale_x + 1), ("dx adjoint", lhs_x, float(np.vdot(v, dx)), scale_x)
    lhs_w = float(np.vdot(conv_reference(x, u, **params), dy))
    abs_params = dict(params, pad_value=abs(params["pad_value"]))
    scale_w = float(np.vdot(conv_reference(np.abs(x), np.abs(u), **abs_params), np.abs(dy)))
    assert abs(lhs_w - float(np.vdot(u, dw))) <= tolerance * (scale_w + 1), ("dw adjoint", lhs_w, float(np.vdot(u, dw)), scale_w)
    assert dx.dtype == dw.dtype == case.out_dtype and dx.shape == x.shape and dw.shape == w.shape
    if algorithm == "auto":
        return  # auto's pick depends on the thread count
    for name, got, call in [
        ("forward", y, lambda: nc.conv(x, w, **kwargs)),
        ("backprop_input", dx, lambda: nc.conv_backprop_input(dy, w, x.shape, **kwargs)),
        ("backprop_filter", dw, lambda: nc.conv_backprop_filter(x, dy, w.shape, **kwargs)),
    ]:
        single = _with_threads(1, call)
        assert np.array_equal(single, got), f"{name}: 1 and 2 threads differ by {float(np.max(np.abs(single - got))):.3g}"


# ------------------------------------------------------------------------------------ NaN / Inf


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN and inf - inf, on purpose
@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(0.7))
@given(data=st.data())
def test_non_finite_values_stay_in_their_receptive_field(algorithm, data):
    """NaN/Inf in x: exactly the outputs whose window (after padding, copies included) holds one are
    non-finite, as in the reference; every other output is still accurate."""
    case = data.draw(conv_cases(algorithm, dtype_pairs=[("float64", "float64"), ("float32", "float32")], relu=False,
                                layouts=False, kinds=("ones", "normal")), label="case")
    size = case.x.array.size
    assume(size > 0)
    spots = data.draw(st.lists(st.tuples(st.integers(0, size - 1), st.sampled_from(["np.nan", "np.inf", "-np.inf"])),
                               min_size=1, max_size=3), label="non-finite")
    statements = case.x.statements + [f"x.flat[{i}] = {v}" for i, v in spots]
    x = _build("x", statements)
    case = Case(x, case.w, None, case.params)
    expected = conv_reference(x.array, case.w.array, **case.params)
    candidates = eligible(x.shape, case.w.shape, case.out_dtype, case.params)
    assume(runs(algorithm, candidates))
    kwargs = case.kwargs(algorithm=algorithm)
    repro = case.repro(call_text("nc.conv", ["x", "w"], kwargs))
    note(f"reproducer: {repro}")
    y = nc.conv(x.array, case.w.array, **kwargs)
    assert y.shape == expected.shape
    wrong = np.isfinite(y) != np.isfinite(expected)
    assert not wrong.any(), (
        f"{int(wrong.sum())} outputs differ in finiteness from the reference (first at "
        f"{tuple(int(i) for i in np.argwhere(wrong)[0])}: got {y[tuple(np.argwhere(wrong)[0])]}, expected "
        f"{expected[tuple(np.argwhere(wrong)[0])]})\n  {repro}"
    )
    finite = np.isfinite(expected)
    assert_close(np.where(finite, y, 0).astype(y.dtype), np.where(finite, expected, 0),
                 magnitude(x.array, case.w.array, case.params), case.out_dtype, repro)


# ------------------------------------------------------------------------------------ transpose, depthwise, separable


@st.composite
def transpose_cases(draw, algorithm="auto"):
    """A conv_transpose call (the input gradient of a forward convolution whose output is ``x``),
    biased towards shapes ``algorithm`` runs: Winograd needs 3-tap kernels at stride and dilation 1,
    few_channels 16 channels of ``x`` per group (the forward's output channels)."""
    family = FAMILY.get(algorithm, "generic")
    rank = draw(st.sampled_from([2, 1] if family == "winograd" else [2, 1, 3]))
    groups = draw(st.integers(1, 3))
    cin, out_g = groups * (16 if family == "few_channels" else draw(st.integers(1, 2))), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, (6, 4, 3)[rank - 1])) for _ in range(rank))
    if family == "winograd":
        kernel, stride, dilation = (3,) * rank, (1,) * rank, (1,) * rank
    else:
        kernel = tuple(draw(st.integers(1, (4, 3, 2)[rank - 1])) for _ in range(rank))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    form = draw(st.sampled_from(["valid", "same", "int", "tuple", "pairs"]))
    if form in ("valid", "same"):
        padding = form
    elif form == "int":
        padding = draw(st.integers(0, 2))
    elif form == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    else:
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    output_padding = None
    if draw(st.booleans()):
        ops = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        output_padding = ops[0] if len(set(ops)) == 1 and draw(st.booleans()) else ops
    channels_first = draw(st.booleans())
    pairs = [p for p in DTYPE_PAIRS if family != "few_channels" or result_dtype(*p).name in ("float32", "float64")]
    x_dtype, w_dtype = draw(st.sampled_from(pairs))
    batch = draw(st.sampled_from([1, 2, 0]))
    x = draw(arrays("x", (batch, cin, *spatial) if channels_first else (batch, *spatial, cin), x_dtype))
    w = draw(arrays("w", (cin, out_g, *kernel) if channels_first else (*kernel, out_g, cin), w_dtype))
    out_dtype = result_dtype(x_dtype, w_dtype)
    bias = draw(arrays("bias", (out_g * groups,), out_dtype)) if draw(st.booleans()) else None
    params = dict(
        stride=stride if len(set(stride)) > 1 or draw(st.booleans()) else stride[0],
        padding=padding,
        output_padding=output_padding,
        dilation=dilation if len(set(dilation)) > 1 or draw(st.booleans()) else dilation[0],
        groups=groups,
        data_format="channels_first" if channels_first else "channels_last",
    )
    return x, w, bias, params, spatial, kernel


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(0.7))
@given(data=st.data())
def test_conv_transpose_matches_scatter_reference(algorithm, data):
    """conv_transpose == the reference's scatter definition (Keras sizes for string padding, PyTorch
    sizes and output_padding for explicit padding); an empty output is a ValueError; string padding
    whose size the forward convolution does not map back (TensorFlow refuses it) may be refused."""
    x, w, bias, params, spatial, kernel = data.draw(transpose_cases(algorithm), label="case")
    kwargs = {k: v for k, v in params.items() if v is not None and not (k in DEFAULTS and _same(v, DEFAULTS[k]))}
    kwargs["algorithm"] = algorithm
    args = ["x", "w"] + (["bias=bias"] if bias is not None else [])
    repro = "; ".join(["import numpy as np, npconv as nc"] + x.statements + w.statements
                      + (bias.statements if bias is not None else []) + [call_text("nc.conv_transpose", args, kwargs)])
    note(f"reproducer: {repro}")
    call_kwargs = dict(kwargs, **({"bias": bias.array} if bias is not None else {}))
    geometry = dict(stride=params["stride"], padding=params["padding"], output_padding=params["output_padding"],
                    dilation=params["dilation"])
    lengths, _ = conv_transpose_geometry(spatial, kernel, **geometry)
    before = snapshot(x, w)
    if min(lengths) < 1:
        with pytest.raises(ValueError, match="Received:"):
            nc.conv_transpose(x.array, w.array, **call_kwargs)
        return
    lenient = isinstance(params["padding"], str) and not transpose_forward_consistent(spatial, kernel, **geometry)
    try:
        y = nc.conv_transpose(x.array, w.array, **call_kwargs)
    except ValueError as error:
        if is_ineligible_error(error, algorithm) and algorithm != "auto":
            assume(False)
        if lenient and "Received:" in str(error):
            return
        raise
    expected = conv_transpose_reference(x.array, w.array, bias=None if bias is None else bias.array, **params)
    scale = float(np.max(conv_transpose_reference(np.abs(x.array.astype(np.float64)), np.abs(w.array.astype(np.float64)), **params), initial=0))
    scale += 0.0 if bias is None else float(np.max(np.abs(bias.array.astype(np.float64)), initial=0))
    assert_close(y, expected, scale, result_dtype(x.dtype, w.dtype), repro)
    assert_untouched([x, w], before, repro)


@st.composite
def depthwise_cases(draw, algorithm):
    spatial, kernel, params = draw(geometries(2, "winograd" if FAMILY.get(algorithm) == "winograd" else "generic"))
    channels, multiplier = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    if FAMILY.get(algorithm) == "few_channels":
        multiplier = 16
    channels_first = draw(st.booleans())
    data_format = draw(st.sampled_from(["channels_first", "NCHW"] if channels_first else ["channels_last", "NHWC"]))
    x_dtype = draw(st.sampled_from(["float64", "float32", "float16"] if FAMILY.get(algorithm) != "few_channels" else ["float64", "float32"]))
    batch = draw(st.sampled_from([1, 2, 0]))
    x = draw(arrays("x", (batch, channels, *spatial) if channels_first else (batch, *spatial, channels), x_dtype))
    dw = draw(arrays("dw", (*kernel, channels, multiplier), x_dtype))
    params.update(data_format=data_format)
    return x, dw, params


@pytest.mark.parametrize("algorithm", algorithm_params())
@settings(max_examples=examples(0.5))
@given(data=st.data())
def test_depthwise_and_separable_match_reference(algorithm, data):
    """depthwise_conv2d == grouped reference convolution; separable_conv2d == that, then a 1x1."""
    x, dw, params = data.draw(depthwise_cases(algorithm), label="case")
    channels, multiplier = dw.shape[2], dw.shape[3]
    out = data.draw(st.integers(1, 3), label="pointwise out")
    pw = data.draw(arrays("pw", (1, 1, channels * multiplier, out), x.dtype), label="pw")
    bias = data.draw(st.none() | arrays("bias", (out,), x.dtype), label="bias")
    kwargs = {k: v for k, v in params.items() if not (k in DEFAULTS and _same(v, DEFAULTS[k]))}
    if params["padding_mode"] != "constant":
        kwargs.pop("pad_value", None)
    kwargs["algorithm"] = algorithm
    grouped = dict(params, groups=channels, kernel_format="HWIO")
    hwio = depthwise_kernel_as_hwio(dw.array)
    candidates = eligible(x.shape, hwio.shape, result_dtype(x.dtype), grouped)
    assume(runs(algorithm, candidates))
    repro = "; ".join(["import numpy as np, npconv as nc"] + x.statements + dw.statements + [call_text("nc.depthwise_conv2d", ["x", "dw"], kwargs)])
    note(f"reproducer: {repro}")
    before = snapshot(x, dw, pw)
    y = nc.depthwise_conv2d(x.array, dw.array, **kwargs)
    middle = conv_reference(x.array, hwio, **grouped)
    assert_close(y, middle, magnitude(x.array, hwio, grouped), result_dtype(x.dtype), repro)
    # separable: the pointwise 1x1 runs with the same algorithm, which may not take 1x1 kernels
    pointwise = dict(data_format=params["data_format"], kernel_format="HWIO")
    if not runs(algorithm, eligible(middle.shape, pw.shape, result_dtype(x.dtype), pointwise)):
        return
    sep_kwargs = dict(kwargs, **({"bias": bias.array} if bias is not None else {}))
    repro = "; ".join(["import numpy as np, npconv as nc"] + x.statements + dw.statements + pw.statements
                      + (bias.statements if bias is not None else [])
                      + [call_text("nc.separable_conv2d", ["x", "dw", "pw"] + (["bias=bias"] if bias is not None else []), kwargs)])
    note(f"reproducer: {repro}")
    z = nc.separable_conv2d(x.array, dw.array, pw.array, **sep_kwargs)
    expected = conv_reference(middle, pw.array, bias=None if bias is None else bias.array, **pointwise)
    scale = magnitude(np.abs(middle), pw.array, pointwise, None if bias is None else bias.array)
    scale += float(np.max(np.abs(pw.array.astype(np.float64)), initial=0)) * magnitude(x.array, hwio, grouped) * channels * multiplier
    assert_close(z, expected, scale, result_dtype(x.dtype), repro)
    assert_untouched([x, dw, pw], before, repro)


# ------------------------------------------------------------------------------------ invalid arguments


@st.composite
def base_calls(draw):
    """A small valid float call (the arguments an invalid mutation starts from)."""
    rank = draw(st.sampled_from([2, 1, 3]))
    channels_first = draw(st.booleans())
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    spatial = tuple(draw(st.integers(4, 6)) for _ in range(rank))
    batch = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    x_shape = (batch, cin, *spatial) if channels_first else (batch, *spatial, cin)
    w_shape = (cout, cin // groups, *kernel) if channels_first else (*kernel, cin // groups, cout)
    params = dict(
        stride=draw(st.sampled_from([1, 2])),
        padding=draw(st.sampled_from(["valid", "same", 1])),
        groups=groups,
        data_format="channels_first" if channels_first else "channels_last",
        padding_mode=draw(st.sampled_from(["zeros", "reflect", "constant"])),
    )
    out = conv_reference(np.zeros((0, *x_shape[1:])), np.zeros(w_shape), **params).shape[1:]
    return dict(rank=rank, x_shape=x_shape, w_shape=w_shape, dy_shape=(batch, *out), dtype=dtype, params=params,
                cin=cin, cout=cout, groups=groups, spatial=spatial, kernel=kernel, channels_first=channels_first)


def _wrong_length(rank):
    return st.sampled_from([(1,) * (rank + 1), [1] * (rank + 1)] + ([(1,) * (rank - 1)] if rank > 1 else []))


def _bad_positive_ints(rank):
    return st.one_of(
        st.sampled_from([0, -1, -(2**40), 2.5, 2.0, "a", "2", True, None, 1j, np.float64(2.0), b"1"]),
        _wrong_length(rank),
        st.sampled_from([(1,) * (rank - 1) + (0,), (1,) * (rank - 1) + (-2,), (1.5,) * rank, ((1, 1),) * rank]),
    )


# Each mutation: name -> (function(draw, base) -> (changes, accepted names, value that must be
# shown as `name=repr(value)` or None), functions it applies to).  ``changes`` may set x_shape,
# w_shape, x_dtype, w_dtype, x (a non-array object), w, params entries, input_shape, kernel_shape,
# dy_shape, dy_dtype.
ALL_FUNCTIONS = ("conv", "convNd", "explain", "conv_backprop_input", "conv_backprop_filter")
FORWARD = ("conv", "convNd", "explain")


def _param(name, values):
    def mutate(draw, base):
        value = draw(values(base))
        return {"params": {name: value}}, [name], (name, value)

    return mutate


def _mutate_groups(draw, base):
    value = draw(st.sampled_from([0, -1, 1.5, "2", None, (1,), base["cin"] + 1]))
    return {"params": {"groups": value}}, ["groups", "x", "w", "input_shape", "kernel_shape", "dy"], ("groups", value)


def _mutate_padding(draw, base):
    rank = base["rank"]
    values = ["foo", "sames", "", "causal" if rank > 1 else "middle", -1, 1.5, None, 1j, (1,) * (rank + 1),
              ((1, 1),) * (rank + 1), ((1, 2, 3),) * rank, ((-1, 0),) * rank, (1,) * (rank - 1) + (-1,), "1", b"same"]
    value = draw(st.sampled_from(values))
    return {"params": {"padding": value}}, ["padding"], ("padding", value)


def _mutate_mode(draw, base):
    value = draw(st.sampled_from(["mirror", "wrap", "edge", "", "ZEROS", None, 3, ("zeros",)]))
    return {"params": {"padding_mode": value, "padding": 1}}, ["padding_mode"], ("padding_mode", value)


def _mutate_pad_value(draw, base):
    value = draw(st.sampled_from(["a", [1.0, 2.0], None, 1j, True, np.zeros(2)]))
    shown = None if isinstance(value, np.ndarray) else ("pad_value", value)
    return {"params": {"padding_mode": "constant", "padding": 1, "pad_value": value}}, ["pad_value"], shown


def _mutate_data_format(draw, base):
    rank = base["rank"]
    wrong_rank = [name for r, names in LAYOUT_ALIASES.items() if r != rank for name in names]
    value = draw(st.sampled_from(["NHCW", "channels_middle", "nhwc", "", 3, None, *wrong_rank]))
    return {"params": {"data_format": value}}, ["data_format"], ("data_format", value)


def _mutate_kernel_format(draw, base):
    rank = base["rank"]
    wrong_rank = [name for r, names in KERNEL_FORMATS.items() if r != rank for name in names]
    value = draw(st.sampled_from(["XYZW", "hwio", "", 3, *wrong_rank]))
    return {"params": {"kernel_format": value}}, ["kernel_format"], ("kernel_format", value)


def _mutate_flip(draw, base):
    value = draw(st.sampled_from(["yes", 2, None, [True], 1.0]))
    return {"params": {"flip": value}}, ["flip"], ("flip", value)


def _mutate_algorithm(draw, base):
    value = draw(st.sampled_from(["bogus", "", 3, None, ["direct"]]))
    return {"params": {"algorithm": value}}, ["algorithm"], ("algorithm", value)


BAD_DTYPES = ["complex128", "complex64", "object", "<U1", "datetime64[D]", "timedelta64[s]", "S1", "V8"] + (
    ["longdouble"] if np.dtype(np.longdouble).itemsize > 8 else []  # where long double is wider than float64
)


def _mutate_dtype(which):
    def mutate(draw, base):
        dtype = draw(st.sampled_from(BAD_DTYPES))
        return {f"{which}_dtype": dtype}, [which, "dtype", "dy"], None

    return mutate


def _mutate_junk(which):
    def mutate(draw, base):
        value = draw(st.sampled_from(["abc", None, {"a": 1}, 3.5, [[1, 2], [3]], object()]))
        return {which: value}, [which], None

    return mutate


def _mutate_rank(which):
    def mutate(draw, base):
        shape = base[f"{which}_shape"]
        ndim = draw(st.sampled_from([1, 2, len(shape) + 1, len(shape) + 3]).filter(lambda n: n != len(shape) and n <= 7))
        new = (shape + (2,) * 8)[:ndim]
        return {f"{which}_shape": new}, ["x", "w", "input_shape", "kernel_shape", "dy"], None

    return mutate


def _mutate_channels(draw, base):
    which = draw(st.sampled_from(["x", "w"]))
    shape = list(base[f"{which}_shape"])
    if which == "x":
        shape[1 if base["channels_first"] else -1] = base["cin"] + base["groups"]  # still divisible by groups
    else:
        shape[1 if base["channels_first"] else -2] += 1
    return {f"{which}_shape": tuple(shape)}, ["x", "w", "groups", "input_shape", "kernel_shape", "dy"], None


def _mutate_kernel_larger(draw, base):
    """A kernel (after dilation) larger than the padded input along one dim."""
    axis = draw(st.integers(0, base["rank"] - 1))
    dilation = draw(st.sampled_from([1, 2]))
    big = base["spatial"][axis] // dilation + 2
    shape = list(base["w_shape"])
    shape[(2 if base["channels_first"] else 0) + axis] = big
    names = ["padding", "w", "x", "dilation", "kernel_shape", "input_shape", "dy"]
    return {"w_shape": tuple(shape), "params": {"padding": "valid", "dilation": dilation, "stride": 1}}, names, None


def _mutate_pad_too_wide(draw, base):
    mode = draw(st.sampled_from(["reflect", "symmetric", "circular"]))
    n = min(base["spatial"])
    value = n + (0 if mode == "reflect" else 1) + draw(st.integers(0, 3))
    return {"params": {"padding_mode": mode, "padding": value}}, ["padding", "padding_mode"], None


def _mutate_bias(draw, base):
    cout = base["cout"]
    value = draw(st.sampled_from([np.zeros(cout + 1), np.zeros((1, cout)), np.zeros(cout, complex), "abc", np.zeros(cout, object)]))
    return {"bias": value}, ["bias"], None


def _mutate_input_shape(draw, base):
    shape = base["x_shape"]
    value = draw(st.sampled_from(["abc", None, 3, shape[:-1], shape + (1,), (-1,) + shape[1:], tuple(float(v) for v in shape),
                                  (shape[0] + 0.5,) + shape[1:], tuple(v + 7 for v in shape)]))
    return {"input_shape": value}, ["input_shape", "dy", "x", "w", "groups"], None


def _mutate_kernel_shape(draw, base):
    shape = base["w_shape"]
    value = draw(st.sampled_from(["abc", None, 3, shape[:-1], shape + (1,), (-1,) + shape[1:], tuple(float(v) for v in shape),
                                  tuple(v + 9 for v in shape)]))
    return {"kernel_shape": value}, ["kernel_shape", "dy", "x", "w", "groups"], None


def _mutate_dy(draw, base):
    shape = base["dy_shape"]
    kind = draw(st.sampled_from(["shape", "rank", "dtype", "junk"]))
    if kind == "shape":
        return {"dy_shape": tuple(v + 1 for v in shape)}, ["dy", "input_shape", "kernel_shape", "x", "w"], None
    if kind == "rank":
        return {"dy_shape": shape[:-1]}, ["dy", "input_shape", "kernel_shape", "x", "w"], None
    if kind == "dtype":
        return {"dy_dtype": draw(st.sampled_from(["complex128", "object", "<U1"]))}, ["dy"], None
    return {"dy": draw(st.sampled_from(["abc", None, {"a": 1}]))}, ["dy"], None


MUTATIONS = {
    "stride": (_param("stride", lambda base: _bad_positive_ints(base["rank"])), ALL_FUNCTIONS),
    "dilation": (_param("dilation", lambda base: _bad_positive_ints(base["rank"])), ALL_FUNCTIONS),
    "groups": (_mutate_groups, ALL_FUNCTIONS),
    "padding": (_mutate_padding, ALL_FUNCTIONS),
    "padding_mode": (_mutate_mode, ALL_FUNCTIONS),
    "pad_value": (_mutate_pad_value, ALL_FUNCTIONS),
    "data_format": (_mutate_data_format, ALL_FUNCTIONS),
    "kernel_format": (_mutate_kernel_format, ALL_FUNCTIONS),
    "flip": (_mutate_flip, ALL_FUNCTIONS),
    "algorithm": (_mutate_algorithm, ALL_FUNCTIONS),
    "x_dtype": (_mutate_dtype("x"), ("conv", "convNd", "conv_backprop_filter")),
    "w_dtype": (_mutate_dtype("w"), ("conv", "convNd", "conv_backprop_input")),
    "x_junk": (_mutate_junk("x"), ("conv", "convNd", "conv_backprop_filter")),
    "w_junk": (_mutate_junk("w"), ("conv", "convNd", "conv_backprop_input")),
    "x_rank": (_mutate_rank("x"), ("conv", "convNd", "explain", "conv_backprop_filter")),
    "w_rank": (_mutate_rank("w"), ALL_FUNCTIONS),
    "channels": (_mutate_channels, ALL_FUNCTIONS),
    "kernel_larger_than_padded_input": (_mutate_kernel_larger, ALL_FUNCTIONS),
    "pad_too_wide_for_mode": (_mutate_pad_too_wide, ALL_FUNCTIONS),
    "bias": (_mutate_bias, ("conv", "convNd")),
    "input_shape": (_mutate_input_shape, ("conv_backprop_input",)),
    "kernel_shape": (_mutate_kernel_shape, ("conv_backprop_filter",)),
    "dy": (_mutate_dy, ("conv_backprop_input", "conv_backprop_filter")),
}

NAME_FORMS = {  # how an argument may be named in a message, per function
    "x": ("x", "x.shape", "x.dtype", "x.ndim", "x_shape"),
    "w": ("w", "w.shape", "w.dtype", "w.ndim", "w_shape"),
    "dy": ("dy", "dy.shape", "dy.dtype", "dy.ndim"),
    "bias": ("bias", "bias.shape", "bias.dtype"),
    "dtype": ("dtype",),
    "depthwise_w": ("depthwise_w", "depthwise_w.shape", "depthwise_w.dtype"),
    "pointwise_w": ("pointwise_w", "pointwise_w.shape", "pointwise_w.dtype"),
    # conv_backprop_input's input_shape is conv's x.shape, conv_backprop_filter's kernel_shape its w.shape
    "input_shape": ("input_shape", "x.shape", "x_shape"),
    "kernel_shape": ("kernel_shape", "w.shape", "w_shape"),
}


def _array(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "MmUSVO":
        return np.zeros(shape, dtype)
    return np.ones(shape, dtype)


def build_invalid_call(base, changes, function):
    """(callable, reproducer) of ``function`` on the base call with ``changes`` applied."""
    params = {**base["params"], **changes.get("params", {})}
    x_shape, w_shape = changes.get("x_shape", base["x_shape"]), changes.get("w_shape", base["w_shape"])
    dtype = base["dtype"]
    x = changes["x"] if "x" in changes else _array(x_shape, changes.get("x_dtype", dtype))
    w = changes["w"] if "w" in changes else _array(w_shape, changes.get("w_dtype", dtype))
    dy = changes["dy"] if "dy" in changes else _array(changes.get("dy_shape", base["dy_shape"]), changes.get("dy_dtype", dtype))
    bias = changes.get("bias")
    rank = base["rank"]

    def shown(a, name):
        if isinstance(a, np.ndarray):
            return f"np.ones({a.shape}, {a.dtype.name!r})" if a.dtype.kind not in "MmUSVO" else f"np.zeros({a.shape}, {a.dtype.str!r})"
        return repr(a)

    kwargs_text = ", ".join(f"{k}={v!r}" for k, v in params.items())
    bias_kw = {} if bias is None else {"bias": bias}
    bias_text = "" if bias is None else f", bias={shown(bias, 'bias')}"
    if function == "conv":
        return lambda: nc.conv(x, w, **params, **bias_kw), f"nc.conv({shown(x, 'x')}, {shown(w, 'w')}, {kwargs_text}{bias_text})"
    if function == "convNd":
        fn = {1: nc.conv1d, 2: nc.conv2d, 3: nc.conv3d}[rank]
        return lambda: fn(x, w, **params, **bias_kw), f"nc.conv{rank}d({shown(x, 'x')}, {shown(w, 'w')}, {kwargs_text}{bias_text})"
    if function == "explain":
        dt = changes.get("x_dtype", changes.get("w_dtype", dtype))
        return (lambda: nc.explain(x_shape, w_shape, dtype=np.dtype(dt), **params),
                f"nc.explain({x_shape}, {w_shape}, dtype=np.dtype({np.dtype(dt).str!r}), {kwargs_text})")
    if function == "conv_backprop_input":
        input_shape = changes.get("input_shape", x_shape)
        return (lambda: nc.conv_backprop_input(dy, w, input_shape, **params),
                f"nc.conv_backprop_input({shown(dy, 'dy')}, {shown(w, 'w')}, {input_shape!r}, {kwargs_text})")
    kernel_shape = changes.get("kernel_shape", w_shape)
    return (lambda: nc.conv_backprop_filter(x, dy, kernel_shape, **params),
            f"nc.conv_backprop_filter({shown(x, 'x')}, {shown(dy, 'dy')}, {kernel_shape!r}, {kwargs_text})")


def _names_pattern(names):
    forms = sorted({form for name in names for form in NAME_FORMS.get(name, (name,))}, key=len, reverse=True)
    return re.compile(r"(?s)Received:.*(?<![\w.])(?:" + "|".join(re.escape(f) for f in forms) + r")=")


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@settings(max_examples=examples(0.4))
@given(data=st.data())
def test_invalid_arguments_raise_value_or_type_error_naming_them(mutation, data):
    """One invalid argument on a valid call: only ValueError/TypeError, with a Keras-style
    ``Received: name=value`` naming it (arrays by ``name.shape``/``name.dtype``), in conv,
    conv1d/2d/3d, explain and both gradients."""
    mutate, functions = MUTATIONS[mutation]
    base = data.draw(base_calls(), label="base")
    function = data.draw(st.sampled_from(functions), label="function")
    changes, names, shown = mutate(data.draw, base)
    call, repro = build_invalid_call(base, changes, function)
    note(f"reproducer: import numpy as np, npconv as nc; {repro}")
    try:
        call()
    except (ValueError, TypeError) as error:
        message = str(error)
    else:
        raise AssertionError(f"accepted an invalid `{mutation}`: {repro}")
    assert _names_pattern(names).search(message), f"message does not name {names}: {message!r}\n  {repro}"
    if shown is not None:
        name, value = shown
        assert f"{name}={value!r}" in message, f"message does not show `{name}={value!r}`: {message!r}\n  {repro}"


@st.composite
def invalid_other_calls(draw):
    """conv_transpose, depthwise_conv2d and separable_conv2d with one invalid argument:
    (function, x dtype, w shape, keyword arguments, accepted names, (name, value) to show)."""
    function = draw(st.sampled_from(["conv_transpose", "depthwise_conv2d", "separable_conv2d"]))
    kinds = ["stride", "dilation", "padding", "data_format", "x_dtype", "w_shape", "algorithm", "bias"]
    kinds += ["output_padding"] if function == "conv_transpose" else ["padding_mode"]
    kind = draw(st.sampled_from(kinds))
    kwargs, names, x_dtype = {}, [kind], "float64"
    w_shape = (3, 3, 4, 2) if function == "conv_transpose" else (3, 3, 2, 2)  # x: (1, 5, 5, 2)
    if kind in ("stride", "dilation"):
        kwargs[kind] = draw(_bad_positive_ints(2))
    elif kind == "padding":
        kwargs[kind] = draw(st.sampled_from(["foo", -1, 1.5, None, ((1, 1),) * 3, ((-1, 0),) * 2]))
    elif kind == "output_padding":
        kwargs.update(stride=2, output_padding=draw(st.sampled_from([2, -1, (1, 1, 1), 1.5, "a", (0, 5)])))
    elif kind == "data_format":
        kwargs[kind] = draw(st.sampled_from(["NHCW", "NCDHW", "NWC", 3, None]))
    elif kind == "algorithm":
        kwargs[kind] = draw(st.sampled_from(["bogus", 3, None]))
    elif kind == "padding_mode":
        kwargs.update(padding=1, padding_mode=draw(st.sampled_from(["mirror", None, 3])))
    elif kind == "bias":
        kwargs[kind] = draw(st.sampled_from([(7,), (1, 4), "complex"]))
    elif kind == "x_dtype":
        x_dtype = draw(st.sampled_from(["complex128", "object", "datetime64[D]"]))
        names = ["x"]
    else:  # a kernel of the wrong rank or with the wrong input channels
        w_shape = draw(st.sampled_from([(3, 3, 2), (3, 3, 4, 5) if function == "conv_transpose" else (3, 3, 5, 2), (3, 3, 2, 2, 1)]))
        names = ["w", "x", "depthwise_w"]
    shown = (kind, kwargs[kind]) if kind in kwargs and kind != "bias" else None
    return function, x_dtype, w_shape, kwargs, names, shown


@settings(max_examples=examples(3))
@given(call=invalid_other_calls())
def test_invalid_transpose_depthwise_separable_arguments(call):
    """The same for conv_transpose, depthwise_conv2d and separable_conv2d."""
    function, x_dtype, w_shape, kwargs, names, shown = call
    x = np.zeros((1, 5, 5, 2), x_dtype)
    w, pw = np.ones(w_shape), np.ones((1, 1, 4, 3))
    if "bias" in kwargs:
        kwargs = dict(kwargs, bias=np.zeros(4, complex) if kwargs["bias"] == "complex" else np.zeros(kwargs["bias"]))
    args = (x, w, pw) if function == "separable_conv2d" else (x, w)
    text = ", ".join([f"np.zeros({a.shape}, {a.dtype.str!r})" for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    repro = f"nc.{function}({text})"
    note(f"reproducer: import numpy as np, npconv as nc; {repro}")
    try:
        getattr(nc, function)(*args, **kwargs)
    except (ValueError, TypeError) as error:
        message = str(error)
    else:
        raise AssertionError(f"accepted: {repro}")
    names = names + ["depthwise_w", "pointwise_w"] if "w" in names else names
    assert _names_pattern(names).search(message), f"message does not name {names}: {message!r}\n  {repro}"
    if shown is not None:
        name, value = shown
        assert f"{name}={value!r}" in message, f"message does not show `{name}={value!r}`: {message!r}\n  {repro}"


# ------------------------------------------------------------------------------------ huge sizes

HUGE = [2**40, 2**32, 2**62, 10**12, 2**63 - 1, 2**64]
HUGE_STRIDES = HUGE + ([2**20, 2**24] if LONG else [])  # 2**20: a padding that large is a valid 50 MB call


def traced_peak(call):
    """(result or exception, peak traced bytes) of ``call()``."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except Exception as error:  # noqa: BLE001 - judged by the caller
            outcome = error
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return outcome, peak


@st.composite
def huge_stride_cases(draw, algorithm):
    case = draw(conv_cases(algorithm, dtype_pairs=FLOAT_PAIRS, relu=False, layouts=False, kinds=("ones", "normal")))
    huge = draw(st.sampled_from(HUGE_STRIDES))
    rank = case.rank
    axes = draw(st.sets(st.integers(0, rank - 1), min_size=1))
    return case, huge, axes


def _spatial(case):
    cf = is_channels_first(case.params["data_format"])
    return case.x.shape[2:] if cf else case.x.shape[1:-1]


@pytest.mark.parametrize("direction", ["forward", "backprop_input", "backprop_filter"])
@pytest.mark.parametrize("algorithm", [p for p in algorithm_params() if FAMILY.get(p.values[0]) != "winograd"])  # stride 1 only
@settings(max_examples=examples(0.4))
@given(data=st.data())
def test_huge_strides_are_cheap_and_correct(direction, algorithm, data):
    """A stride of 2**32 or more (one output along that dim) is a valid call: it runs in under
    1 MiB of traced allocations and equals the reference with the stride cut to the padded size
    (the same output), or is refused with a ValueError/TypeError naming ``stride``."""
    case, huge, axes = data.draw(huge_stride_cases(algorithm), label="case")
    rank = case.rank
    strides = list(case.params["stride"]) if isinstance(case.params["stride"], (tuple, list)) else [int(case.params["stride"])] * rank
    spatial = _spatial(case)
    cut = list(strides)
    for axis in axes:
        strides[axis] = huge
        cut[axis] = spatial[axis] + 2 * 16  # >= the padded size: one output, same padding as the huge stride
    huge_params = dict(case.params, stride=tuple(strides))
    small_params = dict(case.params, stride=tuple(cut))
    out_dtype = case.out_dtype
    expected_y = conv_reference(case.x.array, case.w.array, **small_params)
    assume(runs(algorithm, eligible(case.x.shape, case.w.shape, out_dtype, small_params)))
    try:  # explain itself must cope with the huge stride
        candidates = eligible(case.x.shape, case.w.shape, out_dtype, huge_params)
    except (ValueError, TypeError) as error:
        assert re.search(r"Received:.*stride=", str(error)), str(error)
        return
    assert runs(algorithm, candidates), f"{algorithm} is eligible at stride {cut} but not at {strides}"
    dy = np.random.default_rng(0).standard_normal(expected_y.shape).astype(out_dtype)
    kwargs = dict(Case(case.x, case.w, None, huge_params).kwargs(algorithm=algorithm))
    small_kwargs = dict(kwargs, stride=tuple(cut))
    x, w = case.x.array, case.w.array
    if direction == "forward":
        def call(kw): return nc.conv(x, w, **kw)
        expected, scale = expected_y, magnitude(x, w, small_params)
        text = call_text("nc.conv", ["x", "w"], kwargs)
    elif direction == "backprop_input":
        def call(kw): return nc.conv_backprop_input(dy, w, x.shape, **kw)
        expected, scale = reference_input_gradient(dy, w, x.shape, small_params)
        text = call_text("nc.conv_backprop_input", [f"np.random.default_rng(0).standard_normal({dy.shape}).astype({out_dtype.name!r})", "w", repr(x.shape)], kwargs)
    else:
        def call(kw): return nc.conv_backprop_filter(x, dy, w.shape, **kw)
        expected, scale = reference_filter_gradient(x, dy, w.shape, small_params)
        text = call_text("nc.conv_backprop_filter", ["x", f"np.random.default_rng(0).standard_normal({dy.shape}).astype({out_dtype.name!r})", repr(w.shape)], kwargs)
    repro = case.repro(text, {"x", "w"})
    note(f"reproducer: {repro}")
    try:  # warm up (Numba compilation, lazy imports) with the equivalent small stride
        call(small_kwargs)
    except Exception:  # noqa: BLE001, S110 - only a warm-up
        pass
    outcome, peak = traced_peak(lambda: call(kwargs))
    assert peak < MIB, f"peak traced allocation {peak:,} bytes ({type(outcome).__name__}: {str(outcome)[:200]})\n  {repro}"
    if isinstance(outcome, Exception):
        if isinstance(outcome, (ValueError, TypeError)) and re.search(r"Received:.*stride=", str(outcome)):
            return
        raise outcome
    assert_close(outcome, expected, scale, out_dtype, repro)


@st.composite
def huge_requests(draw):
    """A call whose arguments request a huge size: (description, callable, reproducer, names)."""
    huge = draw(st.sampled_from(HUGE))
    kind = draw(st.sampled_from(["padding", "padding_pair", "dilation_same", "dilation_full", "transpose_stride",
                                 "transpose_output_padding", "transpose_padding", "input_shape", "kernel_shape",
                                 "depthwise_stride", "pad_reflect"]))
    rank = draw(st.sampled_from([2, 1, 3]))
    x = np.ones((1,) + (5,) * rank + (2,))
    w = np.ones((3,) * rank + (2, 3))
    xs, ws = f"np.ones({x.shape})", f"np.ones({w.shape})"
    if kind == "padding":
        return kind, lambda: nc.conv(x, w, padding=huge), f"nc.conv({xs}, {ws}, padding={huge})", ["padding"]
    if kind == "padding_pair":
        pads = ((0, huge),) + ((1, 1),) * (rank - 1)
        return kind, lambda: nc.conv(x, w, padding=pads), f"nc.conv({xs}, {ws}, padding={pads})", ["padding"]
    if kind == "pad_reflect":
        return (kind, lambda: nc.conv(x, w, padding=huge, padding_mode="reflect"),
                f"nc.conv({xs}, {ws}, padding={huge}, padding_mode='reflect')", ["padding", "padding_mode"])
    if kind in ("dilation_same", "dilation_full"):
        padding = kind.split("_")[1]
        return (kind, lambda: nc.conv(x, w, dilation=huge, padding=padding), f"nc.conv({xs}, {ws}, dilation={huge}, padding={padding!r})",
                ["dilation", "padding", "x", "w"])
    wt = np.ones((3,) * rank + (3, 2))
    wts = f"np.ones({wt.shape})"
    if kind == "transpose_stride":
        return kind, lambda: nc.conv_transpose(x, wt, stride=huge), f"nc.conv_transpose({xs}, {wts}, stride={huge})", ["stride"]
    if kind == "transpose_output_padding":
        return (kind, lambda: nc.conv_transpose(x, wt, stride=huge, output_padding=huge - 1),
                f"nc.conv_transpose({xs}, {wts}, stride={huge}, output_padding={huge - 1})", ["stride", "output_padding"])
    if kind == "transpose_padding":
        return kind, lambda: nc.conv_transpose(x, wt, padding=huge), f"nc.conv_transpose({xs}, {wts}, padding={huge})", ["padding"]
    if kind == "input_shape":  # dx would be huge: (1, huge, ..., 2) with a stride as large
        shape = (1,) + (huge,) * rank + (2,)
        dy = np.ones((1,) + (1,) * rank + (3,))
        return (kind, lambda: nc.conv_backprop_input(dy, w, shape, stride=huge + 1),
                f"nc.conv_backprop_input(np.ones({dy.shape}), {ws}, {shape}, stride={huge + 1})", ["input_shape", "stride", "dy"])
    if kind == "kernel_shape":
        shape = (huge,) * rank + (2, 3)
        dy = np.ones((1,) + (1,) * rank + (3,))
        return (kind, lambda: nc.conv_backprop_filter(x, dy, shape), f"nc.conv_backprop_filter({xs}, np.ones({dy.shape}), {shape})",
                ["kernel_shape", "dy", "x"])
    xd = np.ones((1, 5, 5, 2))
    huge = draw(st.sampled_from(HUGE_STRIDES))
    return (kind, lambda: nc.depthwise_conv2d(xd, np.ones((3, 3, 2, 2)), stride=huge),
            f"nc.depthwise_conv2d(np.ones((1, 5, 5, 2)), np.ones((3, 3, 2, 2)), stride={huge})", ["stride"])


@settings(max_examples=examples(2))
@given(request=huge_requests())
def test_huge_requested_sizes_allocate_little(request):
    """Huge paddings, dilations, transposed strides/output paddings, input or kernel shapes: refused
    with a ValueError/TypeError naming the argument (or, where the result is small, computed) with
    under 1 MiB of traced allocations."""
    kind, call, repro, names = request
    note(f"reproducer: import numpy as np, npconv as nc; {repro}")
    try:
        call()  # once untraced: lazy imports and Numba compilation are not the call's allocation
    except Exception:  # noqa: BLE001, S110 - only a warm-up
        pass
    outcome, peak = traced_peak(call)
    assert peak < MIB, f"peak traced allocation {peak:,} bytes ({type(outcome).__name__}: {str(outcome)[:200]})\n  {repro}"
    if kind == "depthwise_stride" and not isinstance(outcome, Exception):
        return  # valid calls with small results
    if not isinstance(outcome, Exception):
        pytest.fail(f"a huge result was not refused (size {getattr(outcome, 'size', None)})\n  {repro}")
    assert isinstance(outcome, (ValueError, TypeError)), f"{type(outcome).__name__}: {outcome}\n  {repro}"
    assert _names_pattern(names).search(str(outcome)), f"message does not name {names}: {str(outcome)!r}\n  {repro}"


# ------------------------------------------------------------------------------------ shapes


@settings(max_examples=examples(2))
@given(case=conv_cases(relu=False, layouts=False, kinds=("ones",)))
def test_output_shape_equals_conv_and_transpose(case):
    """nc.output_shape == the spatial shape nc.conv gives (and, transposed, conv_transpose's)."""
    params = case.params
    spatial = _spatial(case)
    rank = case.rank
    kernel = case.w.shape[:rank] if kernel_is_spatial_first(params["data_format"], params["kernel_format"]) else case.w.shape[2:]
    expected = conv_reference(case.x.array[:0], case.w.array, **params).shape
    expected_spatial = expected[2:] if is_channels_first(params["data_format"]) else expected[1:-1]
    geometry = dict(stride=params["stride"], padding=params["padding"], dilation=params["dilation"])
    assert output_shape(tuple(spatial), tuple(kernel), **geometry) == tuple(expected_spatial)
    if rank == 1:
        assert output_shape(int(spatial[0]), int(kernel[0]), **geometry) == expected_spatial[0]


LAYER_SPECS = st.one_of(
    st.builds(lambda k, s, p, d: f"conv:{k},s={s},p={p},d={d}", st.integers(1, 5), st.integers(1, 3),
              st.sampled_from(["valid", "same", "1", "0"]), st.integers(1, 3)),
    st.builds(lambda k, s: ("pool", k, s), st.integers(1, 3), st.integers(1, 3)),
    st.builds(lambda k, s, p: {"kernel_size": k, "strides": s, "padding": p}, st.integers(1, 4), st.integers(1, 3), st.integers(0, 2)),
    st.builds(lambda p: f"pad:{p}", st.integers(0, 2)),
)
JUNK = st.one_of(
    st.none(), st.integers(-3, 5), st.floats(allow_nan=True), st.booleans(), st.binary(max_size=3), st.text(max_size=6),
    st.tuples(st.integers(0, 4), st.integers(0, 4)), st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(np.array([3, 1])), st.just(object()), st.just(np.float64(3.0)),
)


@settings(max_examples=examples(3))
@given(layers=st.lists(LAYER_SPECS | JUNK, max_size=4), input_size=st.none() | st.integers(-2, 64) | JUNK)
def test_receptive_field_takes_valid_specs_and_rejects_the_rest(layers, input_size):
    """receptive_field raises only ValueError/TypeError on anything that is not a documented layer
    spec (naming ``layers``, its index, or ``input_size``); valid stacks give a field >= 1."""
    note(f"reproducer: import npconv as nc; nc.receptive_field({layers!r}, input_size={input_size!r})")
    try:
        table = receptive_field(layers, input_size)
    except (ValueError, TypeError) as error:
        assert re.search(r"layers|input_size", str(error)), str(error)
        return
    assert all(isinstance(spec, (str, dict, tuple)) for spec in layers), f"accepted a non-spec in {layers!r}"
    assert min(table.receptive_field) >= 1 and min(table.jump) >= 1
    if table.size is not None:
        assert min(table.size) >= 1
