"""npconv.image against scipy.ndimage (every padding mode, correlation and convolution), OpenCV's
documented borders, bounded memory in tiles, gradients, and Pillow I/O (skipped without Pillow)."""

import tracemalloc

import numpy as np
import pytest
import scipy.ndimage as ndi

from npconv import image, kernels

RNG = np.random.default_rng(3)
GRAY = RNG.random((37, 45)).astype(np.float32)
RGB = RNG.random((19, 23, 3)).astype(np.float32)
MODES = sorted(image.SCIPY_MODES)


def scipy_filter(array, kernel, mode, flip=False, cval=0.0):
    function = ndi.convolve if flip else ndi.correlate
    return function(array.astype(np.float64), kernel.astype(np.float64), mode=image.SCIPY_MODES[mode], cval=cval)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (2, 2), (3, 4), (1, 6), (7, 2)])
def test_grayscale_equals_scipy_in_every_mode(mode, flip, shape):
    kernel = RNG.standard_normal(shape).astype(np.float32)
    cval = 0.7 if mode == "constant" else 0.0
    got = image.filter2d(GRAY, kernel, padding_mode=mode, pad_value=cval, flip=flip, tile_size=16)
    assert got.dtype == np.float32 and got.shape == GRAY.shape
    assert np.abs(got - scipy_filter(GRAY, kernel, mode, flip, cval)).max() <= 1e-5


@pytest.mark.parametrize("mode", MODES)
def test_rgb_per_channel_and_across_channels(mode):
    kernel = RNG.standard_normal((3, 5))
    per_channel = image.filter2d(RGB, kernel, padding_mode=mode)
    expected = np.stack([scipy_filter(RGB[:, :, c], kernel, mode) for c in range(3)], axis=-1)
    assert per_channel.shape == RGB.shape and np.abs(per_channel - expected).max() <= 1e-5
    # (kh, kw, C): one map summed over the channels = scipy's 3-D correlation at the middle channel.
    across = RNG.standard_normal((3, 3, 3))
    got = image.filter2d(RGB, across, padding_mode=mode)
    assert got.shape == RGB.shape[:2]
    assert np.abs(got - scipy_filter(RGB, across, mode)[:, :, 1]).max() <= 1e-5
    # (kh, kw, C, F): F such maps; flip=True rotates each channel's kernel (not the channel order).
    hwio = RNG.standard_normal((3, 3, 3, 2))
    maps = image.filter2d(RGB, hwio, padding_mode=mode, flip=True)
    for f in range(2):
        expected = sum(scipy_filter(RGB[:, :, c], hwio[:, :, c, f], mode, flip=True) for c in range(3))
        assert np.abs(maps[:, :, f] - expected).max() <= 1e-5


@pytest.mark.parametrize("mode", MODES)
def test_kernels_larger_than_the_image_extend_the_border_like_scipy(mode):
    tiny = RNG.random((4, 5))
    kernel = RNG.standard_normal((9, 13))
    for flip in (False, True):
        np.testing.assert_allclose(image.filter2d(tiny, kernel, padding_mode=mode, flip=flip), scipy_filter(tiny, kernel, mode, flip), atol=1e-12)


# OpenCV's documentation of cv::BorderTypes ('i' is the constant).
OPENCV_DOC = {
    "BORDER_CONSTANT": "iiiiii|abcdefgh|iiiiiii",
    "BORDER_REPLICATE": "aaaaaa|abcdefgh|hhhhhhh",
    "BORDER_REFLECT": "fedcba|abcdefgh|hgfedcb",
    "BORDER_WRAP": "cdefgh|abcdefgh|abcdefg",
    "BORDER_REFLECT_101": "gfedcb|abcdefgh|gfedcba",
}


@pytest.mark.parametrize("mode", ["constant", "replicate", "symmetric", "circular", "reflect"])
def test_padding_modes_are_the_documented_opencv_borders(mode):
    line = np.arange(1.0, 9.0)[None, :]  # a..h
    letters = dict(enumerate("abcdefghi", start=1))  # 9 is the constant

    def padded(p):  # the padded line at position p (from -7 to 14), read through a one-hot kernel of width 15
        j = 0 if p <= 7 else 7
        one_hot = np.zeros((1, 15))
        one_hot[0, p - j + 7] = 1.0
        return round(float(image.filter2d(line, one_hot, padding_mode=mode, pad_value=9.0)[0, j]))

    text = "".join(letters[padded(p)] for p in range(-6, 0)) + "|abcdefgh|" + "".join(letters[padded(p)] for p in range(8, 15))
    assert text == OPENCV_DOC[image.OPENCV_BORDERS[mode]]


def test_tiles_give_the_same_result_in_memory_independent_of_the_image_size():
    kernel = kernels.gaussian(5, 1.0)
    peaks = {}
    for rows, tile in [(1200, 4096), (1200, 200), (600, 200)]:
        big = RNG.random((rows, 1000), dtype=np.float32)
        out = np.empty_like(big)
        tracemalloc.start()
        image.filter2d(big, kernel, tile_size=tile, out=out)
        peaks[rows, tile] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert np.abs(out - scipy_filter(big, kernel, "reflect")).max() <= 1e-5
    assert peaks[1200, 4096] > 1200 * 1000 * 4  # one tile: a padded copy and the convolution's buffers
    assert peaks[1200, 200] < peaks[1200, 4096] / 4
    assert peaks[1200, 200] < 1.25 * peaks[600, 200] + 65536  # twice the image, about the same memory


def test_memory_mapped_input_and_output(tmp_path):
    source = np.lib.format.open_memmap(tmp_path / "in.npy", mode="w+", dtype=np.float32, shape=(70, 90))
    source[:] = RNG.random((70, 90))
    target = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(70, 90))
    assert image.filter2d(source, kernels.sobel_x(), out=target, tile_size=32) is target
    target.flush()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), scipy_filter(np.asarray(source), kernels.sobel_x(), "reflect"), atol=1e-5)


def test_dtypes_and_inputs_not_modified():
    pixels = (RNG.random((10, 12, 3)) * 255).astype(np.uint8)
    kernel = kernels.sharpen()
    before, kernel_before = pixels.copy(), kernel.copy()
    assert image.filter2d(pixels, kernel).dtype == np.float32
    assert image.filter2d(pixels.astype(np.float64), kernel).dtype == np.float64
    assert image.filter2d(pixels > 128, kernel).dtype == np.float32
    image.gradient(pixels, padding_mode="constant", pad_value=3.0)
    np.testing.assert_array_equal(pixels, before)
    np.testing.assert_array_equal(kernel, kernel_before)


@pytest.mark.parametrize("operator, scipy_operator", [("sobel", ndi.sobel), ("prewitt", ndi.prewitt)])
def test_gradient_matches_scipy(operator, scipy_operator):
    gray = GRAY.astype(np.float64)
    magnitude, direction = image.gradient(gray, operator, padding_mode="replicate")
    gx, gy = scipy_operator(gray, axis=1, mode="nearest"), scipy_operator(gray, axis=0, mode="nearest")
    np.testing.assert_allclose(magnitude, np.hypot(gx, gy), atol=1e-12)
    np.testing.assert_allclose(direction, np.arctan2(gy, gx), atol=1e-12)


def test_gradient_direction_convention():
    rows, cols = np.mgrid[0:8, 0:8].astype(float)
    assert np.allclose(image.gradient(cols, "scharr")[1][2:-2, 2:-2], 0.0)  # increasing to the right
    assert np.allclose(image.gradient(rows)[1][2:-2, 2:-2], np.pi / 2)  # increasing downwards
    magnitude = image.gradient(RGB)[0]
    assert magnitude.shape == RGB.shape  # one per channel


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: image.filter2d(np.zeros(5), kernels.box()), ValueError, r"image.shape=\(5,\)"),
        (lambda: image.filter2d(RGB, np.ones((3, 3, 2))), ValueError, r"kernel.shape=\(3, 3, 2\)"),
        (lambda: image.filter2d(GRAY, kernels.box(), padding_mode="mirror"), ValueError, "npconv calls that border 'reflect'"),
        (lambda: image.filter2d(GRAY, kernels.box(), padding_mode="BORDER_REFLECT"), ValueError, "'symmetric'"),
        (lambda: image.filter2d(GRAY, kernels.box(), padding_mode="edge"), ValueError, "Received: padding_mode='edge'"),
        (lambda: image.filter2d(GRAY, kernels.box(), tile_size=0), ValueError, "Received: tile_size=0"),
        (lambda: image.filter2d(GRAY, kernels.box(), out=np.empty((2, 2))), ValueError, "Invalid `out`"),
        (lambda: image.filter2d(GRAY, kernels.box(), out=GRAY), ValueError, "not sharing memory with the image"),
        (lambda: image.filter2d(GRAY.astype(complex), kernels.box()), TypeError, "image.dtype=complex128"),
        (lambda: image.gradient(GRAY, "roberts"), ValueError, "Received: operator='roberts'"),
        (lambda: image.to_gray(np.zeros((4, 4, 2))), ValueError, r"image.shape=\(4, 4, 2\)"),
        (lambda: image.to_uint8(GRAY, value_range=(1, 1)), ValueError, r"Received: value_range=\(1, 1\)"),
    ],
)
def test_bad_arguments_name_the_parameter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_to_gray_and_to_uint8():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    np.testing.assert_allclose(image.to_gray(rgb)[0], [0.299 * 255, 0.587 * 255, 0.114 * 255, 0.299 * 10 + 0.587 * 20 + 0.114 * 30], rtol=1e-6)
    assert image.to_uint8(rgb) is rgb  # uint8 passes through
    np.testing.assert_array_equal(image.to_uint8(np.array([2.0, 4.0, np.nan, 6.0])), [0, 128, 0, 255])
    np.testing.assert_array_equal(image.to_uint8(np.full((2, 2), 5.0)), np.zeros((2, 2), np.uint8))
    np.testing.assert_array_equal(image.to_uint8(np.array([-10.0, 0.0, 1.0, 9.0]), value_range=(0, 1)), [0, 0, 255, 255])


# --------------------------------------------------------------------------- Pillow round trips


@pytest.fixture
def pil():
    return pytest.importorskip("PIL.Image")


def test_read_write_round_trip(tmp_path, pil):
    rgb = (RNG.random((9, 11, 3)) * 255).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((9, 11), 200, np.uint8)])
    gray = rgb[:, :, 0]
    for name, pixels in [("rgb.png", rgb), ("rgba.png", rgba), ("gray.png", gray), ("one.png", gray[:, :, None])]:
        path = image.write_image(tmp_path / name, pixels)
        np.testing.assert_array_equal(image.read_image(path), pixels[:, :, 0] if pixels.shape[-1:] == (1,) else pixels)
    np.testing.assert_array_equal(image.read_image(tmp_path / "rgb.png", mode="L"), np.asarray(pil.fromarray(rgb).convert("L")))
    assert np.abs(image.to_gray(rgb) - image.read_image(tmp_path / "rgb.png", mode="L")).max() <= 1.0  # Pillow rounds
    pil.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    assert image.read_image(tmp_path / "palette.png").shape == (9, 11, 3)
    edges = image.filter2d(gray, kernels.sobel_x())
    written = image.read_image(image.write_image(tmp_path / "edges.png", edges))
    assert written.min() == 0 and written.max() == 255  # stretched min..max
    with pytest.raises(ValueError, match=r"image.shape=\(9, 11, 2\)"):
        image.write_image(tmp_path / "bad.png", rgb[:, :, :2])
