"""The record every dataset reader returns: one labelled video, plus what could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from lstmfpga.foundation.errors import InputError

REAL, FAKE = 0, 1
SPLITS = ("train", "val", "test")


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
    """Collects records and problems, dropping repeated paths with a reason."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = Path(root)
        self.records: list[VideoRecord] = []
        self.problems: list[Problem] = []
        self._seen: dict[str, str] = {}

    def skip(self, where: str, reason: str) -> None:
        self.problems.append(Problem(where, reason))

    def add(self, where: str, record: VideoRecord) -> None:
        first = self._seen.get(record.path)
        if first is not None:
            self.skip(where, f"video {record.path} already listed at {first}")
            return
        self._seen[record.path] = where
        self.records.append(record)

    def build(self) -> DatasetListing:
        return DatasetListing(self.name, self.root, tuple(self.records), tuple(self.problems))
