"""``lstmfpga features``: decode, sample, crop, ResNet-50, and a resumable, shardable feature cache.

The dataset's videos, sorted by path, are cut into fixed chunks of ``chunk_videos``; chunk ``k``
is written once, atomically, as ``chunk-<k>.npz`` (rows of the videos that worked, reasons for
those that did not).  A rerun with the same settings skips the chunks already on disk, so a
killed run continues where it stopped with nothing lost or duplicated.  ``--shard i/N`` takes the
chunks with ``k % N == i``; shards write distinct files, so running them into one folder (or
copying their folders together) merges them.  ``cache.json`` pins the settings and a fingerprint
of the video list, and a rerun with other settings is refused instead of mixing features.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmfpga.foundation.atomic import atomic_write_bytes
from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.validation import is_integer
from lstmfpga.model.backbone import FEATURE_DIM
from lstmfpga.model.datasets import DatasetListing, VideoRecord, read_dataset
from lstmfpga.model.feature_cache import (
    CHUNK_GLOB,
    REPORT_NAME,
    SETTINGS_NAME,
    FeatureSet,
    chunk_paths,
    chunk_settings,
    chunk_summary,
    read_settings,
    write_chunk,
)

CACHE_FORMAT = 1


@dataclass(frozen=True)
class ExtractionConfig:
    """Settings of one feature extraction.

    Parameters
    ----------
    frames : int
        T, frames sampled per video (the search uses 8, 16, 24).
    image_size : int
        Side of the square crop fed to ResNet-50 (224 is its native size).
    face_crop : bool
        Crop the detected face (Haar cascade) instead of the frame centre.
    weights : str
        ``'random'``, ``'imagenet'`` or a state-dict path.
    seed : int
        Seed of the random backbone.
    batch_videos : int
        Videos per forward pass (``batch_videos × frames`` images).
    workers : int
        DataLoader processes decoding ahead of the backbone (0: decode in this process).
    device : str
        ``'cpu'`` or ``'cuda'``.
    chunk_videos : int
        Videos per cache chunk: the unit of resumption.
    shard : tuple of int
        ``(i, n)``: this run does chunks ``k`` with ``k % n == i``.
    """

    frames: int = 16
    image_size: int = 224
    face_crop: bool = False
    weights: str = "random"
    seed: int = 0
    batch_videos: int = 4
    workers: int = 1
    device: str = "cpu"
    chunk_videos: int = 32
    shard: tuple[int, int] = (0, 1)

    def __post_init__(self):
        if not is_integer(self.frames, numpy=True) or self.frames < 1:
            raise ConfigError(f"frames must be a positive integer, not {self.frames!r}")
        if not is_integer(self.image_size, numpy=True) or self.image_size < 32:
            raise ConfigError(f"image size must be an integer >= 32, not {self.image_size!r}")
        if not is_integer(self.seed, numpy=True) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, not {self.seed!r}")
        if not is_integer(self.batch_videos, numpy=True) or self.batch_videos < 1:
            raise ConfigError(f"batch must be a positive integer, not {self.batch_videos!r}")
        if not is_integer(self.workers, numpy=True) or self.workers < 0:
            raise ConfigError(f"workers must be a non-negative integer, not {self.workers!r}")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be 'cpu' or 'cuda', not {self.device!r}")
        if not is_integer(self.chunk_videos, numpy=True) or self.chunk_videos < 1:
            raise ConfigError(f"chunk size must be a positive integer, not {self.chunk_videos!r}")
        i, n = self.shard
        if not (is_integer(i, numpy=True) and is_integer(n, numpy=True) and n >= 1 and 0 <= i < n):
            raise ConfigError(f"shard must be i/N with 0 <= i < N, not {i}/{n}")

    def cache_settings(self, listing: DatasetListing, records: list[VideoRecord]) -> dict:
        """What must be equal for two runs to share a cache folder."""
        weights = self.weights if self.weights in ("random", "imagenet") else f"file:{_file_digest(Path(self.weights))}"
        return {
            "format": CACHE_FORMAT,
            "dataset": listing.name,
            "videos": len(records),
            "list_sha256": _listing_digest(records),
            "frames": self.frames,
            "dim": FEATURE_DIM,
            "image_size": self.image_size,
            "face_crop": self.face_crop,
            "weights": weights,
            "seed": self.seed if self.weights == "random" else None,
            "chunk_videos": self.chunk_videos,
        }


def parse_shard(text: str) -> tuple[int, int]:
    """``'i/N'`` → ``(i, N)``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like i/N (e.g. 0/4), not {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"shard must be i/N with 0 <= i < N, not {text!r}")
    return i, n


def _file_digest(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"backbone weights {path} do not exist (use random, imagenet or a file path)")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _listing_digest(records: list[VideoRecord]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.path}\t{r.label}\t{r.split}\n".encode())
    return digest.hexdigest()


def _differing(existing: dict, settings: dict, holder: str) -> str:
    return "; ".join(f"{k}: {holder} has {existing.get(k)!r}, this run {v!r}"
                     for k, v in settings.items() if existing.get(k) != v)


def _check_settings(cache_dir: Path, settings: dict) -> None:
    """Refuse a cache made with other settings: ``cache.json`` and every chunk (each carries its
    own), so a lost ``cache.json`` cannot let a rerun mix settings."""
    existing = read_settings(cache_dir)
    detail = _differing(existing, settings, "cache") if existing is not None else ""
    if detail:
        raise ConfigError(f"feature cache {cache_dir} was made with other settings ({detail}); "
                          "use another --out folder or the same settings")
    for path in chunk_paths(cache_dir):
        made_with = chunk_settings(path)
        if made_with is None:
            raise ConfigError(f"feature cache {cache_dir} holds chunk {path} written without its settings; "
                              "use another --out folder")
        detail = _differing(made_with, settings, "chunk")
        if detail:
            raise ConfigError(f"feature cache {cache_dir} holds chunk {path} made with other settings "
                              f"({detail}); use another --out folder or the same settings")
    if existing is None:
        atomic_write_bytes(cache_dir / SETTINGS_NAME, json.dumps(settings, indent=2, sort_keys=True).encode())


def chunk_name(k: int) -> str:
    return f"chunk-{k:06d}.npz"


@dataclass
class ExtractionSummary:
    videos: int
    extracted_now: int = 0
    extracted_before: int = 0
    skipped: list = field(default_factory=list)
    list_problems: list = field(default_factory=list)
    other_shards: int = 0
    seconds: float = 0.0

    @property
    def extracted(self) -> int:
        return self.extracted_now + self.extracted_before


def _records_columns(results, records_by_id: dict[str, VideoRecord]) -> dict:
    keys = sorted({k for r in results for k in records_by_id[r.item.video_id].extra})
    columns = {}
    for key in keys:
        values = [records_by_id[r.item.video_id].extra.get(key) for r in results]
        if all(is_integer(v, numpy=True) for v in values):
            columns[key] = np.array(values, dtype=np.int64)
        else:
            columns[key] = np.array(["" if v is None else str(v) for v in values], dtype=str)
    columns["padded"] = np.array([r.padded for r in results], dtype=bool)
    columns["source_frames"] = np.array([r.source_frames for r in results], dtype=np.int64)
    columns["face_frames"] = np.array([r.face_frames for r in results], dtype=np.int64)
    return columns


def _write_chunk(path: Path, results, features, records_by_id, t: int) -> None:
    good = [r for r in results if r.frames is not None]
    feature_set = FeatureSet(
        features=np.stack(features) if features else np.zeros((0, t, FEATURE_DIM), np.float16),
        labels=np.array([records_by_id[r.item.video_id].label for r in good], dtype=np.int64),
        video_ids=tuple(r.item.video_id for r in good),
        splits=np.array([records_by_id[r.item.video_id].split for r in good], dtype=str),
        extra=_records_columns(good, records_by_id),
    )
    write_chunk(path, feature_set, skipped=[(r.item.video_id, r.reason) for r in results if r.frames is None],
                settings=read_settings(path.parent))


def write_report(cache_dir: Path, listing: DatasetListing, summary: ExtractionSummary) -> tuple[Path, dict]:
    """Write ``report.json`` (counts, skipped videos with reasons, skipped list entries); return
    its path and content."""
    skipped = []
    for path in chunk_paths(cache_dir):
        try:
            skipped.extend({"video": v, "reason": r} for v, r in chunk_summary(path)[1])
        except InputError as exc:
            skipped.append({"video": str(path), "reason": str(exc)})
    report = {
        "dataset": listing.name,
        "root": str(listing.root),
        "videos_listed": summary.videos,
        "extracted_this_run": summary.extracted_now,
        "extracted_before": summary.extracted_before,
        "skipped_videos": skipped,
        "skipped_list_entries": [{"where": p.where, "reason": p.reason} for p in listing.problems],
        "seconds": round(summary.seconds, 3),
    }
    path = cache_dir / REPORT_NAME
    atomic_write_bytes(path, json.dumps(report, indent=2).encode())
    return path, report


@dataclass
class ExtractionJob:
    """What one run must still extract: the missing chunks' videos, cut into backbone batches.

    Attributes
    ----------
    cache_dir : Path
    config : ExtractionConfig
    records_by_id : dict
        Every listed record by video id (its relative path).
    items : list of WorkItem
        The videos of this shard's missing chunks, in chunk order.
    batches : list of list of int
        Indices into ``items``, from :func:`~lstmfpga.model.clip_loader.chunk_batches`: every
        engine feeds the backbone exactly these batches, so every engine computes the same bits.
    summary : ExtractionSummary
    """

    cache_dir: Path
    config: ExtractionConfig
    records_by_id: dict
    items: list
    batches: list
    summary: ExtractionSummary


def plan_extraction(listing: DatasetListing, cache_dir, config: ExtractionConfig) -> ExtractionJob:
    """Check (or pin) the cache's settings and list this shard's chunks that are not on disk yet."""
    from lstmfpga.model.clip_loader import WorkItem, chunk_batches

    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"feature cache folder {cache_dir} cannot be created: {exc}") from None
    records = sorted(listing.records, key=lambda r: r.path)
    records_by_id = {r.path: r for r in records}
    _check_settings(cache_dir, config.cache_settings(listing, records))
    summary = ExtractionSummary(videos=len(records), list_problems=list(listing.problems))

    n_chunks = -(-len(records) // config.chunk_videos)
    shard_i, shard_n = config.shard
    mine = [k for k in range(n_chunks) if k % shard_n == shard_i]
    present = {p.name for p in cache_dir.glob(CHUNK_GLOB)}
    items = []
    for k in mine:
        chunk_records = records[k * config.chunk_videos:(k + 1) * config.chunk_videos]
        if chunk_name(k) in present:
            summary.extracted_before += chunk_summary(cache_dir / chunk_name(k))[0]
            continue
        items += [WorkItem(k, r.path, listing.resolve(r)) for r in chunk_records]
    return ExtractionJob(cache_dir, config, records_by_id, items, chunk_batches(items, config.batch_videos), summary)


def encode_batch(encoder, batch, frames: int) -> list[np.ndarray]:
    """float16 ``[T, 2048]`` features of the usable videos of one batch of ``ClipResult`` s, in order."""
    good = [r for r in batch if r.frames is not None]
    if not good:
        return []
    stacked = np.concatenate([r.frames for r in good])
    return list(encoder(stacked).reshape(len(good), frames, -1).astype(np.float16))


class ChunkWriter:
    """Collects encoded batches, in any order, and writes each chunk once all its videos are in.

    Rows are written in batch order whatever order the batches arrived in, so an engine that
    finishes batches out of order writes the same chunk as one that does not.
    """

    def __init__(self, job: ExtractionJob):
        self.job = job
        self._chunk_of = [job.items[b[0]].chunk for b in job.batches]
        self._missing: dict[int, int] = {}
        for chunk in self._chunk_of:
            self._missing[chunk] = self._missing.get(chunk, 0) + 1
        self._pending: dict[int, dict[int, tuple[list, list]]] = {}

    def add(self, batch_index: int, results, features) -> None:
        """Take batch ``batch_index``'s clip results and the features of its usable videos."""
        k = self._chunk_of[batch_index]
        self._pending.setdefault(k, {})[batch_index] = (list(results), list(features))
        self._missing[k] -= 1
        if self._missing[k]:
            return
        batches = self._pending.pop(k)
        parts = [batches[i] for i in sorted(batches)]
        chunk_results = [r for part in parts for r in part[0]]
        chunk_features = [f for part in parts for f in part[1]]
        _write_chunk(self.job.cache_dir / chunk_name(k), chunk_results, chunk_features, self.job.records_by_id,
                     self.job.config.frames)
        self.job.summary.extracted_now += len(chunk_features)
        self.job.summary.skipped.extend(r for r in chunk_results if r.frames is None)


def extract_features(listing: DatasetListing, cache_dir, config: ExtractionConfig, *, progress: bool = True) -> ExtractionSummary:
    """Fill ``cache_dir`` with this shard's missing chunks of ``listing``; return what happened."""
    from tqdm import tqdm

    from lstmfpga.model.backbone import FrameEncoder
    from lstmfpga.model.clip_loader import ClipDataset, make_loader

    started = time.perf_counter()
    job = plan_extraction(listing, cache_dir, config)
    if job.items:
        encoder = FrameEncoder(weights=config.weights, device=config.device, seed=config.seed)
        dataset = ClipDataset(job.items, frames=config.frames, image_size=config.image_size, face_crop=config.face_crop)
        writer = ChunkWriter(job)
        loader = make_loader(dataset, job.batches, workers=config.workers, pin_memory=config.device == "cuda")
        with tqdm(total=len(job.items), desc="features", unit="video", disable=not progress) as bar:
            for index, batch in enumerate(loader):
                writer.add(index, batch, encode_batch(encoder, batch, config.frames))
                bar.update(len(batch))
    job.summary.seconds = time.perf_counter() - started
    return job.summary


def run_features(args) -> int:
    """Handler of ``lstmfpga features``."""
    options = {}
    if args.dataset == "ffpp":
        options = {"methods": tuple(args.ffpp_methods.split(",")), "compression": args.ffpp_compression}
    data = Path(args.data)
    if not data.exists():
        raise InputError(f"dataset folder {data} does not exist")
    listing = read_dataset(args.dataset, data, **options)
    config = ExtractionConfig(
        frames=args.frames, image_size=args.image_size, face_crop=args.face_crop, weights=args.backbone_weights,
        seed=args.seed, batch_videos=args.batch, workers=args.workers, device=args.device,
        chunk_videos=args.chunk_videos, shard=parse_shard(args.shard),
    )
    if args.engine == "ray":
        from lstmfpga.model.ray_features import extract_features_ray, options_from_args

        summary = extract_features_ray(listing, args.out, config, options_from_args(args), progress=not args.quiet)
    else:
        summary = extract_features(listing, args.out, config, progress=not args.quiet)
    report_path, report = write_report(Path(args.out), listing, summary)
    shard = "" if config.shard == (0, 1) else f" (shard {config.shard[0]}/{config.shard[1]})"
    print(f"features{shard}: {summary.videos} videos listed; {summary.extracted} extracted "
          f"({summary.extracted_now} this run, {summary.extracted_before} before); "
          f"{len(report['skipped_videos'])} videos skipped; {len(listing.problems)} list entries skipped; "
          f"{summary.seconds:.1f} s; reasons in {report_path}")
    for problem in (summary.skipped + list(listing.problems))[:10]:
        text = f"{problem.item.video_id}: {problem.reason}" if hasattr(problem, "item") else str(problem)
        print(f"  skipped {text}", file=sys.stderr)
    return 0

