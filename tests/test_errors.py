"""Bad-input tests for npconv's public API.

Every case asserts the exception type and that the message carries a Keras-style
"Received: name=value" part naming the offending public parameter and the value it got
(conventions: "Received: stride=0", "Received: x.shape=(2, 5)", "Received: w.dtype=complex128").

Where the conventions allow either TypeError or ValueError (bool/float stride or dilation,
non-bool flip, non-numeric pad_value) both are accepted; otherwise the type is exact:
bad values -> ValueError, bad dtypes / non-array junk -> TypeError.

Where a check could legitimately name one of two things (channel mismatch: x or w; reflect pad
too wide: padding or padding_mode), the case lists the accepted alternatives.
"""

import re
import tracemalloc

import numpy as np
import pytest

import npconv as nc

VE = ValueError
TE = TypeError
EITHER = (TypeError, ValueError)

_rng = np.random.default_rng(1234)

# Small, valid operands.  Shapes are chosen so every "bad" case differs from a valid call in
# exactly one argument.
X1 = _rng.standard_normal((1, 7, 3)).astype(np.float32)          # NWC
W1 = _rng.standard_normal((3, 3, 4)).astype(np.float32)          # WIO
X2 = _rng.standard_normal((1, 5, 5, 3)).astype(np.float32)       # NHWC
W2 = _rng.standard_normal((3, 3, 3, 4)).astype(np.float32)       # HWIO
X2CF = np.ascontiguousarray(X2.transpose(0, 3, 1, 2))            # NCHW
W2CF = np.ascontiguousarray(W2.transpose(3, 2, 0, 1))            # OIHW
X3 = _rng.standard_normal((1, 4, 4, 4, 2)).astype(np.float32)    # NDHWC
W3 = _rng.standard_normal((2, 2, 2, 2, 3)).astype(np.float32)    # DHWIO
DY2 = _rng.standard_normal((1, 3, 3, 4)).astype(np.float32)      # conv(X2, W2) valid output
WT2 = _rng.standard_normal((3, 3, 4, 3)).astype(np.float32)      # conv_transpose: (kh, kw, out, in)
DW2 = _rng.standard_normal((3, 3, 3, 2)).astype(np.float32)      # depthwise (kh, kw, C, mult)
PW2 = _rng.standard_normal((1, 1, 6, 4)).astype(np.float32)      # pointwise (1, 1, C*mult, out)
B4 = np.zeros(4, np.float32)

BIG = 10 ** 12


def conv2(**kw):
    return lambda: nc.conv(X2, W2, **kw)


def received(*alternatives):
    """Regex: 'Received:' followed (anywhere later) by one of the exact `name=value` strings."""
    alts = "|".join(re.escape(a) for a in alternatives)
    return r"(?s)Received:.*(?:" + alts + r")(?![0-9])"


# (id, callable, expected exception type(s), accepted "name=value" strings)
CASES = [
    # ---- stride -------------------------------------------------------------------------------
    ("stride-zero", conv2(stride=0), VE, ["stride=0"]),
    ("stride-negative", conv2(stride=-1), VE, ["stride=-1"]),
    ("stride-float", conv2(stride=1.5), EITHER, ["stride=1.5"]),
    ("stride-float-integral", conv2(stride=2.0), EITHER, ["stride=2.0"]),
    ("stride-bool", conv2(stride=True), EITHER, ["stride=True"]),
    ("stride-tuple-has-zero", conv2(stride=(1, 0)), VE, ["stride=(1, 0)"]),
    ("stride-tuple-too-long", conv2(stride=(1, 1, 1)), VE, ["stride=(1, 1, 1)"]),
    ("stride-tuple-too-short-3d", lambda: nc.conv(X3, W3, stride=(1, 1)), VE, ["stride=(1, 1)"]),
    ("stride-str", conv2(stride="2"), EITHER, ["stride='2'"]),
    # ---- dilation -----------------------------------------------------------------------------
    ("dilation-zero", conv2(dilation=0), VE, ["dilation=0"]),
    ("dilation-negative", conv2(dilation=-2), VE, ["dilation=-2"]),
    ("dilation-float", conv2(dilation=1.5), EITHER, ["dilation=1.5"]),
    ("dilation-bool", conv2(dilation=True), EITHER, ["dilation=True"]),
    ("dilation-tuple-too-long", conv2(dilation=(1, 1, 1)), VE, ["dilation=(1, 1, 1)"]),
    ("dilation-tuple-has-negative", conv2(dilation=(1, -1)), VE, ["dilation=(1, -1)"]),
    # ---- ranks / shapes -----------------------------------------------------------------------
    ("x-rank-too-low", lambda: nc.conv(np.zeros((2, 5), np.float32), W2), VE, ["x.shape=(2, 5)"]),
    ("x-rank-too-high", lambda: nc.conv(np.zeros((1, 5, 5, 5, 3), np.float32), W2), VE,
     ["x.shape=(1, 5, 5, 5, 3)"]),
    ("w-rank-2", lambda: nc.conv(X2, np.zeros((3, 3), np.float32)), VE, ["w.shape=(3, 3)"]),
    ("w-rank-6", lambda: nc.conv(np.zeros((1, 3, 3, 3, 3, 1), np.float32),
                                 np.zeros((1, 1, 1, 1, 1, 1), np.float32)), VE,
     ["w.shape=(1, 1, 1, 1, 1, 1)"]),
    ("conv2d-given-1d-kernel", lambda: nc.conv2d(X1, W1), VE, ["w.shape=(3, 3, 4)"]),
    ("conv1d-given-2d-kernel", lambda: nc.conv1d(X2, W2), VE, ["w.shape=(3, 3, 3, 4)"]),
    ("conv3d-given-2d-kernel", lambda: nc.conv3d(X2, W2), VE, ["w.shape=(3, 3, 3, 4)"]),
    ("in-channel-mismatch", lambda: nc.conv(X2, np.zeros((3, 3, 2, 4), np.float32)), VE,
     ["w.shape=(3, 3, 2, 4)", "x.shape=(1, 5, 5, 3)"]),
    ("in-channel-mismatch-channels-first",
     lambda: nc.conv(X2CF, np.zeros((4, 2, 3, 3), np.float32), data_format="channels_first"), VE,
     ["w.shape=(4, 2, 3, 3)", "x.shape=(1, 3, 5, 5)"]),
    # ---- groups -------------------------------------------------------------------------------
    ("groups-zero", conv2(groups=0), VE, ["groups=0"]),
    ("groups-negative", conv2(groups=-1), VE, ["groups=-1"]),
    ("groups-float", conv2(groups=1.5), EITHER, ["groups=1.5"]),
    ("groups-not-dividing-in-channels",
     lambda: nc.conv(X2, np.zeros((3, 3, 1, 4), np.float32), groups=2), VE, ["groups=2"]),
    ("groups-not-dividing-out-channels",
     lambda: nc.conv(np.zeros((1, 5, 5, 4), np.float32), np.zeros((3, 3, 2, 3), np.float32),
                     groups=2), VE, ["groups=2"]),
    # ---- padding ------------------------------------------------------------------------------
    ("padding-unknown-string", conv2(padding="foo"), VE, ["padding='foo'"]),
    ("padding-uppercase-typo", conv2(padding="sames"), VE, ["padding='sames'"]),
    ("padding-causal-2d", conv2(padding="causal"), VE, ["padding='causal'"]),
    ("padding-causal-3d", lambda: nc.conv(X3, W3, padding="causal"), VE, ["padding='causal'"]),
    ("padding-negative-int", conv2(padding=-1), VE, ["padding=-1"]),
    ("padding-negative-per-dim", conv2(padding=(1, -1)), VE, ["padding=(1, -1)"]),
    ("padding-negative-pair", conv2(padding=((1, 1), (-1, 0))), VE, ["padding=((1, 1), (-1, 0))"]),
    ("padding-per-dim-wrong-length", conv2(padding=(1, 1, 1)), VE, ["padding=(1, 1, 1)"]),
    ("padding-pairs-wrong-count", conv2(padding=((1, 1), (1, 1), (1, 1))), VE,
     ["padding=((1, 1), (1, 1), (1, 1))"]),
    ("padding-pair-wrong-length", conv2(padding=((1, 2, 3), (0, 0))), VE,
     ["padding=((1, 2, 3), (0, 0))"]),
    ("padding-float", conv2(padding=1.5), EITHER, ["padding=1.5"]),
    ("padding-none", conv2(padding=None), EITHER, ["padding=None"]),
    # ---- padding_mode / pad_value -------------------------------------------------------------
    ("padding-mode-mirror", conv2(padding="same", padding_mode="mirror"), VE,
     ["padding_mode='mirror'"]),
    ("padding-mode-unknown-valid-padding", conv2(padding_mode="wrap"), VE, ["padding_mode='wrap'"]),
    ("reflect-pad-equal-n", lambda: nc.conv(np.zeros((1, 3, 3, 1), np.float32),
                                            np.zeros((1, 1, 1, 1), np.float32),
                                            padding=3, padding_mode="reflect"), VE,
     ["padding=3", "padding_mode='reflect'"]),
    ("reflect-pad-wider-than-n", lambda: nc.conv(np.zeros((1, 3, 3, 1), np.float32),
                                                 np.zeros((1, 1, 1, 1), np.float32),
                                                 padding=((0, 0), (5, 0)),
                                                 padding_mode="reflect"), VE,
     ["padding=((0, 0), (5, 0))", "padding_mode='reflect'"]),
    ("circular-pad-greater-than-n", lambda: nc.conv(np.zeros((1, 3, 3, 1), np.float32),
                                                    np.zeros((1, 1, 1, 1), np.float32),
                                                    padding=4, padding_mode="circular"), VE,
     ["padding=4", "padding_mode='circular'"]),
    ("symmetric-pad-greater-than-n", lambda: nc.conv(np.zeros((1, 3, 3, 1), np.float32),
                                                     np.zeros((1, 1, 1, 1), np.float32),
                                                     padding=4, padding_mode="symmetric"), VE,
     ["padding=4", "padding_mode='symmetric'"]),
    ("pad-value-string", conv2(padding=1, padding_mode="constant", pad_value="a"), EITHER,
     ["pad_value='a'"]),
    ("pad-value-list", conv2(padding=1, padding_mode="constant", pad_value=[1.0, 2.0]), EITHER,
     ["pad_value=[1.0, 2.0]"]),
    # ---- formats ------------------------------------------------------------------------------
    ("data-format-unknown", conv2(data_format="NHCW"), VE, ["data_format='NHCW'"]),
    ("data-format-lowercase-junk", conv2(data_format="channels_middle"), VE,
     ["data_format='channels_middle'"]),
    ("kernel-format-unknown", conv2(kernel_format="XYZW"), VE, ["kernel_format='XYZW'"]),
    # ---- kernel vs input ----------------------------------------------------------------------
    ("kernel-larger-than-input", lambda: nc.conv(np.zeros((1, 3, 3, 1), np.float32),
                                                 np.zeros((5, 5, 1, 1), np.float32)), VE,
     ["padding='valid'", "w.shape=(5, 5, 1, 1)", "x.shape=(1, 3, 3, 1)"]),
    ("dilated-kernel-larger-than-padded-input",
     lambda: nc.conv(np.zeros((1, 5, 5, 1), np.float32), np.zeros((3, 3, 1, 1), np.float32),
                     dilation=3, padding=(0, 1)), VE,
     ["padding=(0, 1)", "w.shape=(3, 3, 1, 1)", "dilation=3", "x.shape=(1, 5, 5, 1)"]),
    # ---- dtypes / junk ------------------------------------------------------------------------
    ("x-complex", lambda: nc.conv(X2.astype(np.complex128), W2), TE, ["x.dtype=complex128"]),
    ("w-complex64", lambda: nc.conv(X2, W2.astype(np.complex64)), TE, ["w.dtype=complex64"]),
    ("x-object", lambda: nc.conv(X2.astype(object), W2), TE, ["x.dtype=object"]),
    ("x-string-array", lambda: nc.conv(np.full((1, 5, 5, 3), "a"), W2), TE, ["x.dtype=<U1"]),
    ("w-datetime", lambda: nc.conv(X2, np.zeros((3, 3, 3, 4), "datetime64[D]")), TE,
     ["w.dtype=datetime64[D]"]),
    ("x-is-a-string", lambda: nc.conv("abc", W2), TE, ["x='abc'", "x.dtype=<U3"]),
    ("x-is-none", lambda: nc.conv(None, W2), TE, ["x=None", "x.dtype=object"]),
    ("w-is-a-dict", lambda: nc.conv(X2, {"a": 1}), TE, ["w={'a': 1}", "w.dtype=object"]),
    # ---- bias ---------------------------------------------------------------------------------
    ("bias-wrong-length", conv2(bias=np.zeros(3, np.float32)), VE, ["bias.shape=(3,)"]),
    ("bias-ndim-2", conv2(bias=np.zeros((1, 4), np.float32)), VE, ["bias.shape=(1, 4)"]),
    ("bias-complex", conv2(bias=np.zeros(4, np.complex128)), TE, ["bias.dtype=complex128"]),
    # ---- flip / algorithm ---------------------------------------------------------------------
    ("flip-not-bool", conv2(flip="yes"), EITHER, ["flip='yes'"]),
    ("algorithm-unknown", conv2(algorithm="bogus"), VE, ["algorithm='bogus'"]),
    ("algorithm-not-a-string", conv2(algorithm=3), EITHER, ["algorithm=3"]),
    # ---- conv_backprop_input / filter ---------------------------------------------------------
    ("backprop-input-shape-inconsistent-with-dy",
     lambda: nc.conv_backprop_input(DY2, W2, (1, 8, 8, 3)), VE,
     ["input_shape=(1, 8, 8, 3)", "dy.shape=(1, 3, 3, 4)"]),
    ("backprop-input-shape-wrong-rank",
     lambda: nc.conv_backprop_input(DY2, W2, (5, 5, 3)), VE, ["input_shape=(5, 5, 3)"]),
    ("backprop-input-shape-channel-mismatch",
     lambda: nc.conv_backprop_input(DY2, W2, (1, 5, 5, 2)), VE,
     ["input_shape=(1, 5, 5, 2)", "w.shape=(3, 3, 3, 4)"]),
    ("backprop-input-dy-channel-mismatch",
     lambda: nc.conv_backprop_input(np.zeros((1, 3, 3, 5), np.float32), W2, (1, 5, 5, 3)), VE,
     ["dy.shape=(1, 3, 3, 5)", "w.shape=(3, 3, 3, 4)"]),
    ("backprop-input-bad-stride",
     lambda: nc.conv_backprop_input(DY2, W2, (1, 5, 5, 3), stride=0), VE, ["stride=0"]),
    ("backprop-filter-kernel-shape-channel-mismatch",
     lambda: nc.conv_backprop_filter(X2, DY2, (3, 3, 2, 4)), VE,
     ["kernel_shape=(3, 3, 2, 4)", "x.shape=(1, 5, 5, 3)"]),
    ("backprop-filter-kernel-shape-spatial-inconsistent",
     lambda: nc.conv_backprop_filter(X2, DY2, (2, 2, 3, 4)), VE,
     ["kernel_shape=(2, 2, 3, 4)", "dy.shape=(1, 3, 3, 4)"]),
    ("backprop-filter-kernel-shape-wrong-rank",
     lambda: nc.conv_backprop_filter(X2, DY2, (3, 3, 3)), VE, ["kernel_shape=(3, 3, 3)"]),
    ("backprop-filter-bad-padding-mode",
     lambda: nc.conv_backprop_filter(X2, DY2, (3, 3, 3, 4), padding_mode="mirror"), VE,
     ["padding_mode='mirror'"]),
    # ---- conv_transpose -----------------------------------------------------------------------
    ("transpose-output-padding-ge-stride-and-dilation",
     lambda: nc.conv_transpose(X2, WT2, stride=2, output_padding=2), VE, ["output_padding=2"]),
    ("transpose-output-padding-per-dim-too-big",
     lambda: nc.conv_transpose(X2, WT2, stride=(2, 2), output_padding=(1, 3)), VE,
     ["output_padding=(1, 3)"]),
    ("transpose-output-padding-negative",
     lambda: nc.conv_transpose(X2, WT2, stride=2, output_padding=-1), VE, ["output_padding=-1"]),
    ("transpose-output-padding-wrong-length",
     lambda: nc.conv_transpose(X2, WT2, stride=2, output_padding=(1, 1, 1)), VE,
     ["output_padding=(1, 1, 1)"]),
    ("transpose-bad-stride", lambda: nc.conv_transpose(X2, WT2, stride=0), VE, ["stride=0"]),
    ("transpose-in-channel-mismatch",
     lambda: nc.conv_transpose(X2, np.zeros((3, 3, 4, 2), np.float32)), VE,
     ["w.shape=(3, 3, 4, 2)", "x.shape=(1, 5, 5, 3)"]),
    ("transpose-bias-wrong-shape", lambda: nc.conv_transpose(X2, WT2, bias=np.zeros(3)), VE,
     ["bias.shape=(3,)"]),
    # ---- depthwise / separable ----------------------------------------------------------------
    ("depthwise-kernel-ndim-3", lambda: nc.depthwise_conv2d(X2, np.zeros((3, 3, 3), np.float32)),
     VE, ["w.shape=(3, 3, 3)"]),
    ("depthwise-kernel-channel-mismatch",
     lambda: nc.depthwise_conv2d(X2, np.zeros((3, 3, 2, 1), np.float32)), VE,
     ["w.shape=(3, 3, 2, 1)", "x.shape=(1, 5, 5, 3)"]),
    ("depthwise-bad-padding-mode",
     lambda: nc.depthwise_conv2d(X2, DW2, padding="same", padding_mode="mirror"), VE,
     ["padding_mode='mirror'"]),
    ("depthwise-x-1d", lambda: nc.depthwise_conv2d(X1, DW2), VE, ["x.shape=(1, 7, 3)"]),
    ("separable-pointwise-wrong-channels",
     lambda: nc.separable_conv2d(X2, DW2, np.zeros((1, 1, 5, 4), np.float32)), VE,
     ["pointwise_w.shape=(1, 1, 5, 4)"]),
    ("separable-pointwise-not-1x1",
     lambda: nc.separable_conv2d(X2, DW2, np.zeros((3, 3, 6, 4), np.float32)), VE,
     ["pointwise_w.shape=(3, 3, 6, 4)"]),
    ("separable-depthwise-wrong-ndim",
     lambda: nc.separable_conv2d(X2, np.zeros((3, 3, 3), np.float32), PW2), VE,
     ["depthwise_w.shape=(3, 3, 3)"]),
    ("separable-bad-stride", lambda: nc.separable_conv2d(X2, DW2, PW2, stride=0), VE,
     ["stride=0"]),
]


@pytest.mark.parametrize("fn, exc, alternatives",
                         [pytest.param(f, e, a, id=i) for i, f, e, a in CASES])
def test_bad_input(fn, exc, alternatives):
    with pytest.raises(exc, match=received(*alternatives)):
        fn()


def test_case_ids_unique_and_enough():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


# ---- huge outputs must be refused before anything large is allocated -------------------------

HUGE_CASES = [
    ("conv2d-padding-1e12", lambda: nc.conv(X2, W2, padding=BIG), ["padding=1000000000000"]),
    ("conv1d-padding-1e12", lambda: nc.conv(X1, W1, padding=BIG), ["padding=1000000000000"]),
    ("conv2d-padding-1e12-one-dim", lambda: nc.conv(X2, W2, padding=((0, 0), (BIG, BIG))),
     ["padding=((0, 0), (1000000000000, 1000000000000))"]),
    ("transpose-stride-1e12", lambda: nc.conv_transpose(X2, WT2, stride=BIG),
     ["stride=1000000000000"]),
]


@pytest.mark.parametrize("fn, alternatives", [pytest.param(f, a, id=i) for i, f, a in HUGE_CASES])
def test_huge_output_rejected_before_allocation(fn, alternatives):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=received(*alternatives)):
            fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2 ** 20, f"peak traced allocation {peak} bytes before the error"


# ---- validation happens before x is copied / padded / cast -----------------------------------

_XL = np.random.default_rng(5).standard_normal((8, 128, 128, 8)).astype(np.float32)  # 4 MiB
_WL = np.random.default_rng(6).standard_normal((3, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("kw", [
    pytest.param(dict(stride=0), id="stride"),
    pytest.param(dict(padding="same", padding_mode="mirror"), id="padding_mode"),
    pytest.param(dict(padding=200, padding_mode="reflect"), id="reflect-too-wide"),
    pytest.param(dict(groups=3), id="groups"),
    pytest.param(dict(algorithm="bogus"), id="algorithm"),
    pytest.param(dict(bias=np.zeros(7, np.float32)), id="bias"),
])
def test_cheap_errors_do_not_copy_input(kw):
    nc.explain(_XL.shape, _WL.shape)  # one-time set-up (lazy imports, thread pools) is not the input's copy
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="Received:"):
            nc.conv(_XL, _WL, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < _XL.nbytes // 4, f"peak traced allocation {peak} bytes before the error"


# ---- valid edge values must NOT be rejected (guards against over-eager validation) ------------

EDGE_OK = [
    ("reflect-pad-n-minus-1", lambda: nc.conv(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1)),
                                              padding=2, padding_mode="reflect"), (1, 7, 7, 1)),
    ("symmetric-pad-n", lambda: nc.conv(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1)),
                                        padding=3, padding_mode="symmetric"), (1, 9, 9, 1)),
    ("circular-pad-n", lambda: nc.conv(np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1)),
                                       padding=3, padding_mode="circular"), (1, 9, 9, 1)),
    ("replicate-pad-huge-ok", lambda: nc.conv(np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1)),
                                              padding=20, padding_mode="replicate"),
     (1, 42, 42, 1)),
    ("numpy-int-stride", lambda: nc.conv(X2, W2, stride=np.int64(2)), (1, 2, 2, 4)),
    ("kernel-equals-input", lambda: nc.conv(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1))),
     (1, 1, 1, 1)),
    ("output-padding-lt-dilation",
     lambda: nc.conv_transpose(X2, WT2, stride=1, dilation=2, padding=0, output_padding=1),
     (1, 10, 10, 4)),
    ("causal-1d", lambda: nc.conv(X1, W1, padding="causal"), (1, 7, 4)),
    # conv_transpose's bias has one entry per OUTPUT channel of the transpose (WT2: 4)
    ("transpose-bias-per-output-channel", lambda: nc.conv_transpose(X2, WT2, bias=B4),
     (1, 7, 7, 4)),
]


@pytest.mark.parametrize("fn, shape", [pytest.param(f, s, id=i) for i, f, s in EDGE_OK])
def test_valid_edge_values_accepted(fn, shape):
    assert fn().shape == shape


# ---- nc.explain validates the same arguments ------------------------------------------------

S2, K2 = X2.shape, W2.shape

EXPLAIN_CASES = [
    ("stride-zero", lambda: nc.explain(S2, K2, stride=0), VE, ["stride=0"]),
    ("stride-tuple-too-long", lambda: nc.explain(S2, K2, stride=(1, 1, 1)), VE,
     ["stride=(1, 1, 1)"]),
    ("stride-bool", lambda: nc.explain(S2, K2, stride=True), EITHER, ["stride=True"]),
    ("dilation-negative", lambda: nc.explain(S2, K2, dilation=-1), VE, ["dilation=-1"]),
    ("dilation-float", lambda: nc.explain(S2, K2, dilation=1.5), EITHER, ["dilation=1.5"]),
    ("padding-unknown", lambda: nc.explain(S2, K2, padding="foo"), VE, ["padding='foo'"]),
    ("padding-causal-2d", lambda: nc.explain(S2, K2, padding="causal"), VE, ["padding='causal'"]),
    ("padding-negative", lambda: nc.explain(S2, K2, padding=-1), VE, ["padding=-1"]),
    ("padding-pairs-wrong-count", lambda: nc.explain(S2, K2, padding=((1, 1),)), VE,
     ["padding=((1, 1),)"]),
    ("padding-mode-mirror", lambda: nc.explain(S2, K2, padding="same", padding_mode="mirror"), VE,
     ["padding_mode='mirror'"]),
    ("reflect-too-wide", lambda: nc.explain((1, 3, 3, 1), (1, 1, 1, 1), padding=3,
                                            padding_mode="reflect"), VE,
     ["padding=3", "padding_mode='reflect'"]),
    ("circular-too-wide", lambda: nc.explain((1, 3, 3, 1), (1, 1, 1, 1), padding=4,
                                             padding_mode="circular"), VE,
     ["padding=4", "padding_mode='circular'"]),
    ("data-format", lambda: nc.explain(S2, K2, data_format="NHCW"), VE, ["data_format='NHCW'"]),
    ("kernel-format", lambda: nc.explain(S2, K2, kernel_format="XYZW"), VE,
     ["kernel_format='XYZW'"]),
    ("groups-zero", lambda: nc.explain(S2, K2, groups=0), VE, ["groups=0"]),
    ("groups-not-dividing", lambda: nc.explain(S2, (3, 3, 1, 4), groups=2), VE, ["groups=2"]),
    ("algorithm-unknown", lambda: nc.explain(S2, K2, algorithm="bogus"), VE,
     ["algorithm='bogus'"]),
    ("x-rank-mismatch", lambda: nc.explain((2, 5), K2), VE, ["x.shape=(2, 5)", "x_shape=(2, 5)"]),
    ("w-rank-2", lambda: nc.explain(S2, (3, 3)), VE, ["w.shape=(3, 3)", "w_shape=(3, 3)"]),
    ("in-channel-mismatch", lambda: nc.explain(S2, (3, 3, 2, 4)), VE,
     ["w.shape=(3, 3, 2, 4)", "w_shape=(3, 3, 2, 4)", "x.shape=(1, 5, 5, 3)",
      "x_shape=(1, 5, 5, 3)"]),
    ("kernel-larger-than-input", lambda: nc.explain((1, 3, 3, 1), (5, 5, 1, 1)), VE,
     ["padding='valid'", "w.shape=(5, 5, 1, 1)", "w_shape=(5, 5, 1, 1)", "x.shape=(1, 3, 3, 1)",
      "x_shape=(1, 3, 3, 1)"]),
    ("flip-not-bool", lambda: nc.explain(S2, K2, flip="yes"), EITHER, ["flip='yes'"]),
    ("pad-value-string", lambda: nc.explain(S2, K2, padding=1, padding_mode="constant",
                                            pad_value="a"), EITHER, ["pad_value='a'"]),
    ("dtype-complex", lambda: nc.explain(S2, K2, dtype=np.complex128), TE,
     ["dtype=complex128", "x.dtype=complex128"]),
]


@pytest.mark.parametrize("fn, exc, alternatives",
                         [pytest.param(f, e, a, id=i) for i, f, e, a in EXPLAIN_CASES])
def test_explain_rejects_bad_arguments(fn, exc, alternatives):
    with pytest.raises(exc, match=received(*alternatives)):
        fn()
