"""Read and write the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

An IDX file is a 4-byte magic number ``0, 0, type, ndim``, ``ndim`` big-endian uint32 sizes, then
the data, big-endian, C order.

>>> import numpy as np, tempfile, pathlib
>>> from npconv.datasets import idx
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte.gz"
>>> idx.write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
>>> idx.read_idx(path)
array([7, 2, 1], dtype=uint8)
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from .._files import atomic_write

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("="): k for k, v in TYPES.items()}


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path) -> np.ndarray:
    """The array stored in IDX file ``path`` (``.gz`` is decompressed), in native byte order."""
    path = Path(path)
    with _open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(TYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(raw)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file (gzip if ``.gz``),
    atomically: if writing fails, an existing file at ``path`` is left as it was."""
    array = np.asarray(array)
    code = CODES.get(array.dtype)
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use one of {sorted(str(d) for d in CODES)}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    content = header + np.ascontiguousarray(array, dtype=TYPES[code]).tobytes()

    def write(temporary: Path) -> None:
        with _open(temporary, "wb") as f:
            f.write(content)

    atomic_write(path, write)
