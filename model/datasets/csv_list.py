"""A plain CSV list: ``path,label[,split]`` with an optional header row.

Labels are ``0``/``1`` or ``real``/``fake`` (any case); the split defaults to ``train``.  Paths
are relative to the CSV file's folder; absolute paths and paths leading out of it are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.datasets.record import FAKE, REAL, SPLITS, DatasetListing, ListingBuilder, VideoRecord

LABELS = {"0": REAL, "1": FAKE, "real": REAL, "fake": FAKE}


def _find_csv(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(path.glob("*.csv"))
        if len(candidates) == 1:
            return candidates[0]
        raise InputError(f"CSV dataset folder {path} must hold exactly one .csv file, found {len(candidates)}")
    raise InputError(f"CSV dataset {path} does not exist")


def _rows(reader, csv_path: Path, builder: ListingBuilder):
    """``(line number, row)`` of each readable row; a row the csv module refuses (a field past its
    size limit) is skipped with the reason."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            builder.skip(f"{csv_path}:{reader.line_num}", f"unreadable CSV row: {exc}")
            continue
        yield reader.line_num, row


def read_csv_list(path, *, default_split: str = "train") -> DatasetListing:
    """List the videos of a ``path,label[,split]`` CSV (a file, or a folder with one ``.csv``)."""
    csv_path = _find_csv(Path(path))
    root = csv_path.parent
    builder = ListingBuilder("csv", root)
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, row in _rows(csv.reader(handle), csv_path, builder):
            where = f"{csv_path}:{number}"
            if not row or all(not cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row]
            if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
                continue
            if len(cells) not in (2, 3):
                builder.skip(where, f"expected 'path,label[,split]', found {len(cells)} fields")
                continue
            relpath, label_text = cells[0], cells[1].lower()
            split = cells[2].lower() if len(cells) == 3 else default_split
            if not relpath:
                builder.skip(where, "empty path")
                continue
            if label_text not in LABELS:
                builder.skip(where, f"label {cells[1]!r} is not 0, 1, real or fake")
                continue
            if split not in SPLITS:
                builder.skip(where, f"split {cells[2]!r} is not one of {SPLITS}")
                continue
            builder.add(where, VideoRecord(relpath, LABELS[label_text], split))
    return builder.build()
