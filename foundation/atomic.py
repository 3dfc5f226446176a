"""Atomic file writes: a hidden temporary file beside the target, flushed to disk, then ``os.replace``.

Readers see the old file or the whole new one, never a part of it; a writer killed midway leaves
at most a ``.NAME.*.tmp`` file, which no reader looks at.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(path, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write the whole file to, for writers that take a file name.

    When the block ends without an exception the file is synced and moved onto ``path``;
    otherwise it is removed and ``path`` is left as it was. ``suffix`` ends the temporary
    name (e.g. ``.mp4`` for writers that pick the format from the name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` when the block ends without an exception."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield handle


def atomic_write_bytes(path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_file(path) as handle:
        handle.write(data)
    return Path(path)
