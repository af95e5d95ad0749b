"""MNIST from local IDX files, as ``keras.datasets.mnist.load_data()`` returns it.

Files: the four IDX files (``train-images-idx3-ubyte.gz``, ...) in ``path``, else
``$NPCONV_DATA/mnist``, else ``~/.keras/datasets/mnist``; without ``path``, Keras' own cache file
``~/.keras/datasets/mnist.npz`` is used when present.  Nothing is downloaded.
"""

from __future__ import annotations

from ._files import data_directory, load_idx_dataset


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` / ``(10000, 28, 28)``
    and uint8 labels 0-9."""
    keras_npz = data_directory("mnist").parent / "mnist.npz"
    return load_idx_dataset("mnist", path, "MNIST (the original IDX distribution)", keras_npz)
