"""Atomic output: a file or folder appears complete under its name, or not at all."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(path, mode: int | None = 0o666) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Whatever is written to the temporary path (a file or a folder such as a
    Zarr store) replaces ``path`` in one rename when the block ends without
    error; on error it is removed and ``path`` is left as it was. ``mode``
    (default 0666 less the umask, as for a new file) is applied to a file before the rename.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"output folder does not exist: {path.parent}")
    # the suffix stays last: writers such as GDAL's infer the format from it
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        if mode is not None and tmp.is_file():
            os.chmod(tmp, mode & ~_umask())
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        remove_path(tmp)


def write_text_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
