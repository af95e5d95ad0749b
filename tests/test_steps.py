"""conv_steps: every window, product and sum, checked against np.pad + explicit slices, the seed 004
by-hand loops and nc.conv; the GIF is checked for frame count, size and content."""

import json

import numpy as np
import pytest

import npconv as nc
from npconv.demo import by_hand_conv2d, seed_004_example
from npconv.steps import MAX_TERMS, conv_steps


def test_seed_004_example_step_by_step():
    example = seed_004_example()
    volume, kernel = example["volume"], example["kernel"]
    steps = conv_steps(volume, kernel, stride=2, padding=1)
    # 5x5x3, P=1, S=2: (5 + 2 - 3) // 2 + 1 = 3 -> 9 output elements.
    assert steps.output.shape == (3, 3) and len(steps) == 9
    np.testing.assert_array_equal(steps.output, by_hand_conv2d(volume, kernel, padding=1, stride=2))
    np.testing.assert_array_equal(steps.output, nc.conv(volume[None], kernel[..., None], stride=2, padding=1)[0, :, :, 0])
    padded = np.pad(volume, ((1, 1), (1, 1), (0, 0)))
    for step in steps:
        i, j = step.index
        window = padded[2 * i : 2 * i + 3, 2 * j : 2 * j + 3]  # stride 2 in padded coordinates
        np.testing.assert_array_equal(step.window, window)
        np.testing.assert_array_equal(step.products, window * kernel)
        assert step.total == (window * kernel).sum()
        assert step.coords[0].tolist() == [2 * i - 1, 2 * i, 2 * i + 1]  # input rows; -1 is padding
    first = str(steps[0]).splitlines()
    assert first[0] == "y[0, 0]: rows -1..1, cols -1..1 (stride 2x2, padding outside the input)"
    assert len(first) == 5 and first[-1] == f"  sum = {steps[0].total:g}"
    # each channel line is the 9 products written out, then their sum
    c0 = first[1].split(" = ")
    assert len(c0[0].split(" + ")) == 9 and float(c0[1]) == steps[0].products[..., 0].sum()
    assert str(steps[4]).startswith("y[1, 1]: rows 1..3, cols 1..3 (stride 2x2)")  # fully inside


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((9,), (3,), dict(padding=2, dilation=2, stride=2)),
        ((7, 6), (3, 2), dict(padding="same", padding_mode="reflect")),
        ((6, 5, 2), (2, 3, 2), dict(padding=((1, 0), (2, 1)), padding_mode="constant", pad_value=-1.5, flip=True)),
        ((8, 8), (3, 3), dict(stride=(2, 3), padding=1, padding_mode="circular")),
    ],
)
def test_outputs_equal_npconv(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(0)
    x, w = rng.integers(-3, 4, x_shape).astype(float), rng.integers(-2, 3, w_shape).astype(float)
    before = x.copy(), w.copy()
    steps = conv_steps(x, w, **kwargs)
    x_nc = x[None, ..., None] if x.ndim < 3 else x[None]
    w_nc = w[..., None, None] if w.ndim < 3 else w[..., None]
    np.testing.assert_allclose(steps.output, nc.conv(x_nc, w_nc, **kwargs)[0, ..., 0], atol=1e-12)
    np.testing.assert_array_equal(x, before[0])  # inputs not modified
    np.testing.assert_array_equal(w, before[1])
    assert len(steps) == steps.output.size
    records = json.loads(json.dumps(steps.to_dicts()))
    assert records[0]["sum"] == steps[0].total and set(records[0]) == {"index", "coords", "window", "products", "sum"}
    assert str(steps).startswith(f"convolution step by step: input {x.shape}") and "\noutput:\n" in str(steps)


def test_one_dimensional_text():
    steps = conv_steps(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([1.0, 0.0, -1.0]), padding=1, dilation=2)
    # dilation 2, padding 1: output 0 sees positions -1, 1, 3 -> 0*1 + 2*0 + 4*(-1)
    assert str(steps[0]).splitlines() == [
        "y[0]: positions -1..3 step 2 (stride 1, padding outside the input)",
        "  c0: 0*1 + 2*0 + 4*(-1) = -4",
        "  sum = -4",
    ]


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((np.zeros((5, 5, 3)), np.zeros((3, 3, 2))), {}, ValueError, r"w.shape=\(3, 3, 2\)"),
        ((np.zeros((5, 5)), np.zeros(3)), {}, ValueError, r"x.shape=\(5, 5\)"),
        ((np.zeros((5, 5)), np.zeros((3, 3))), dict(stride=0), ValueError, "Received: stride=0"),
        ((np.zeros((5, 5)), np.zeros((3, 3))), dict(padding_mode="mirror"), ValueError, "Received: padding_mode='mirror'"),
        ((np.zeros((400, 400)), np.zeros((3, 3))), {}, ValueError, f"limit {MAX_TERMS:,}"),
        ((np.zeros((5, 5), complex), np.zeros((3, 3))), {}, TypeError, "x.dtype=complex128"),
    ],
)
def test_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        conv_steps(*args, **kwargs)


def test_sliding_window_gif(tmp_path):
    pytest.importorskip("matplotlib")
    image_module = pytest.importorskip("PIL.Image")
    example = seed_004_example()
    path = conv_steps(example["volume"], example["kernel"], stride=2, padding=1).save_gif(tmp_path / "seed004.gif", interval_ms=300, dpi=50)
    with image_module.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 9
        assert gif.size[0] > 200 and gif.size[1] > 100
        frames = []
        for index in (0, 8):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("L"), dtype=float))
    assert frames[0].std() > 10  # not blank
    assert np.abs(frames[0] - frames[1]).mean() > 0.5  # the window moved and the output filled in
    one_d = conv_steps(np.arange(6.0), np.array([1.0, -1.0])).save_gif(tmp_path / "one_d.gif", dpi=40)
    with image_module.open(one_d) as gif:
        assert gif.n_frames == 5
    with pytest.raises(ValueError, match="Received: interval_ms=0"):
        conv_steps(np.arange(6.0), np.array([1.0, -1.0])).save_gif(tmp_path / "x.gif", interval_ms=0)
