"""Classic image-processing kernels as float arrays, ready for :func:`npconv.conv`.

Kernels are 2-D ``(kh, kw)`` arrays indexed ``[row, column]``, oriented for cross-correlation
(``nc.conv`` with the default ``flip=False``): ``sobel_x`` responds positively where intensity
increases to the right.  Reshape to ``(kh, kw, 1, 1)`` for a single-channel HWIO kernel, or use
:func:`as_hwio`.
"""

from __future__ import annotations

import numpy as np


def sobel_x() -> np.ndarray:
    """Sobel horizontal derivative: smoothing ``[1, 2, 1]`` down the rows times ``[-1, 0, 1]``.

    >>> sobel_x()
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    """
    return np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])


def sobel_y() -> np.ndarray:
    """Sobel vertical derivative (positive where intensity increases downwards): ``sobel_x().T``."""
    return sobel_x().T.copy()


def laplacian(neighbours: int = 4) -> np.ndarray:
    """Discrete Laplacian: 4-neighbour ``[[0,1,0],[1,-4,1],[0,1,0]]`` or the 8-neighbour version.

    >>> laplacian(8)
    array([[ 1.,  1.,  1.],
           [ 1., -8.,  1.],
           [ 1.,  1.,  1.]])
    """
    if neighbours == 4:
        return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    if neighbours == 8:
        kernel = np.ones((3, 3))
        kernel[1, 1] = -8.0
        return kernel
    raise ValueError(f"Invalid value for argument `neighbours`: expected 4 or 8. Received: neighbours={neighbours!r}")


def edge_detect() -> np.ndarray:
    """The "edge detection" kernel of the Wikipedia kernel table, ``-laplacian(8)``:
    ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]`` (seed tutorial 004 uses it)."""
    return -laplacian(8)


def as_hwio(kernel: np.ndarray, channels: int = 1, depthwise: bool = False) -> np.ndarray:
    """A 2-D kernel as an HWIO conv kernel.

    ``channels`` input channels summed into one output (``(kh, kw, channels, 1)``), or with
    ``depthwise=True`` one copy per channel for ``groups=channels`` (``(kh, kw, 1, channels)``).
    """
    kernel = np.asarray(kernel, dtype=float)
    if depthwise:
        return np.repeat(kernel[:, :, None, None], channels, axis=3)
    return np.repeat(kernel[:, :, None, None], channels, axis=2)
