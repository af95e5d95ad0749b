"""Finding and loading the MNIST-style IDX data sets from a local directory (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .idx import read_idx

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def data_directory(name: str, path=None) -> Path:
    """``path`` if given, else ``$NPCONV_DATA/<name>``, else Keras' cache ``~/.keras/datasets/<name>``."""
    if path is not None:
        return Path(path).expanduser()
    root = os.environ.get("NPCONV_DATA")
    return (Path(root) if root else Path.home() / ".keras" / "datasets").expanduser() / name


def _find(directory: Path, filename: str) -> Path | None:
    for candidate in (directory / filename, directory / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_idx_dataset(name: str, path, source: str, keras_npz: Path | None = None):
    """``((x_train, y_train), (x_test, y_test))`` from the four IDX files in the data directory
    (``.gz`` or already decompressed), or from Keras' ``.npz`` cache file when given and present."""
    directory = data_directory(name, path)
    found = [_find(directory, f) for f in IDX_FILES]
    if all(found):
        x_train, y_train, x_test, y_test = (read_idx(p) for p in found)
        return (x_train, y_train), (x_test, y_test)
    if path is None and keras_npz is not None and keras_npz.is_file():
        with np.load(keras_npz, allow_pickle=False) as data:
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    missing = [f for f, p in zip(IDX_FILES, found) if p is None]
    raise FileNotFoundError(
        f"The {name} data set is not on this machine: {', '.join(missing)} not found in {directory}. "
        f"npconv does not download. Copy the four IDX files of {source} into that directory: "
        f"{', '.join(IDX_FILES)} (or the same names without .gz). Or pass load_data(path=<directory holding "
        f"them>), or set NPCONV_DATA to a directory with a '{name}' subdirectory."
    )
