"""npconv against golden values from TensorFlow/Keras and PyTorch.

The fixtures (``tests/fixtures/golden_tf.npz``, ``golden_torch.npz``) are committed and were made by
``tests/fixtures/make_golden.py`` (its docstring has the commands), so this file needs neither
framework: only NumPy, SciPy and npconv.  Each case stores its inputs, the framework's result and
the npconv call (function + keyword arguments, JSON) that must reproduce it.  Every case runs with
``algorithm="auto"`` and with every algorithm eligible for it.

Tolerances: float64 (PyTorch) cases ``rtol=atol=1e-10``; float32 (TensorFlow) cases ``rtol=1e-5``
and ``atol=1e-5`` times the data's magnitude.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import npconv as nc

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_FILES = ("golden_tf.npz", "golden_torch.npz")

# positional arrays of each npconv function, in order; the shape argument of the backprop
# functions (input_shape / kernel_shape) follows them.
POSITIONAL = {
    "conv": ("x", "w"),
    "conv1d": ("x", "w"),
    "conv2d": ("x", "w"),
    "conv3d": ("x", "w"),
    "conv_transpose": ("x", "w"),
    "depthwise_conv2d": ("x", "w"),
    "separable_conv2d": ("x", "depthwise_w", "pointwise_w"),
    "conv_backprop_input": ("dy", "w"),
    "conv_backprop_filter": ("x", "dy"),
}
SHAPE_ARGUMENT = {"conv_backprop_input": "input_shape", "conv_backprop_filter": "kernel_shape"}
CONV_FUNCTIONS = ("conv", "conv1d", "conv2d", "conv3d")


def _tuples(value):
    """JSON has no tuples: turn lists (per-dim ints, (before, after) pairs, shapes) back into tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _load(filename):
    with np.load(FIXTURES / filename, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    cases = {}
    for key in sorted(arrays):
        if not key.endswith("/call"):
            continue
        name = key[: -len("/call")]
        call = json.loads(str(arrays[key]))
        inputs = {
            k.split("/", 1)[1]: v
            for k, v in arrays.items()
            if k.startswith(name + "/") and k.rsplit("/", 1)[1] not in ("call", "expected")
        }
        cases[name] = (call, inputs, arrays[name + "/expected"])
    return cases


CASES = {name: case for filename in FIXTURE_FILES for name, case in _load(filename).items()}


def test_fixtures_load_and_cover_both_frameworks():
    names = list(CASES)
    assert len(names) == len(set(names))
    tf_cases = [n for n in names if n.startswith(("tf_", "keras_"))]
    torch_cases = [n for n in names if n.startswith("torch_")]
    assert len(tf_cases) >= 150 and len(torch_cases) >= 60
    functions = {CASES[n][0]["function"] for n in names}
    assert set(POSITIONAL) - {"conv1d", "conv2d", "conv3d"} <= functions
    total = sum((FIXTURES / f).stat().st_size for f in FIXTURE_FILES)
    assert total < 2 * 1024 * 1024


def _arguments(call, inputs):
    function = call["function"]
    kwargs = {k: _tuples(v) for k, v in call["kwargs"].items()}
    inputs = dict(inputs)
    positional = [inputs.pop(name) for name in POSITIONAL[function]]
    if function in SHAPE_ARGUMENT:
        positional.append(kwargs.pop(SHAPE_ARGUMENT[function]))
    kwargs.update(inputs)  # bias, if any
    return getattr(nc, function), positional, kwargs


def _tolerance(expected):
    if expected.dtype == np.float64:
        return {"rtol": 1e-10, "atol": 1e-10}
    scale = max(1.0, float(np.abs(expected).max()))
    return {"rtol": 1e-5, "atol": 1e-5 * scale}


def _algorithms(call, positional, kwargs):
    """(algorithms known eligible, algorithms to try and skip when npconv says ineligible)."""
    if call["function"] in CONV_FUNCTIONS:
        x, w = positional
        params = {k: v for k, v in kwargs.items() if k != "bias"}
        candidates = nc.explain(x.shape, w.shape, dtype=np.result_type(x.dtype, w.dtype), **params).candidates
        assert candidates, "explain() lists no eligible algorithm"
        return list(candidates), []
    return [], list(nc.algorithms())


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name):
    call, inputs, expected = CASES[name]
    function, positional, kwargs = _arguments(call, inputs)
    eligible, maybe = _algorithms(call, positional, kwargs)
    tolerance = _tolerance(expected)
    ran = []
    for algorithm in ["auto", *eligible, *maybe]:
        try:
            result = function(*positional, algorithm=algorithm, **kwargs)
        except ValueError as error:
            if algorithm in maybe and "algorithm" in str(error):
                continue  # npconv says this algorithm cannot run this call
            raise
        assert result.shape == expected.shape, f"algorithm={algorithm!r}"
        assert result.dtype == expected.dtype, f"algorithm={algorithm!r}"
        np.testing.assert_allclose(result, expected, **tolerance, err_msg=f"{name}, algorithm={algorithm!r}")
        ran.append(algorithm)
    assert len(ran) >= 2, f"only {ran} ran"


def test_inputs_not_mutated_on_a_golden_case():
    call, inputs, expected = CASES["torch_grad_input_reflect_g2_s2"]
    copies = {k: v.copy() for k, v in inputs.items()}
    function, positional, kwargs = _arguments(call, inputs)
    function(*positional, **kwargs)
    for key, value in inputs.items():
        np.testing.assert_array_equal(value, copies[key])


# ----------------------------------------------------------------------------- live PyTorch check

LIVE_CASES = {
    "conv2d_g2_s2x1_p1x2_d2": dict(rank=2, cin=6, cout=4, groups=2, k=(3, 2), stride=(2, 1), padding=(1, 2), dilation=2),
    "conv1d_depthwise_same_k4": dict(rank=1, cin=3, cout=6, groups=3, k=4, stride=1, padding="same", dilation=2),
    "conv3d_s2_p1": dict(rank=3, cin=2, cout=3, groups=1, k=2, stride=2, padding=1, dilation=1),
    "conv2d_reflect": dict(rank=2, cin=2, cout=3, groups=1, k=3, stride=2, padding=(2, 1), dilation=1, mode="reflect"),
    "conv2d_circular_g2": dict(rank=2, cin=4, cout=2, groups=2, k=3, stride=1, padding=(1, 3), dilation=1, mode="circular"),
    "transpose2d_g2_s2_d3_op2": dict(rank=2, cin=4, cout=6, groups=2, k=3, stride=2, padding=1, dilation=3, op=2, transpose=True),
    "transpose1d_s3_op1": dict(rank=1, cin=2, cout=3, groups=1, k=4, stride=3, padding=2, dilation=1, op=1, transpose=True),
}


@pytest.mark.parametrize("name", list(LIVE_CASES))
def test_live_against_pytorch(name):
    """Fresh random cases straight against PyTorch, forward and both gradients (skipped without torch)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    spec = dict(LIVE_CASES[name])
    rank, cin, cout, groups, k = (spec.pop(key) for key in ("rank", "cin", "cout", "groups", "k"))
    mode, op, transpose = spec.pop("mode", "zeros"), spec.pop("op", 0), spec.pop("transpose", False)
    ks = k if isinstance(k, tuple) else (k,) * rank
    rng = np.random.default_rng(sum(map(ord, name)))
    spatial = tuple(rng.integers(5, 9, size=rank))
    x = torch.from_numpy(rng.standard_normal((2, cin, *spatial))).requires_grad_()
    w_shape = (cin, cout // groups, *ks) if transpose else (cout, cin // groups, *ks)
    w = torch.from_numpy(rng.standard_normal(w_shape)).requires_grad_()
    b = torch.from_numpy(rng.standard_normal(cout))
    cf = {"data_format": "channels_first"}
    if transpose:
        y = getattr(F, f"conv_transpose{rank}d")(x, w, b, output_padding=op, groups=groups, **spec)
        got = nc.conv_transpose(x.detach().numpy(), w.detach().numpy(), bias=b.numpy(), output_padding=op, groups=groups, **spec, **cf)
        np.testing.assert_allclose(got, y.detach().numpy(), rtol=1e-10, atol=1e-10)
        return
    if mode == "zeros":
        y = getattr(F, f"conv{rank}d")(x, w, b, groups=groups, **spec)
        params = dict(spec, groups=groups, **cf)
    else:
        pads = spec.pop("padding")
        flat = [p for p in reversed(pads) for p in (p, p)]
        y = getattr(F, f"conv{rank}d")(F.pad(x, flat, mode=mode), w, b, groups=groups, **spec)
        params = dict(spec, padding=pads, padding_mode=mode, groups=groups, **cf)
    got = nc.conv(x.detach().numpy(), w.detach().numpy(), bias=b.numpy(), **params)
    np.testing.assert_allclose(got, y.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = torch.from_numpy(rng.standard_normal(y.shape))
    (y * dy).sum().backward()
    dx = nc.conv_backprop_input(dy.numpy(), w.detach().numpy(), tuple(x.shape), **params)
    dw = nc.conv_backprop_filter(x.detach().numpy(), dy.numpy(), tuple(w.shape), **params)
    np.testing.assert_allclose(dx, x.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, w.grad.numpy(), rtol=1e-10, atol=1e-10)
