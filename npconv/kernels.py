"""Classic image-processing kernels as float64 arrays, ready for :func:`npconv.conv`.

Kernels are 2-D ``(rows, cols)`` arrays indexed ``[row, column]``, rows pointing down, oriented for
cross-correlation (``nc.conv`` with the default ``flip=False``, ``scipy.ndimage.correlate``,
OpenCV's ``filter2D``): ``sobel_x`` responds positively where intensity increases to the right,
``sobel_y`` where it increases downwards.  Reshape to ``(kh, kw, 1, 1)`` for a single-channel HWIO
kernel, or use :func:`as_hwio`; :mod:`npconv.image` filters whole images with them.

Sizes are odd (the kernel has a centre pixel) and given as an int or a ``(rows, cols)`` pair.
Coordinates in the formulas are relative to that centre: ``x = c - (cols - 1) / 2`` (right) and
``y = r - (rows - 1) / 2`` (down), unless a kernel says otherwise.

| name | formula | checked against |
| --- | --- | --- |
| :func:`sobel_x`, :func:`sobel_y` | ``[1, 2, 1]^T [-1, 0, 1]`` | ``scipy.ndimage.sobel`` |
| :func:`scharr_x`, :func:`scharr_y` | ``[3, 10, 3]^T [-1, 0, 1]`` | OpenCV ``Scharr`` |
| :func:`prewitt_x`, :func:`prewitt_y` | ``[1, 1, 1]^T [-1, 0, 1]`` | ``scipy.ndimage.prewitt`` |
| :func:`laplacian` | 4- or 8-neighbour second difference | ``scipy.ndimage.laplace`` |
| :func:`laplacian_of_gaussian` | ``G (x^2 + y^2 - 2 sigma^2) / sigma^4`` | ``scipy.ndimage.gaussian_laplace`` |
| :func:`gaussian` | ``exp(-(x^2 + y^2) / (2 sigma^2))``, sum 1 | ``scipy.ndimage.gaussian_filter`` |
| :func:`box` | ``1 / (rows * cols)`` | ``scipy.ndimage.uniform_filter`` |
| :func:`sharpen`, :func:`unsharp` | ``delta - a * laplacian``, ``(1 + a) delta - a G`` | the filtered identities |
| :func:`emboss`, :func:`motion_blur`, :func:`gabor` | see each function | formulas / OpenCV ``getGaborKernel`` |
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._spec import _is_int, received

# --------------------------------------------------------------------------- argument checks


def _size(size, odd: bool = True) -> tuple[int, int]:
    """An int >= 1 (odd when ``odd``: the kernel needs a centre pixel), or a ``(rows, cols)`` pair of
    them, as ``(rows, cols)``."""
    pair = (size, size) if _is_int(size) else size
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
        raise TypeError(f"Invalid type for argument `size`: expected an int or a (rows, cols) pair of ints. {received(size=size)}")
    if any(v < 1 or (odd and v % 2 == 0) for v in pair):
        condition = "an odd int >= 1 (the kernel needs a centre pixel)" if odd else "an int >= 1"
        raise ValueError(f"Invalid value for argument `size`: expected {condition}, or a (rows, cols) pair of them. {received(size=size)}")
    return int(pair[0]), int(pair[1])


def _real(value, name: str, positive: bool = False) -> float:
    """A finite real number (``> 0`` when ``positive``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid type for argument `{name}`: expected a real number. {received(**{name: value})}")
    if not math.isfinite(value) or (positive and value <= 0):
        condition = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"Invalid value for argument `{name}`: expected {condition}. {received(**{name: value})}")
    return float(value)


def _centred_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y, x)`` coordinates of every pixel relative to the centre: y down the rows, x along the columns."""
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    return y - (rows - 1) / 2, x - (cols - 1) / 2


def _delta(rows: int, cols: int) -> np.ndarray:
    """The identity kernel: 1 at the centre."""
    kernel = np.zeros((rows, cols))
    kernel[rows // 2, cols // 2] = 1.0
    return kernel


# --------------------------------------------------------------------------- derivatives


def sobel_x() -> np.ndarray:
    """Sobel horizontal derivative: smoothing ``[1, 2, 1]`` down the rows times ``[-1, 0, 1]``.

    >>> sobel_x()
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    """
    return np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])


def sobel_y() -> np.ndarray:
    """Sobel vertical derivative (positive where intensity increases downwards): ``sobel_x().T``.

    >>> sobel_y()[:, 1]
    array([-2.,  0.,  2.])
    """
    return sobel_x().T.copy()


def scharr_x() -> np.ndarray:
    """Scharr horizontal derivative, better rotational symmetry than Sobel: ``[3, 10, 3]^T [-1, 0, 1]``
    (OpenCV's ``Scharr(dx=1)``; divide by 32 for a unit-slope response).

    >>> scharr_x()[:, 2]
    array([ 3., 10.,  3.])
    """
    return np.outer([3.0, 10.0, 3.0], [-1.0, 0.0, 1.0])


def scharr_y() -> np.ndarray:
    """Scharr vertical derivative: ``scharr_x().T``.

    >>> scharr_y()[2]
    array([ 3., 10.,  3.])
    """
    return scharr_x().T.copy()


def prewitt_x() -> np.ndarray:
    """Prewitt horizontal derivative: box smoothing ``[1, 1, 1]^T`` times ``[-1, 0, 1]``.

    >>> prewitt_x()[0]
    array([-1.,  0.,  1.])
    """
    return np.outer([1.0, 1.0, 1.0], [-1.0, 0.0, 1.0])


def prewitt_y() -> np.ndarray:
    """Prewitt vertical derivative: ``prewitt_x().T`` (seed 003's "edge detection" kernel).

    >>> prewitt_y()[:, 0]
    array([-1.,  0.,  1.])
    """
    return prewitt_x().T.copy()


def laplacian(neighbours: int = 4) -> np.ndarray:
    """Discrete Laplacian ``d2/dx2 + d2/dy2``: 4-neighbour ``[[0,1,0],[1,-4,1],[0,1,0]]`` (the sum of
    the second differences ``[1, -2, 1]`` along both axes) or the 8-neighbour ``1 - 9 delta``.

    >>> laplacian(8)
    array([[ 1.,  1.,  1.],
           [ 1., -8.,  1.],
           [ 1.,  1.,  1.]])
    """
    if neighbours == 4:
        return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    if neighbours == 8:
        return np.ones((3, 3)) - 9.0 * _delta(3, 3)
    raise ValueError(f"Invalid value for argument `neighbours`: expected 4 or 8. Received: neighbours={neighbours!r}")


def edge_detect() -> np.ndarray:
    """The "edge detection" kernel of the Wikipedia kernel table, ``-laplacian(8)``:
    ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]`` (seed tutorial 004 uses it).

    >>> float(edge_detect().sum())
    0.0
    """
    return -laplacian(8)


# --------------------------------------------------------------------------- smoothing


def gaussian(size=5, sigma: float = 1.0) -> np.ndarray:
    """Sampled Gaussian, normalised to sum 1::

        G[r, c] = exp(-(x^2 + y^2) / (2 sigma^2)) / sum(...)

    Separable: ``gaussian(n, s) == np.outer(g, g)`` with ``g`` the normalised 1-D Gaussian, which
    is OpenCV's ``getGaussianKernel(n, s)``.  ``scipy.ndimage.gaussian_filter(image, sigma,
    radius=size // 2)`` filters with exactly this kernel.

    >>> gaussian(3, 1.0).round(4)
    array([[0.0751, 0.1238, 0.0751],
           [0.1238, 0.2042, 0.1238],
           [0.0751, 0.1238, 0.0751]])
    """
    rows, cols = _size(size)
    sigma = _real(sigma, "sigma", positive=True)
    y, x = _centred_grid(rows, cols)
    kernel = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def box(size=3) -> np.ndarray:
    """Mean (box) filter: every entry ``1 / (rows * cols)`` (``scipy.ndimage.uniform_filter``).

    Any size >= 1 (even sizes have no centre pixel; :func:`npconv.image.filter2d` then centres them
    like SciPy and OpenCV, at index ``size // 2``).

    >>> box(2)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    rows, cols = _size(size, odd=False)
    return np.full((rows, cols), 1.0 / (rows * cols))


def motion_blur(size: int = 9, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: a line segment of length ``size - 1`` through the centre at ``angle``
    degrees counter-clockwise from the +x axis (0: horizontal, 90: vertical, 45: towards the top
    right of the displayed image), anti-aliased and normalised to sum 1::

        K[r, c] = max(0, 1 - distance((x, -y), segment)) / sum(...)

    At 0 and 90 degrees this is exactly one row / column of ``1 / size``.

    >>> motion_blur(3)
    array([[0.        , 0.        , 0.        ],
           [0.33333333, 0.33333333, 0.33333333],
           [0.        , 0.        , 0.        ]])
    """
    rows, _ = _size(size)
    angle = _real(angle, "angle")
    y, x = _centred_grid(rows, rows)
    up = -y  # the angle is measured with y pointing up, as the image is displayed
    theta = math.radians(angle)
    direction = np.array([math.cos(theta), math.sin(theta)])
    half = (rows - 1) / 2
    along = np.clip(x * direction[0] + up * direction[1], -half, half)  # nearest point of the segment
    distance = np.hypot(x - along * direction[0], up - along * direction[1])
    kernel = np.maximum(0.0, 1.0 - distance)
    kernel[np.abs(kernel) < 1e-12] = 0.0  # cos(90 degrees) is 6e-17, not 0
    return kernel / kernel.sum()


# --------------------------------------------------------------------------- second derivatives, sharpening


def laplacian_of_gaussian(size=9, sigma: float = 1.4) -> np.ndarray:
    """Laplacian of Gaussian ("Mexican hat", negative centre), sampled and normalised as SciPy does::

        LoG[r, c] = G[r, c] * (x^2 + y^2 - 2 sigma^2) / sigma^4

    with ``G = gaussian(size, sigma)`` (sum 1): the continuous ``-(1 / (pi sigma^4)) (1 - (x^2 + y^2)
    / (2 sigma^2)) exp(-(x^2 + y^2) / (2 sigma^2))`` with the Gaussian's discrete normalisation.
    Equals ``scipy.ndimage.gaussian_laplace(image, sigma, radius=size // 2)``'s kernel.  Its sum is
    close to, not exactly, 0 (MATLAB's ``fspecial('log')`` also subtracts the mean).

    >>> k = laplacian_of_gaussian(9, 1.4)
    >>> k.shape, bool(k[4, 4] < 0), round(float(k.sum()), 3)
    ((9, 9), True, -0.013)
    """
    rows, cols = _size(size)
    sigma = _real(sigma, "sigma", positive=True)
    y, x = _centred_grid(rows, cols)
    return gaussian((rows, cols), sigma) * (x**2 + y**2 - 2 * sigma**2) / sigma**4


def sharpen(amount: float = 1.0) -> np.ndarray:
    """Sharpening: the identity minus ``amount`` times the 4-neighbour Laplacian, ``delta - a *
    laplacian(4)``; ``amount=1`` is the classic ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``.  Sum 1, so flat
    regions are unchanged.

    >>> sharpen()
    array([[ 0., -1.,  0.],
           [-1.,  5., -1.],
           [ 0., -1.,  0.]])
    """
    amount = _real(amount, "amount")
    return _delta(3, 3) - amount * laplacian(4)


def unsharp(size=5, sigma: float = 1.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking as one kernel: ``image + amount * (image - blurred)``, i.e.
    ``(1 + amount) delta - amount * gaussian(size, sigma)``.  Sum 1.

    >>> k = unsharp(5, 1.0, 1.0)
    >>> round(float(k.sum()), 12), bool(k[2, 2] > 1)
    (1.0, True)
    """
    rows, cols = _size(size)
    amount = _real(amount, "amount")
    return (1.0 + amount) * _delta(rows, cols) - amount * gaussian((rows, cols), sigma)


def emboss() -> np.ndarray:
    """Emboss (relief) kernel of the GIMP / Wikipedia tables: a ramp along the main diagonal plus the
    identity, ``E[r, c] = r + c - 2 + delta[r, c]``; sum 1 (flat regions keep their value, edges
    facing the bottom right brighten).

    >>> emboss()
    array([[-2., -1.,  0.],
           [-1.,  1.,  1.],
           [ 0.,  1.,  2.]])
    """
    r, c = np.mgrid[0:3, 0:3].astype(float)
    return r + c - 2.0 + _delta(3, 3)


def gabor(size=21, sigma: float = 4.0, theta: float = 0.0, lambd: float = 10.0, gamma: float = 0.5, psi: float = math.pi / 2) -> np.ndarray:
    """Gabor kernel, OpenCV's ``getGaborKernel`` convention (the same array, float64)::

        g(x, y) = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / lambd + psi)
        x' = x cos(theta) + y sin(theta),   y' = -x sin(theta) + y cos(theta)
        K[r, c] = g(x = cx - c, y = cy - r)          (cx, cy: the centre column and row)

    OpenCV stores ``g`` rotated by 180 degrees (the last line), so correlating with ``K`` (``nc.conv``,
    ``filter2D``) is the true convolution with ``g``.  ``theta`` (radians) is the direction of the
    normal to the stripes, ``lambd`` their wavelength in pixels, ``gamma`` the aspect ratio of the
    envelope, ``psi`` the phase.  With OpenCV's default ``psi = pi/2`` the kernel is odd: at
    ``theta = 0`` it has the sign of :func:`sobel_x`, at ``theta = pi/2`` that of :func:`sobel_y`.
    ``size`` is ``(rows, cols)`` here, where OpenCV's ``ksize`` is ``(width, height)``, and must be
    odd (OpenCV silently rounds even sizes up).  Not normalised: a cosine Gabor's sum may be 0.

    >>> k = gabor(5, sigma=1.5, theta=0.5, lambd=4.0)
    >>> k.shape, round(float(k[2, 3]), 6)
    ((5, 5), 0.816672)
    """
    rows, cols = _size(size)
    sigma = _real(sigma, "sigma", positive=True)
    theta = _real(theta, "theta")
    lambd = _real(lambd, "lambd", positive=True)
    gamma = _real(gamma, "gamma", positive=True)
    psi = _real(psi, "psi")
    y, x = _centred_grid(rows, cols)
    x, y = -x, -y  # OpenCV's 180-degree rotation
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    return np.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2)) * np.cos(2 * math.pi * xr / lambd + psi)


# --------------------------------------------------------------------------- helpers


def as_hwio(kernel: np.ndarray, channels: int = 1, depthwise: bool = False) -> np.ndarray:
    """A 2-D kernel as an HWIO conv kernel.

    ``channels`` input channels summed into one output (``(kh, kw, channels, 1)``), or with
    ``depthwise=True`` one copy per channel for ``groups=channels`` (``(kh, kw, 1, channels)``).

    >>> as_hwio(sobel_x(), 3).shape, as_hwio(sobel_x(), 3, depthwise=True).shape
    ((3, 3, 3, 1), (3, 3, 1, 3))
    """
    kernel = np.asarray(kernel, dtype=float)
    if depthwise:
        return np.repeat(kernel[:, :, None, None], channels, axis=3)
    return np.repeat(kernel[:, :, None, None], channels, axis=2)


KERNELS = {
    "sobel_x": sobel_x,
    "sobel_y": sobel_y,
    "scharr_x": scharr_x,
    "scharr_y": scharr_y,
    "prewitt_x": prewitt_x,
    "prewitt_y": prewitt_y,
    "laplacian": laplacian,
    "edge_detect": edge_detect,
    "laplacian_of_gaussian": laplacian_of_gaussian,
    "log": laplacian_of_gaussian,
    "gaussian": gaussian,
    "box": box,
    "motion_blur": motion_blur,
    "sharpen": sharpen,
    "unsharp": unsharp,
    "emboss": emboss,
    "gabor": gabor,
}
"""Every kernel by name (``get`` also accepts ``-`` for ``_`` and any case)."""


def get(name: str, **params) -> np.ndarray:
    """A kernel by name with its parameters: ``get("sobel-x")``, ``get("gaussian", size=7, sigma=2)``.

    >>> get("Sobel-X")[1]
    array([-2.,  0.,  2.])
    >>> float(get("laplacian", neighbours=8)[1, 1])
    -8.0
    """
    key = name.lower().replace("-", "_") if isinstance(name, str) else None
    if key not in KERNELS:
        raise ValueError(f"Invalid value for argument `name`: expected one of {sorted(KERNELS)}. {received(name=name)}")
    return KERNELS[key](**params)
