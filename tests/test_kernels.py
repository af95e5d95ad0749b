"""Every kernel of npconv.kernels against scipy.ndimage, an independent formula, or OpenCV's values.

The kernels are applied here with scipy.ndimage.correlate (not npconv), so these tests check the
kernels alone; tests/test_image.py checks npconv's filtering against SciPy.
"""

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from npconv import kernels

RNG = np.random.default_rng(7)
IMAGE = RNG.random((23, 29))


def correlate(kernel, mode="mirror"):
    return ndi.correlate(IMAGE, kernel, mode=mode)


def test_derivative_kernels_match_scipy_and_their_separable_formulas():
    np.testing.assert_allclose(correlate(kernels.sobel_x()), ndi.sobel(IMAGE, axis=1, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(correlate(kernels.sobel_y()), ndi.sobel(IMAGE, axis=0, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(correlate(kernels.prewitt_x()), ndi.prewitt(IMAGE, axis=1, mode="mirror"), atol=1e-12)
    np.testing.assert_allclose(correlate(kernels.prewitt_y()), ndi.prewitt(IMAGE, axis=0, mode="mirror"), atol=1e-12)
    # Scharr: OpenCV's documented dx kernel, and the y kernel is its transpose.
    np.testing.assert_array_equal(kernels.scharr_x(), [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
    np.testing.assert_array_equal(kernels.scharr_y(), kernels.scharr_x().T)


@pytest.mark.parametrize(
    "name, slope_response", [("sobel", 8.0), ("scharr", 32.0), ("prewitt", 6.0)]
)
def test_derivative_orientation_and_slope(name, slope_response):
    # On f = 2*col + 5*row, [s1, s2, s3]^T [-1, 0, 1] gives 2 * 2 * (s1 + s2 + s3) along x and 0 along y:
    # positive where intensity increases to the right (x) and downwards (y).
    rows, cols = np.mgrid[0:9, 0:9].astype(float)
    ramp = 2.0 * cols + 5.0 * rows
    gx = ndi.correlate(ramp, kernels.get(f"{name}_x"))[4, 4]
    gy = ndi.correlate(ramp, kernels.get(f"{name}_y"))[4, 4]
    assert gx == pytest.approx(2.0 * slope_response) and gy == pytest.approx(5.0 * slope_response)


def test_laplacians():
    np.testing.assert_allclose(correlate(kernels.laplacian(4)), ndi.laplace(IMAGE, mode="mirror"), atol=1e-12)
    # 8-neighbour: the sum of the 8 neighbours minus 8 times the centre, by loops.
    padded = np.pad(IMAGE, 1, mode="reflect")
    loops = np.array(
        [
            [sum(padded[i + a, j + b] for a in range(3) for b in range(3)) - 9 * padded[i + 1, j + 1] for j in range(IMAGE.shape[1])]
            for i in range(IMAGE.shape[0])
        ]
    )
    np.testing.assert_allclose(correlate(kernels.laplacian(8)), loops, atol=1e-12)
    np.testing.assert_array_equal(kernels.edge_detect(), -kernels.laplacian(8))
    with pytest.raises(ValueError, match="Received: neighbours=6"):
        kernels.laplacian(6)


@pytest.mark.parametrize("size, sigma", [(3, 0.8), (7, 1.5), (9, 3.0)])
def test_gaussian_matches_scipy_and_the_separable_formula(size, sigma):
    g = kernels.gaussian(size, sigma)
    assert g.shape == (size, size) and g.sum() == pytest.approx(1.0, abs=1e-14)
    impulse = np.zeros((2 * size + 1, 2 * size + 1))
    impulse[size, size] = 1.0
    response = ndi.gaussian_filter(impulse, sigma, radius=size // 2, mode="constant")
    np.testing.assert_allclose(response[size - size // 2 : size + size // 2 + 1, size - size // 2 : size + size // 2 + 1], g, atol=1e-15)
    x = np.arange(size) - size // 2
    g1 = np.exp(-(x**2) / (2 * sigma**2))
    np.testing.assert_allclose(g, np.outer(g1, g1) / g1.sum() ** 2, rtol=1e-13)


# cv2.getGaussianKernel(ksize, sigma, ktype=cv2.CV_64F).ravel(), opencv-python-headless 5.0.0
OPENCV_GAUSSIAN = {
    (5, 1.2): [0.08562916395501292, 0.24266759672960797, 0.3434064786307582, 0.24266759672960797, 0.08562916395501292],
    (7, 2.0): [0.07015932695902606, 0.13107487896736597, 0.19071282356963734, 0.21610594100794114,
               0.19071282356963734, 0.13107487896736597, 0.07015932695902606],
}  # fmt: skip


def test_gaussian_is_the_outer_product_of_opencvs_1d_kernel():
    for (size, sigma), g1 in OPENCV_GAUSSIAN.items():
        np.testing.assert_allclose(kernels.gaussian(size, sigma), np.outer(g1, g1), atol=1e-15)
    g = kernels.gaussian((3, 7), 1.0)
    assert g.shape == (3, 7) and g.argmax() == np.ravel_multi_index((1, 3), (3, 7))


def test_laplacian_of_gaussian_matches_scipy_and_the_continuous_formula():
    size, sigma = 11, 1.6
    log = kernels.laplacian_of_gaussian(size, sigma)
    np.testing.assert_allclose(correlate(log), ndi.gaussian_laplace(IMAGE, sigma, radius=size // 2, mode="mirror"), atol=1e-12)
    y, x = np.mgrid[-5:6, -5:6].astype(float)
    r2 = x**2 + y**2
    continuous = -(1 / (math.pi * sigma**4)) * (1 - r2 / (2 * sigma**2)) * np.exp(-r2 / (2 * sigma**2))
    ratio = log / continuous  # the same shape, up to the discrete normalisation
    np.testing.assert_allclose(ratio, ratio[5, 5], rtol=1e-12)
    assert log[5, 5] < 0


@pytest.mark.parametrize("size", [3, (3, 5), 4])
def test_box_matches_uniform_filter(size):
    np.testing.assert_allclose(correlate(kernels.box(size)), ndi.uniform_filter(IMAGE, size, mode="mirror"), atol=1e-12)


def test_sharpen_and_unsharp_are_the_filtered_identities():
    for amount in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(correlate(kernels.sharpen(amount)), IMAGE - amount * ndi.laplace(IMAGE, mode="mirror"), atol=1e-12)
        blurred = ndi.gaussian_filter(IMAGE, 1.3, radius=3, mode="mirror")
        np.testing.assert_allclose(correlate(kernels.unsharp(7, 1.3, amount)), IMAGE + amount * (IMAGE - blurred), atol=1e-12)
    np.testing.assert_array_equal(kernels.sharpen(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])


def test_emboss_is_the_gimp_kernel():
    np.testing.assert_array_equal(kernels.emboss(), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    assert kernels.emboss().sum() == 1


def test_motion_blur_geometry():
    horizontal = kernels.motion_blur(7, 0)
    expected = np.zeros((7, 7))
    expected[3] = 1 / 7
    np.testing.assert_allclose(horizontal, expected, atol=1e-15)
    np.testing.assert_allclose(kernels.motion_blur(7, 90), expected.T, atol=1e-15)
    np.testing.assert_allclose(kernels.motion_blur(7, 180), expected, atol=1e-15)
    for angle in (0, 30, 45, 100):
        k = kernels.motion_blur(9, angle)
        assert k.sum() == pytest.approx(1.0) and (k >= 0).all()
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # a segment through the centre
        np.testing.assert_allclose(kernels.motion_blur(9, angle + 90), np.rot90(k), atol=1e-12)  # counter-clockwise
    diagonal = kernels.motion_blur(9, 45)  # towards the top right: the anti-diagonal
    np.testing.assert_allclose(np.fliplr(diagonal).diagonal()[2:7], diagonal.max(), rtol=1e-12)
    # The segment (half-length 4) ends at (2.83, 2.83): the diagonal's ends, 4 * sqrt(2) away, stay 0.
    assert np.fliplr(diagonal).diagonal()[[0, 8]].max() == 0 < np.fliplr(diagonal).diagonal()[1]


# cv2.getGaborKernel((5, 5), 1.5, 0.5, 4.0, 0.5, np.pi / 2, ktype=cv2.CV_64F), opencv-python-headless 5.0.0
OPENCV_GABOR_5 = np.array(
    [
        [1.6921582163304191e-01, -1.0971826577507449e-01, -6.8554222353092964e-01, -9.6326681182096724e-02, 5.4759898149201380e-01],
        [1.1870956010946103e-01, -5.5751257107641028e-01, -6.2261725777268762e-01, 5.1021507109873698e-01, 5.2418043519333413e-01],
        [-1.7978050158810124e-01, -8.1667224914964009e-01, 6.1232339957367660e-17, 8.1667224914964021e-01, 1.7978050158810119e-01],
        [-5.2418043519333413e-01, -5.1021507109873676e-01, 6.2261725777268784e-01, 5.5751257107641028e-01, -1.1870956010946107e-01],
        [-5.4759898149201380e-01, 9.6326681182096807e-02, 6.8554222353092964e-01, 1.0971826577507444e-01, -1.6921582163304191e-01],
    ]
)
# cv2.getGaborKernel((3, 5), 2.0, 1.0, 3.0, 0.8, 0.0, ktype=cv2.CV_64F): ksize is (width, height)
OPENCV_GABOR_5x3 = np.array(
    [
        [-0.030056024862100184, -0.592902188020333, -0.46314514791365013],
        [-0.7581355532600201, -0.17025526518839854, 0.6853676332279077],
        [0.3873922735687546, 1.0, 0.3873922735687546],
        [0.6853676332279077, -0.17025526518839854, -0.7581355532600201],
        [-0.46314514791365013, -0.592902188020333, -0.030056024862100184],
    ]
)


def gabor_loops(rows, cols, sigma, theta, lambd, gamma, psi):
    """The textbook Gabor g(x, y) with x right and y down, then rotated 180 degrees as OpenCV stores it."""
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            x, y = c - cols // 2, r - rows // 2
            xr = x * math.cos(theta) + y * math.sin(theta)
            yr = -x * math.sin(theta) + y * math.cos(theta)
            out[r, c] = math.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2)) * math.cos(2 * math.pi * xr / lambd + psi)
    return out[::-1, ::-1]


def test_gabor_matches_opencv_and_the_formula():
    np.testing.assert_allclose(kernels.gabor(5, 1.5, 0.5, 4.0, 0.5), OPENCV_GABOR_5, atol=1e-15)
    np.testing.assert_allclose(kernels.gabor((5, 3), 2.0, 1.0, 3.0, 0.8, 0.0), OPENCV_GABOR_5x3, atol=1e-15)
    for args in [(7, 9, 2.0, 0.3, 5.0, 0.6, 1.0), (11, 11, 3.0, 2.0, 6.0, 1.0, 0.0)]:
        np.testing.assert_allclose(kernels.gabor(args[:2], *args[2:]), gabor_loops(*args), atol=1e-14)


def test_gabor_default_phase_has_the_sign_of_sobel():
    rows, cols = np.mgrid[0:31, 0:31].astype(float)
    assert ndi.correlate(cols, kernels.gabor(15))[15, 15] > 0  # theta=0: like sobel_x
    assert ndi.correlate(rows, kernels.gabor(15, theta=math.pi / 2))[15, 15] > 0  # like sobel_y
    assert abs(kernels.gabor(15).sum()) < 1e-12  # odd: seed 003's "kernel / kernel.sum()" would divide by 0


def test_seed_003_gabor_is_gabor_with_zero_phase_normalised():
    # Seed 003's create_gabor_kernel(ksize=31, sigma=4.0, theta=0, lambd=10.0, gamma=0.5): psi=0, no
    # 180-degree rotation (it does not matter for a cosine Gabor at theta=0), divided by its sum.
    seed = gabor_loops(31, 31, 4.0, 0.0, 10.0, 0.5, 0.0)[::-1, ::-1]
    seed /= seed.sum()
    ours = kernels.gabor(31, 4.0, 0.0, 10.0, 0.5, psi=0.0)
    np.testing.assert_allclose(ours / ours.sum(), seed, rtol=1e-12)


def test_get_by_name_and_defaults():
    for name in kernels.KERNELS:
        k = kernels.get(name)
        assert k.dtype == np.float64 and k.ndim == 2 and np.isfinite(k).all(), name
    np.testing.assert_array_equal(kernels.get("Sobel-X"), kernels.sobel_x())
    np.testing.assert_array_equal(kernels.get("gaussian", size=7, sigma=2), kernels.gaussian(7, 2))
    with pytest.raises(ValueError, match="Received: name='nope'"):
        kernels.get("nope")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: kernels.gaussian(5, -1), ValueError, "Received: sigma=-1"),
        (lambda: kernels.gaussian(4, 1.0), ValueError, "Received: size=4"),
        (lambda: kernels.gaussian("5", 1.0), TypeError, "Received: size='5'"),
        (lambda: kernels.gabor(9, lambd=0), ValueError, "Received: lambd=0"),
        (lambda: kernels.gabor(9, gamma=float("nan")), ValueError, "Received: gamma=nan"),
        (lambda: kernels.motion_blur(9, angle=None), TypeError, "Received: angle=None"),
        (lambda: kernels.box(0), ValueError, "Received: size=0"),
        (lambda: kernels.sharpen(True), TypeError, "Received: amount=True"),
        (lambda: kernels.laplacian_of_gaussian((9, 8)), ValueError, r"Received: size=\(9, 8\)"),
    ],
)
def test_bad_arguments_name_the_parameter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_as_hwio_shapes_and_values():
    k = kernels.sobel_x()
    summed, depthwise = kernels.as_hwio(k, 3), kernels.as_hwio(k, 3, depthwise=True)
    assert summed.shape == (3, 3, 3, 1) and depthwise.shape == (3, 3, 1, 3)
    np.testing.assert_array_equal(summed[:, :, 2, 0], k)
    np.testing.assert_array_equal(depthwise[:, :, 0, 1], k)
