"""ForgeryNet's video lists: ``Training/video_list.txt`` and ``Validation/video_list.txt``.

Each line is ``<n_segments> <relpath> [<start> <length> <fake>]×n_segments <binary> <triple>
<16cls>``.  The segment count varies from line to line (zero for whole-video classes of the
training list), so the three labels are taken from the end of the line and the middle must hold
exactly ``3 × n_segments`` integers.

Video classes: 1–8 fake methods, 16–19 real sources (0 is also read as real).  The binary label
must agree with the class, and the 3-way label (0 real, 1 identity-replaced, 2 identity-remained)
must be 0 exactly for real videos.  Paths are relative to the list's folder or to its ``video/``
subfolder (the official archives use both); the reader picks the one that exists.  Entries that
leave the dataset root are skipped (see :func:`~lstmfpga.model.datasets.record.confine`).

A synthetic set made by ``lstmfpga synth-data`` also carries ``synthetic_meta.json`` next to
each list, mapping a video path to its artifact kind; it becomes the ``artifact_kind`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.datasets.record import FAKE, REAL, DatasetListing, ListingBuilder, VideoRecord

#: Split folder name → split.  The official test list has no labels, so it is not read.
SPLIT_FOLDERS = {"Training": "train", "Validation": "val"}
LIST_NAME = "video_list.txt"
SIDECAR_NAME = "synthetic_meta.json"
FAKE_CLASSES = frozenset(range(1, 16))
REAL_CLASSES = frozenset({0, 16, 17, 18, 19})
ARTIFACT_KINDS = ("none", "spatial", "temporal", "both")


def parse_line(line: str) -> tuple[str, int, int, int, tuple[tuple[int, int, int], ...]]:
    """Parse one list line into ``(relpath, binary, triple, cls16, segments)``.

    Raises
    ------
    ValueError
        With the reason, for any malformed line.
    """
    tokens = line.split()
    if len(tokens) < 5:
        raise ValueError(f"expected at least 5 fields, found {len(tokens)}")
    try:
        n_segments = int(tokens[0])
    except ValueError:
        raise ValueError(f"segment count {tokens[0]!r} is not an integer") from None
    if n_segments < 0:
        raise ValueError(f"segment count {n_segments} is negative")
    try:
        binary, triple, cls16 = (int(t) for t in tokens[-3:])
    except ValueError:
        raise ValueError(f"labels {' '.join(tokens[-3:])!r} are not three integers") from None
    segment_tokens = tokens[2:-3]
    if len(segment_tokens) != 3 * n_segments:
        raise ValueError(f"segment count {n_segments} needs {3 * n_segments} segment fields, found {len(segment_tokens)}")
    try:
        values = [int(t) for t in segment_tokens]
    except ValueError:
        raise ValueError(f"segment fields {' '.join(segment_tokens)!r} are not integers") from None
    segments = tuple(tuple(values[i:i + 3]) for i in range(0, len(values), 3))
    for start, length, fake in segments:
        if start < 0 or length < 0 or fake not in (0, 1):
            raise ValueError(f"segment ({start} {length} {fake}) needs start >= 0, length >= 0, fake 0 or 1")
    if binary not in (REAL, FAKE):
        raise ValueError(f"binary label {binary} is not 0 or 1")
    if triple not in (0, 1, 2):
        raise ValueError(f"3-way label {triple} is not 0, 1 or 2")
    if cls16 not in FAKE_CLASSES | REAL_CLASSES:
        raise ValueError(f"16-class label {cls16} is not a ForgeryNet class (1-15 fake, 0 or 16-19 real)")
    if (binary == FAKE) != (cls16 in FAKE_CLASSES):
        raise ValueError(f"binary label {binary} contradicts 16-class label {cls16}")
    if (binary == FAKE) != (triple != 0):
        raise ValueError(f"binary label {binary} contradicts 3-way label {triple}")
    return tokens[1], binary, triple, cls16, segments


def _read_sidecar(path: Path, builder: ListingBuilder) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        kinds = json.loads(path.read_text())
        if not isinstance(kinds, dict):
            raise ValueError("top level is not an object")
    except (OSError, ValueError, RecursionError) as exc:
        builder.skip(str(path), f"unreadable sidecar ignored: {exc}")
        return {}
    return {str(k): str(v) for k, v in kinds.items()}


def _video_path(builder: ListingBuilder, where: str, folder: str, relpath: str) -> str | None:
    """The root-relative path of a list entry (``<folder>/<relpath>`` or ``<folder>/video/<relpath>``,
    whichever exists), or None when the entry leaves the root (the skip is recorded)."""
    direct = builder.confine(where, relpath, base=folder)
    if direct is None:
        return None
    nested = builder.confine(where, relpath, base=f"{folder}/video")
    if nested is None:
        return None
    return nested if not (builder.root / direct).exists() and (builder.root / nested).exists() else direct


def read_forgerynet(root, *, splits: tuple[str, ...] = ("train", "val")) -> DatasetListing:
    """List the videos of a ForgeryNet folder (``Training/`` and/or ``Validation/``).

    Raises
    ------
    InputError
        When ``root`` holds no ``<split>/video_list.txt`` at all.
    """
    root = Path(root)
    builder = ListingBuilder("forgerynet", root)
    found = False
    for folder, split in SPLIT_FOLDERS.items():
        if split not in splits:
            continue
        split_dir = root / folder
        list_path = split_dir / LIST_NAME
        if not list_path.is_file():
            continue
        found = True
        try:
            lines = list_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            builder.skip(str(list_path), f"cannot read the list: {exc}")
            continue
        kinds = _read_sidecar(split_dir / SIDECAR_NAME, builder)
        for number, line in enumerate(lines, start=1):
            where = f"{list_path}:{number}"
            if not line.strip():
                continue
            try:
                relpath, binary, triple, cls16, segments = parse_line(line)
            except ValueError as exc:
                builder.skip(where, str(exc))
                continue
            extra = {"label_3way": triple, "label_16cls": cls16, "n_segments": len(segments)}
            if kinds:
                kind = kinds.get(relpath, "none" if binary == REAL else "")
                if kind not in ARTIFACT_KINDS:
                    builder.skip(where, f"artifact kind {kind!r} of {relpath} in {SIDECAR_NAME} is not one of {ARTIFACT_KINDS}")
                    continue
                extra["artifact_kind"] = kind
            path = _video_path(builder, where, folder, relpath)
            if path is not None:
                builder.add(where, VideoRecord(path, binary, split, extra))
    if not found:
        wanted = ", ".join(f"{f}/{LIST_NAME}" for f, s in SPLIT_FOLDERS.items() if s in splits)
        raise InputError(f"ForgeryNet folder {root} has none of {wanted}")
    return builder.build()
