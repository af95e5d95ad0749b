"""Fashion-MNIST from local IDX files, as ``keras.datasets.fashion_mnist.load_data()`` returns it.

Files: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz`` in ``path``, else ``$NPCONV_DATA/fashion-mnist``, else Keras' cache
``~/.keras/datasets/fashion-mnist`` (where Keras itself keeps them).  Nothing is downloaded.
"""

from __future__ import annotations

from ._files import load_idx_dataset

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` / ``(10000, 28, 28)``
    with values 0-255 and uint8 labels 0-9.  A clear ``FileNotFoundError`` says where to put the
    files when they are absent."""
    return load_idx_dataset("fashion-mnist", path, "Fashion-MNIST (github.com/zalandoresearch/fashion-mnist)")
