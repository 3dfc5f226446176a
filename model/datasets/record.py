"""The record every dataset reader returns: one labelled video, plus what could not be read.

Every video path a reader lists goes through :func:`confine` before anything looks at the file:
an entry that is absolute, too long, or leads out of the dataset root (``..`` or a symbolic
link) is skipped with its reason, so a list file can never make the extractor open a file
outside the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType

from lstmfpga.foundation.errors import InputError

REAL, FAKE = 0, 1
SPLITS = ("train", "val", "test")
#: Longest entry accepted, in UTF-8 bytes (Linux refuses paths past 4096 and names past 255).
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


def confine(root: Path, relpath: str, *, base: str = "") -> str:
    """``base/relpath`` normalised (``a/./b/../c`` → ``a/c``) as a path inside ``root``.

    ``base`` is the root-relative folder a list's entries are relative to.  Only ``root`` and
    what lies lexically below it is looked at (to follow symbolic links).

    Raises
    ------
    ValueError
        With the reason: empty, a NUL byte, too long, absolute, leaving ``root`` by ``..``, or
        by a symbolic link that points outside it.
    """
    if not relpath:
        raise ValueError("empty path")
    if "\0" in relpath:
        raise ValueError(f"path {relpath!r} holds a NUL byte")
    size = len(relpath.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH_BYTES:
        raise ValueError(f"path of {size} bytes is longer than {MAX_PATH_BYTES} ({relpath[:40]!r}...)")
    long_name = next((part for part in PurePosixPath(relpath).parts
                      if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES), None)
    if long_name is not None:
        raise ValueError(f"path {relpath[:40]!r}... has a name longer than {MAX_NAME_BYTES} bytes")
    if PurePosixPath(relpath).is_absolute() or PureWindowsPath(relpath).is_absolute():
        raise ValueError(f"path {relpath} is absolute: entries must be relative to the dataset root")
    joined = f"{base}/{relpath}" if base else relpath
    normal = os.path.normpath(joined)
    if normal == os.curdir:
        raise ValueError(f"path {joined} names the dataset root itself, not a video")
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        raise ValueError(f"path {joined} leads outside the dataset root")
    root_real = Path(root).resolve()
    if not (root_real / normal).resolve().is_relative_to(root_real):
        raise ValueError(f"path {joined} leads outside the dataset root through a symbolic link")
    return PurePosixPath(normal).as_posix()


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video of a dataset.

    Attributes
    ----------
    path : str
        Path relative to the dataset root, with ``/`` separators; unique within a listing.
    label : int
        0 = real, 1 = fake.
    split : str
        The dataset's own split: ``'train'``, ``'val'`` or ``'test'``.
    extra : Mapping[str, int | str]
        Further labels of this dataset (``label_3way``, ``label_16cls``, ``method``, ...).
    """

    path: str
    label: int
    split: str
    extra: Mapping[str, int | str] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.path, str) or not self.path:
            raise InputError(f"video path must be a non-empty string, not {self.path!r}")
        if self.label not in (REAL, FAKE):
            raise InputError(f"label must be 0 (real) or 1 (fake), not {self.label!r}")
        if self.split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, not {self.split!r}")
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))


@dataclass(frozen=True)
class Problem:
    """A line, entry or file a reader skipped: where (``file:line``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class DatasetListing:
    """What a reader found under ``root``: the usable records and the skipped entries."""

    name: str
    root: Path
    records: tuple[VideoRecord, ...]
    problems: tuple[Problem, ...] = ()

    def __len__(self) -> int:
        return len(self.records)

    def resolve(self, record: VideoRecord) -> Path:
        """The file of a record on this machine."""
        return self.root / record.path


class ListingBuilder:
    """Collects records and problems, dropping repeated and unconfined paths with a reason."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = Path(root)
        self.records: list[VideoRecord] = []
        self.problems: list[Problem] = []
        self._seen: dict[str, str] = {}

    def skip(self, where: str, reason: str) -> None:
        self.problems.append(Problem(where, reason))

    def confine(self, where: str, relpath: str, *, base: str = "") -> str | None:
        """``base/relpath`` confined to the root (see :func:`confine`), or None with the skip recorded."""
        try:
            return confine(self.root, relpath, base=base)
        except ValueError as exc:
            self.skip(where, str(exc))
            return None

    def add(self, where: str, record: VideoRecord) -> None:
        path = self.confine(where, record.path)
        if path is None:
            return
        if path != record.path:
            record = VideoRecord(path, record.label, record.split, record.extra)
        first = self._seen.get(record.path)
        if first is not None:
            self.skip(where, f"video {record.path} already listed at {first}")
            return
        self._seen[record.path] = where
        self.records.append(record)

    def build(self) -> DatasetListing:
        return DatasetListing(self.name, self.root, tuple(self.records), tuple(self.problems))
