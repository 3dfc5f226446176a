"""FaceForensics++: ``original_sequences/youtube/<c>/videos`` and ``manipulated_sequences/<method>/<c>/videos``.

``splits/{train,val,test}.json`` each hold a list of pairs ``[a, b]``.  A pair contributes the
real videos ``a`` and ``b`` and the fakes ``a_b`` and ``b_a`` of every chosen method: both
directions (the target's face replaced by the source's, either way round).
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.model.datasets.record import FAKE, REAL, DatasetListing, ListingBuilder, VideoRecord

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
COMPRESSIONS = ("raw", "c23", "c40")
SPLIT_FILES = {"train": "train.json", "val": "val.json", "test": "test.json"}


def _check_options(methods, compression) -> tuple[str, ...]:
    methods = tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"FF++ methods must be a non-empty subset of {METHODS}, not {list(methods)}")
    if compression not in COMPRESSIONS:
        raise ConfigError(f"FF++ compression must be one of {COMPRESSIONS}, not {compression!r}")
    return methods


def _pairs(path: Path, builder: ListingBuilder) -> list[tuple[str, str, str]]:
    """The ``(where, a, b)`` pairs of one split file; bad entries are reported and dropped."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        builder.skip(str(path), f"cannot read the split file: {exc}")
        return []
    if not isinstance(entries, list):
        builder.skip(str(path), f"split file must hold a list of pairs, not {type(entries).__name__}")
        return []
    pairs = []
    for index, entry in enumerate(entries):
        where = f"{path}:[{index}]"
        if (not isinstance(entry, list) or len(entry) != 2
                or not all(isinstance(v, str) and v.strip() and "/" not in v for v in entry)):
            builder.skip(where, f"entry {entry!r} is not a pair of video ids")
            continue
        if entry[0] == entry[1]:
            builder.skip(where, f"pair {entry!r} pairs a video with itself")
            continue
        pairs.append((where, entry[0], entry[1]))
    return pairs


def read_ffpp(root, *, methods=METHODS[:4], compression: str = "c23") -> DatasetListing:
    """List FF++ videos of the chosen ``methods`` at one ``compression``.

    Raises
    ------
    ConfigError
        Unknown method or compression.
    InputError
        No ``splits/*.json`` under ``root``.
    """
    root = Path(root)
    methods = _check_options(methods, compression)
    builder = ListingBuilder("ffpp", root)
    split_dir = root / "splits"
    found = [s for s, name in SPLIT_FILES.items() if (split_dir / name).is_file()]
    if not found:
        raise InputError(f"FF++ folder {root} has no splits/{{train,val,test}}.json")
    real_dir = f"original_sequences/youtube/{compression}/videos"
    for split in found:
        for where, a, b in _pairs(split_dir / SPLIT_FILES[split], builder):
            for vid in (a, b):
                builder.add(where, VideoRecord(f"{real_dir}/{vid}.mp4", REAL, split,
                                               {"method": "original", "target": vid, "source": ""}))
            for method in methods:
                fake_dir = f"manipulated_sequences/{method}/{compression}/videos"
                for target, source in ((a, b), (b, a)):
                    builder.add(where, VideoRecord(f"{fake_dir}/{target}_{source}.mp4", FAKE, split,
                                                   {"method": method, "target": target, "source": source}))
    return builder.build()
