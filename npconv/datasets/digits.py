"""scikit-learn's handwritten digits (1,797 images, 8x8, values 0-16), shaped like MNIST.

The images ship inside scikit-learn (the ``data`` extra: ``pip install npconv[data]``), so this
data set works offline.  ``load_data`` upsamples them (bilinear) to ``size`` x ``size``, scales
them to uint8 0-255 and splits them reproducibly.
"""

from __future__ import annotations

import numpy as np


def load_data(size: int = 28, test_split: float = 0.2, seed: int = 0):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images ``(n, size, size)``, uint8 labels 0-9.

    ``test_split`` of the samples (shuffled with ``seed``) form the test set.

    >>> from npconv.datasets import digits
    >>> (x_train, y_train), (x_test, y_test) = digits.load_data(size=16)
    >>> x_train.shape, x_test.shape, x_train.dtype, int(x_train.max())
    ((1438, 16, 16), (359, 16, 16), dtype('uint8'), 255)
    """
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"Invalid value for argument `size`: expected an int >= 8. Received: size={size!r}")
    if not 0 < test_split < 1:
        raise ValueError(
            f"Invalid value for argument `test_split`: expected a float in (0, 1). Received: test_split={test_split!r}"
        )
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "npconv.datasets.digits needs scikit-learn, which ships the images: pip install 'npconv[data]'"
        ) from None
    bunch = load_digits()
    images = bunch.images.astype(np.float64)
    if size != 8:
        from scipy import ndimage  # imported here: it takes a quarter of `import npconv`

        images = ndimage.zoom(images, (1, size / 8, size / 8), order=1)
    x = np.clip(np.rint(images * (255 / 16)), 0, 255).astype(np.uint8)
    y = bunch.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_split))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])
