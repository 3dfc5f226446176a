"""DFDC: one ``metadata.json`` per part folder, ``{"file.mp4": {"label": "REAL"|"FAKE", "split": ..., "original": ...}}``.

``root`` may be a part folder itself or hold part folders (``dfdc_train_part_0``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.datasets.record import FAKE, REAL, DatasetListing, ListingBuilder, VideoRecord

METADATA = "metadata.json"
LABELS = {"REAL": REAL, "FAKE": FAKE}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test"}


def _metadata_files(root: Path) -> list[Path]:
    files = [root / METADATA] if (root / METADATA).is_file() else []
    files += sorted(p for p in root.glob(f"*/{METADATA}") if p.is_file())
    return files


def read_dfdc(root, *, default_split: str = "train") -> DatasetListing:
    """List the DFDC videos of every ``metadata.json`` in ``root`` and its part folders.

    Raises
    ------
    InputError
        No ``metadata.json`` found.
    """
    root = Path(root)
    builder = ListingBuilder("dfdc", root)
    files = _metadata_files(root)
    if not files:
        raise InputError(f"DFDC folder {root} has no {METADATA} (in itself or a part folder)")
    for meta_path in files:
        part = meta_path.parent
        try:
            entries = json.loads(meta_path.read_text())
            if not isinstance(entries, dict):
                raise ValueError(f"top level is a {type(entries).__name__}, not an object")
        except (OSError, ValueError, RecursionError) as exc:
            builder.skip(str(meta_path), f"cannot read the metadata: {exc}")
            continue
        for name, info in entries.items():
            where = f"{meta_path}:{name}"
            if not isinstance(info, dict):
                builder.skip(where, f"entry is a {type(info).__name__}, not an object")
                continue
            label = LABELS.get(str(info.get("label", "")).upper())
            if label is None:
                builder.skip(where, f"label {info.get('label')!r} is not REAL or FAKE")
                continue
            split = SPLIT_NAMES.get(str(info.get("split", default_split)).lower())
            if split is None:
                builder.skip(where, f"split {info.get('split')!r} is not one of {sorted(SPLIT_NAMES)}")
                continue
            original = info.get("original") or ""
            relpath = builder.confine(where, name, base=part.relative_to(root).as_posix())
            if relpath is None:
                continue
            builder.add(where, VideoRecord(relpath, label, split,
                                           {"original": str(original), "part": part.name}))
    return builder.build()
