"""Data sets, Keras style: ``load_data()`` returns ``((x_train, y_train), (x_test, y_test))``.

- :mod:`~npconv.datasets.fashion_mnist`, :mod:`~npconv.datasets.mnist`: the standard IDX files from
  a local directory (default: Keras' cache ``~/.keras/datasets/<name>``; override with ``path=`` or
  ``NPCONV_DATA``). Nothing is downloaded.
- :mod:`~npconv.datasets.digits`: scikit-learn's 8x8 digits (the ``data`` extra), upsampled to
  16x16 or 28x28 — works offline, for demos and tests.
- :mod:`~npconv.datasets.idx`: read/write IDX files.
"""

from . import digits, fashion_mnist, idx, mnist

__all__ = ["digits", "fashion_mnist", "idx", "mnist"]
