"""Atomic file writing: every file npconv writes (weights, checkpoints, images, figures, text) goes
through :func:`atomic_write`, so a failure midway (a full disk, an interrupted run, an error in the
writer) leaves the previous file as it was, never a truncated one.

>>> import pathlib, tempfile
>>> from npconv._files import atomic_write
>>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
>>> atomic_write(path, lambda temporary: temporary.write_text("first")).name
'notes.txt'
>>> def full_disk(temporary):
...     temporary.write_text("half")
...     raise OSError(28, "No space left on device")
>>> atomic_write(path, full_disk)
Traceback (most recent call last):
OSError: [Errno 28] No space left on device
>>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
('first', ['notes.txt'])
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def _temporary_path(path: Path) -> Path:
    """A new, empty file beside ``path`` whose name ends with ``path``'s suffix (writers that pick the
    format from the extension, such as ``np.savez``, Pillow and matplotlib, see the same one).  It is
    created with the default permissions (the umask applies), as ``open(path, "w")`` would."""
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush ``path`` to the disk (a directory only where the platform allows opening one)."""
    try:
        descriptor = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(descriptor)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(descriptor)


def atomic_write(path, write_function: Callable[[Path], object]) -> Path:
    """Write ``path`` all at once: ``write_function(temporary)`` writes a temporary file in the same
    directory (its name ends with ``path``'s suffix), which is flushed to the disk and then renamed
    over ``path`` (``os.replace``, atomic on POSIX and Windows).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.  A symbolic link is followed: the file it points to is replaced.
    write_function : callable
        Called with the temporary path (a :class:`pathlib.Path`); it writes the whole content there.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    Exception
        Whatever ``write_function``, the flush or the rename raised (``OSError`` for a full disk, ...).
        The previous content of ``path`` (or its absence) is then untouched and the temporary file
        is removed.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "values.npz"
    >>> atomic_write(path, lambda temporary: np.savez(temporary, a=np.arange(3))).name
    'values.npz'
    >>> np.load(path)["a"]
    array([0, 1, 2])
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    temporary = _temporary_path(path)
    try:
        write_function(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync(path.parent, directory=True)
    return path
