"""Celeb-DF v2: ``List_of_testing_videos.txt`` plus the folders ``Celeb-real``, ``YouTube-real``, ``Celeb-synthesis``.

Test list lines are ``<label> <relpath>`` with **1 = real, 0 = fake** (the inverse of the usual
convention); every other video in the three folders is training data.  A test label that
contradicts its folder (a real label on ``Celeb-synthesis``) is reported and skipped: it is the
tell-tale of a list written with the usual convention.
"""

from __future__ import annotations

from pathlib import Path

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.datasets.record import FAKE, REAL, DatasetListing, ListingBuilder, VideoRecord

TEST_LIST = "List_of_testing_videos.txt"
FOLDER_LABELS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
#: The list's own labels: 1 means real.
LIST_LABELS = {"1": REAL, "0": FAKE}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def read_celebdf(root) -> DatasetListing:
    """List Celeb-DF v2: the listed test videos, and the rest of the folders as training videos.

    Raises
    ------
    InputError
        ``root`` has neither the test list nor any of the three folders.
    """
    root = Path(root)
    builder = ListingBuilder("celebdf", root)
    list_path = root / TEST_LIST
    folders = [f for f in FOLDER_LABELS if (root / f).is_dir()]
    if not list_path.is_file() and not folders:
        raise InputError(f"Celeb-DF folder {root} has neither {TEST_LIST} nor any of {list(FOLDER_LABELS)}")
    if list_path.is_file():
        for number, line in enumerate(list_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            where = f"{list_path}:{number}"
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2:
                builder.skip(where, f"expected '<label> <relpath>', found {len(fields)} fields")
                continue
            label_text, relpath = fields
            if label_text not in LIST_LABELS:
                builder.skip(where, f"label {label_text!r} is not 1 (real) or 0 (fake)")
                continue
            label = LIST_LABELS[label_text]
            relpath = builder.confine(where, relpath)
            if relpath is None:
                continue
            folder = relpath.split("/", 1)[0]
            if folder not in FOLDER_LABELS:
                builder.skip(where, f"path {relpath} is not under one of {list(FOLDER_LABELS)}")
                continue
            if FOLDER_LABELS[folder] != label:
                builder.skip(where, f"label {label_text} ({'real' if label == REAL else 'fake'}) contradicts folder {folder}"
                                    " (Celeb-DF lists use 1 = real)")
                continue
            builder.add(where, VideoRecord(relpath, label, "test", {"source": folder}))
    tested = {r.path for r in builder.records}
    for folder in folders:
        try:
            files = sorted(p for p in (root / folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        except OSError as exc:
            builder.skip(str(root / folder), f"cannot list the folder: {exc}")
            continue
        for path in files:
            relpath = f"{folder}/{path.name}"
            if relpath not in tested:
                builder.add(str(path), VideoRecord(relpath, FOLDER_LABELS[folder], "train", {"source": folder}))
    return builder.build()
