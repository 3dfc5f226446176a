"""Reading an uncompressed ``.npz`` whose every array is checked before its data is read.

``np.load`` inflates whatever a member holds and trusts each ``.npy`` header's shape; a small
hostile file can then claim gigabytes.  :class:`StoredNpz` instead refuses compressed members and
members larger than the file, reads each ``.npy`` header first, and reads the data only when
dtype, shape and member size are what the caller expects.  NumPy only.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ArtifactError, LstmfpgaError

#: The ``.npy`` header versions ``np.save`` writes (3.0 only for non-ASCII field names).
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class StoredNpz:
    """An open ``.npz`` of uncompressed members, as a context manager.

    Parameters
    ----------
    path :
        The file.
    error :
        The :class:`LstmfpgaError` subclass raised, its message starting with ``path``.
    """

    def __init__(self, path: str | os.PathLike, *, error: type[LstmfpgaError] = ArtifactError):
        self.path = Path(path)
        self.error = error
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise error(f"{self.path}: not a readable .npz archive ({exc})") from None
        try:
            self.members = self._check_members()
        except BaseException:
            self._zip.close()
            raise

    def _check_members(self) -> dict[str, zipfile.ZipInfo]:
        size = self.path.stat().st_size
        members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.error(f"{self.path}: member {info.filename} is compressed; only stored "
                                 "(uncompressed) members are read")
            if info.file_size != info.compress_size or info.file_size > size:
                raise self.error(f"{self.path}: member {info.filename} claims {info.file_size} bytes "
                                 f"in a file of {size} bytes")
            if not info.filename.endswith(".npy"):
                raise self.error(f"{self.path}: member {info.filename} is not a .npy array")
            name = info.filename[:-len(".npy")]
            if name in members:
                raise self.error(f"{self.path}: member {info.filename} appears twice")
            members[name] = info
        return members

    def __enter__(self) -> StoredNpz:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    @property
    def names(self) -> set[str]:
        return set(self.members)

    def read(self, name: str, dtype: str, shape: tuple[int | None, ...], *,
             limit: int | None = None) -> np.ndarray:
        """Array ``name``, refused unless it has exactly ``dtype`` and ``shape``.

        ``None`` in ``shape`` accepts any length of that axis, up to ``limit``.
        """
        info = self.members.get(name)
        if info is None:
            raise self.error(f"{self.path}: array {name} is missing")
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                header_reader = _HEADER_READERS.get(version)
                if header_reader is None:
                    raise self.error(f"{self.path}: array {name} has .npy format version {version}")
                found_shape, fortran, found_dtype = header_reader(f)
                self._check(name, found_dtype, found_shape, dtype, shape, limit)
                count = int(np.prod(found_shape, dtype=object))
                nbytes = count * found_dtype.itemsize
                if f.tell() + nbytes != info.file_size:
                    raise self.error(f"{self.path}: array {name} of shape {found_shape} needs {nbytes} bytes, "
                                     f"its member holds {info.file_size - f.tell()}")
                data = f.read(nbytes)
        except LstmfpgaError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise self.error(f"{self.path}: array {name} cannot be read ({exc})") from None
        if len(data) != nbytes:
            raise self.error(f"{self.path}: array {name} is truncated ({len(data)} of {nbytes} bytes)")
        return np.frombuffer(data, dtype=found_dtype).reshape(found_shape, order="F" if fortran else "C")

    def _check(self, name, found_dtype, found_shape, dtype, shape, limit) -> None:
        if found_dtype != np.dtype(dtype) or found_dtype.str != np.dtype(dtype).str:
            raise self.error(f"{self.path}: array {name} is stored as {found_dtype.str} ({found_dtype}), "
                             f"expected {np.dtype(dtype).str} ({np.dtype(dtype)})")
        fits = len(found_shape) == len(shape) and all(
            want == got if want is not None else 1 <= got <= (limit or got)
            for want, got in zip(shape, found_shape))
        if not fits:
            wanted = tuple("C" if s is None else s for s in shape)
            raise self.error(f"{self.path}: array {name} has shape {found_shape}, the header implies "
                             f"{wanted}".replace("'C'", "C"))
