"""The feature cache: per-video ResNet-50 feature sequences on disk, in resumable chunks.

Layout of a cache folder::

    cache.json                    settings every chunk was made with (frames, dim, backbone, ...)
    chunk-<shard>-<seq>.npz       one chunk of videos: features, labels, ids, splits, extra columns,
                                  the videos of that chunk that were skipped and why, and a copy of
                                  the settings it was made with
    report.json                   what the last extraction run skipped, with reasons

Each chunk carries its settings, so chunks made with different settings are never read (or
resumed) as one cache, even when ``cache.json`` is lost.

Every file is written to a temporary name and moved into place with ``os.replace``, so a killed
run leaves only whole chunks behind.  Shards (``--shard i/N``) write chunks with their own tag;
copying shard folders into one folder (or under it) merges them: :func:`load_features` reads
every chunk below the folder.

NumPy only: the training side reads a cache without torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from lstmfpga.foundation.atomic import atomic_file, atomic_write_bytes
from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.stored_npz import StoredNpz
from lstmfpga.model.datasets.record import SPLITS

CHUNK_GLOB = "chunk-*.npz"
SETTINGS_NAME = "cache.json"
REPORT_NAME = "report.json"
_EXTRA_PREFIX = "extra__"
_SETTINGS_ARRAY = "settings"


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Feature sequences of N videos with their labels.

    Attributes
    ----------
    features : np.ndarray
        float16 ``[N, T, D]`` (D = 2048 for ResNet-50).
    labels : np.ndarray
        int64 ``[N]``, 0 = real, 1 = fake.
    video_ids : tuple of str
        Relative video paths, unique.
    splits : np.ndarray
        str ``[N]``: the dataset's own split, ``'train'``, ``'val'`` or ``'test'``.
    extra : Mapping[str, np.ndarray]
        Per-video columns of length N (``label_3way``, ``label_16cls``, ``artifact_kind``,
        ``padded``, ...).
    """

    features: np.ndarray
    labels: np.ndarray
    video_ids: tuple[str, ...]
    splits: np.ndarray
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        features = np.asarray(self.features)
        if features.ndim != 3:
            raise InputError(f"features must be [N, T, D], not shape {features.shape}")
        n = features.shape[0]
        labels = np.asarray(self.labels)
        if labels.shape != (n,):
            raise InputError(f"labels must have shape ({n},), not {labels.shape}")
        if n and not np.isin(labels, (0, 1)).all():
            raise InputError(f"labels must be 0 (real) or 1 (fake), found {sorted(set(labels.tolist()))}")
        video_ids = tuple(str(v) for v in self.video_ids)
        if len(video_ids) != n:
            raise InputError(f"video_ids has {len(video_ids)} entries for {n} feature rows")
        if len(set(video_ids)) != n:
            raise InputError("video_ids must be unique")
        splits = np.asarray(self.splits).astype(str)
        if splits.shape != (n,):
            raise InputError(f"splits must have shape ({n},), not {splits.shape}")
        bad_splits = sorted(set(splits.tolist()) - set(SPLITS))
        if bad_splits:
            raise InputError(f"splits must be one of {SPLITS}, found {bad_splits}")
        extra = {}
        for name, column in dict(self.extra).items():
            column = np.asarray(column)
            if column.shape[:1] != (n,):
                raise InputError(f"extra column {name!r} must have {n} rows, not shape {column.shape}")
            extra[name] = column
        object.__setattr__(self, "features", features.astype(np.float16, copy=False))
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "video_ids", video_ids)
        object.__setattr__(self, "splits", splits)
        object.__setattr__(self, "extra", MappingProxyType(extra))

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def frames(self) -> int:
        """T, the sequence length."""
        return self.features.shape[1]

    @property
    def dim(self) -> int:
        """D, the feature width."""
        return self.features.shape[2]

    def subset(self, mask_or_indices) -> FeatureSet:
        """The videos selected by a boolean mask of length N or by integer indices."""
        selector = np.asarray(mask_or_indices)
        if selector.dtype == bool:
            if selector.shape != (len(self),):
                raise InputError(f"boolean mask must have shape ({len(self)},), not {selector.shape}")
            indices = np.flatnonzero(selector)
        elif selector.size == 0:
            indices = np.zeros(0, dtype=np.int64)
        elif np.issubdtype(selector.dtype, np.integer):
            indices = selector.reshape(-1)
        else:
            raise InputError(f"subset takes a boolean mask or integer indices, not dtype {selector.dtype}")
        return FeatureSet(
            features=self.features[indices],
            labels=self.labels[indices],
            video_ids=tuple(self.video_ids[i] for i in indices),
            splits=self.splits[indices],
            extra={name: column[indices] for name, column in self.extra.items()},
        )

    def split(self, name: str) -> FeatureSet:
        """The videos of one split (``'train'``, ``'val'``, ``'test'``)."""
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, not {name!r}")
        return self.subset(self.splits == name)


def _chunk_arrays(feature_set: FeatureSet, skipped: Iterable[tuple[str, str]] = ()) -> dict:
    skipped = list(skipped)
    arrays = {
        "features": feature_set.features,
        "labels": feature_set.labels,
        "video_ids": np.array(feature_set.video_ids, dtype=str).reshape(-1),
        "splits": feature_set.splits.astype(str),
        "skipped_ids": np.array([s[0] for s in skipped], dtype=str).reshape(-1),
        "skipped_reasons": np.array([s[1] for s in skipped], dtype=str).reshape(-1),
    }
    for name, column in feature_set.extra.items():
        arrays[_EXTRA_PREFIX + name] = column.astype(str) if column.dtype == object else column
    return arrays


def write_chunk(path: Path, feature_set: FeatureSet, skipped: Iterable[tuple[str, str]] = (), *,
                settings: Mapping | None = None) -> None:
    """Write one chunk atomically: the feature rows, the ``(video_id, reason)`` skips, and the
    ``settings`` it was made with (JSON)."""
    arrays = _chunk_arrays(feature_set, skipped)
    if settings is not None:
        arrays[_SETTINGS_ARRAY] = np.array(json.dumps(dict(settings), sort_keys=True))
    with atomic_file(path) as handle:
        np.savez(handle, **arrays)


def read_settings(cache_dir) -> dict | None:
    """The settings of ``cache.json`` in ``cache_dir``, or None when there is none."""
    path = Path(cache_dir) / SETTINGS_NAME
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"feature cache settings {path} are unreadable: {exc}") from None
    if not isinstance(settings, dict):
        raise InputError(f"feature cache settings {path} are not a JSON object")
    return settings


def chunk_settings(path: Path) -> dict | None:
    """The settings a chunk was made with, or None for a chunk written without them."""
    arrays = _load_chunk_arrays(Path(path), (_SETTINGS_ARRAY,))
    if _SETTINGS_ARRAY not in arrays:
        return None
    try:
        return json.loads(str(arrays[_SETTINGS_ARRAY]))
    except (ValueError, RecursionError) as exc:
        raise InputError(f"feature chunk {path} holds unreadable settings: {exc}") from None


def settings_difference(old: Mapping, new: Mapping) -> str:
    """``"key: <old> vs <new>; ..."`` over the keys of either; empty when they agree."""
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k}: {old.get(k)!r} vs {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


@dataclass(frozen=True)
class Chunk:
    """One chunk file as read back."""

    path: Path
    features: np.ndarray
    labels: np.ndarray
    video_ids: tuple[str, ...]
    splits: np.ndarray
    extra: dict
    skipped: tuple[tuple[str, str], ...]


def _load_chunk_arrays(path: Path, names=None) -> dict:
    """The arrays ``names`` (all when None) of a chunk file that holds every required array.

    Chunks are written uncompressed: a compressed member, or one claiming more bytes than the
    file, is refused before ``np.load`` could inflate it.
    """
    try:
        with StoredNpz(path, error=InputError):
            pass
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            arrays = {name: data[name] for name in (data.files if names is None else names) if name in files}
    except Exception as exc:  # zipfile/ValueError/OSError: all mean a damaged chunk
        raise InputError(f"feature chunk {path} cannot be read: {exc}") from exc
    missing = {"features", "labels", "video_ids", "splits"} - files
    if missing:
        raise InputError(f"feature chunk {path} lacks arrays {sorted(missing)}")
    return arrays


def _skipped(arrays: dict) -> tuple[tuple[str, str], ...]:
    return tuple(zip(arrays.get("skipped_ids", np.zeros(0, str)).tolist(),
                     arrays.get("skipped_reasons", np.zeros(0, str)).tolist()))


def chunk_summary(path: Path) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The number of videos in a chunk and its ``(video_id, reason)`` skips, without reading features."""
    arrays = _load_chunk_arrays(Path(path), ("labels", "skipped_ids", "skipped_reasons"))
    return len(arrays["labels"]), _skipped(arrays)


def read_chunk(path: Path) -> Chunk:
    """Read one chunk file; a damaged file raises :class:`InputError` naming it."""
    path = Path(path)
    arrays = _load_chunk_arrays(path)
    features = arrays["features"]
    if features.ndim != 3:
        raise InputError(f"feature chunk {path} holds features of shape {features.shape}, not [N, T, D]")
    for name in ("labels", "video_ids", "splits"):
        if arrays[name].shape != features.shape[:1]:
            raise InputError(f"feature chunk {path} holds {features.shape[0]} feature rows but {name} of "
                             f"shape {arrays[name].shape}")
    return Chunk(
        path=path,
        features=features,
        labels=arrays["labels"],
        video_ids=tuple(arrays["video_ids"].tolist()),
        splits=arrays["splits"],
        extra={k[len(_EXTRA_PREFIX):]: v for k, v in arrays.items() if k.startswith(_EXTRA_PREFIX)},
        skipped=_skipped(arrays),
    )


def chunk_paths(cache_dir) -> list[Path]:
    """Every chunk file in ``cache_dir`` and below it (merged shard folders), sorted."""
    return sorted(Path(cache_dir).rglob(CHUNK_GLOB))


def _fill_value(dtype: np.dtype):
    if dtype.kind in "US":
        return ""
    if dtype.kind == "b":
        return False
    if dtype.kind == "f":
        return np.nan
    return -1


def load_features(cache_dir, *, expected_dim: int | None = None, expected_t: int | None = None) -> FeatureSet:
    """Read every chunk of a feature cache (all shards) into one :class:`FeatureSet`.

    Rows are ordered by video id, so the result does not depend on how the work was chunked or
    sharded.  A video present in two chunks (two overlapping shards) is kept once when both rows
    are identical.

    Raises
    ------
    InputError
        The folder is missing or holds no chunks, a chunk is damaged, chunks were made with
        different settings (or other settings than ``cache.json``), one video has two different
        rows, chunks disagree on T or D, or T / D differ from ``expected_t`` / ``expected_dim``.
    """
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        raise InputError(f"feature cache {cache_dir} is not a folder")
    paths = chunk_paths(cache_dir)
    if not paths:
        raise InputError(f"feature cache {cache_dir} holds no {CHUNK_GLOB} files")
    _check_same_settings(cache_dir, paths)
    chunks = [read_chunk(p) for p in paths]
    nonempty = [c for c in chunks if c.features.shape[0]]
    if not nonempty:
        raise InputError(f"feature cache {cache_dir} holds no feature rows (every video was skipped)")
    shapes = {c.features.shape[1:] for c in nonempty}
    if len(shapes) > 1:
        detail = ", ".join(f"{c.path.name}: T={c.features.shape[1]} D={c.features.shape[2]}" for c in nonempty)
        raise InputError(f"feature cache {cache_dir} mixes sequence shapes ({detail})")
    t, d = shapes.pop()
    if expected_dim is not None and d != expected_dim:
        raise InputError(f"feature cache {cache_dir} holds D={d} features, expected D={expected_dim}")
    if expected_t is not None and t != expected_t:
        raise InputError(f"feature cache {cache_dir} holds T={t} frames per video, expected T={expected_t}")

    extra_dtypes: dict[str, np.dtype] = {}
    for chunk in nonempty:
        for name, column in chunk.extra.items():
            extra_dtypes.setdefault(name, column.dtype)
    rows: dict[str, tuple[Chunk, int]] = {}
    for chunk in nonempty:
        for i, vid in enumerate(chunk.video_ids):
            first = rows.setdefault(vid, (chunk, i))
            if first[0] is not chunk and not _same_row(first, (chunk, i)):
                raise InputError(f"feature cache {cache_dir}: video {vid} is in {first[0].path} and {chunk.path} "
                                 "with different rows; remove one of the two chunks")
    order = sorted(rows)
    features = np.empty((len(order), t, d), dtype=np.float16)
    labels = np.empty(len(order), dtype=np.int64)
    splits = []
    extra_lists: dict[str, list] = {name: [] for name in extra_dtypes}
    for row, vid in enumerate(order):
        chunk, i = rows[vid]
        features[row] = chunk.features[i]
        labels[row] = chunk.labels[i]
        splits.append(str(chunk.splits[i]))
        for name, dtype in extra_dtypes.items():
            column = chunk.extra.get(name)
            extra_lists[name].append(column[i] if column is not None else _fill_value(dtype))
    extra = {}
    for name, values in extra_lists.items():
        dtype = extra_dtypes[name]
        extra[name] = np.array(values, dtype=str) if dtype.kind in "US" else np.array(values, dtype=dtype)
    return FeatureSet(features=features, labels=labels, video_ids=tuple(order),
                      splits=np.array(splits, dtype=str), extra=extra)


def _check_same_settings(cache_dir: Path, paths: list[Path]) -> None:
    pinned = read_settings(cache_dir)
    reference = (cache_dir / SETTINGS_NAME, pinned) if pinned is not None else None
    for path in paths:
        settings = chunk_settings(path)
        if settings is None:
            continue
        if reference is None:
            reference = (path, settings)
        elif any(settings.get(k) != v for k, v in reference[1].items() if k in settings):
            raise InputError(f"feature cache {cache_dir} mixes settings: {path} differs from {reference[0]} "
                             f"({settings_difference(reference[1], settings)})")


def _same_row(a: tuple[Chunk, int], b: tuple[Chunk, int]) -> bool:
    (ca, i), (cb, j) = a, b
    return (ca.labels[i] == cb.labels[j] and ca.splits[i] == cb.splits[j]
            and np.array_equal(ca.features[i], cb.features[j]))


def save_feature_set(feature_set: FeatureSet, cache_dir) -> None:
    """Write a whole :class:`FeatureSet` as a one-chunk cache in ``cache_dir`` (created if needed).

    For tests and for features computed elsewhere (an ``X.npy`` with labels): the result reads back
    with :func:`load_features`.  Replaces an earlier ``save_feature_set`` chunk in that folder.
    """
    if not isinstance(feature_set, FeatureSet):
        raise InputError(f"save_feature_set takes a FeatureSet, not {type(feature_set).__name__}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = {"frames": feature_set.frames, "dim": feature_set.dim, "source": "save_feature_set"}
    write_chunk(cache_dir / "chunk-saved-000000.npz", feature_set, settings=settings)
    atomic_write_bytes(cache_dir / SETTINGS_NAME, json.dumps(settings, indent=2).encode())
