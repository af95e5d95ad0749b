"""npconv against golden values from TensorFlow/Keras and PyTorch (tests/fixtures/make_golden.py).

The fixtures are committed, so this runs without either framework installed.  Every case is run
with every algorithm eligible for it.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import npconv as nc

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARGUMENT_ORDER = {
    "conv": ("x", "w"),
    "conv_transpose": ("x", "w"),
    "depthwise_conv2d": ("x", "w"),
    "separable_conv2d": ("x", "depthwise_w", "pointwise_w"),
    "conv_backprop_input": ("dy", "w"),
    "conv_backprop_filter": ("x", "dy"),
}


def load_cases():
    cases = []
    for path in sorted(FIXTURES.glob("golden_*.npz")):
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        for key in sorted(k for k in arrays if k.endswith("/call")):
            name = key[: -len("/call")]
            call = json.loads(str(arrays[key]))
            inputs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(name + "/") and not k.endswith(("/call", "/expected"))}
            cases.append(pytest.param(call, inputs, arrays[name + "/expected"], id=name))
    return cases


CASES = load_cases()


def test_fixtures_cover_both_frameworks():
    names = [case.id for case in CASES]
    assert sum(n.startswith(("tf_", "keras_")) for n in names) >= 40
    assert sum(n.startswith("torch_") for n in names) >= 20


def tuples(value):
    """JSON turns tuples into lists; npconv takes lists of pairs, and ints/tuples otherwise."""
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    return value


@pytest.mark.parametrize("call, inputs, expected", CASES)
def test_golden(call, inputs, expected):
    function = getattr(nc, call["function"])
    kwargs = {k: tuples(v) for k, v in call["kwargs"].items()}
    positional = [inputs.pop(name) for name in ARGUMENT_ORDER[call["function"]]]
    for shape_argument in ("input_shape", "kernel_shape"):
        if shape_argument in kwargs:
            positional.append(kwargs.pop(shape_argument))
    extra = inputs  # bias, if any
    tolerance = 1e-10 if expected.dtype == np.float64 else 2e-5
    scale = 1.0 + float(np.abs(expected).max())
    ran = 0
    for algorithm in ["auto", *nc.algorithms()]:
        try:
            result = function(*positional, algorithm=algorithm, **kwargs, **extra)
        except ValueError as error:
            if f"algorithm={algorithm!r}" in str(error):
                continue  # not eligible for this case
            raise
        assert result.shape == expected.shape
        np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance * scale, err_msg=algorithm)
        ran += 1
    assert ran >= 2


def test_live_pytorch_cross_check():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 6, 9, 8)), rng.standard_normal((4, 3, 3, 2))
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=(2, 1), padding=(1, 2), dilation=2, groups=2)
    got = nc.conv(x, w, stride=(2, 1), padding=(1, 2), dilation=2, groups=2, data_format="channels_first")
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-10)
