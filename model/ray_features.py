"""``lstmfpga features --engine ray``: the same feature cache, filled by a Ray Data pipeline.

Decoding, sampling and cropping run as Ray tasks on CPUs; ResNet-50 runs in a pool of actors
(on GPUs when ``gpus_per_worker > 0``, with the local engine's bf16 autocast and channels_last).
Each Ray row is one backbone batch of the local engine (:func:`~lstmfpga.model.clip_loader.chunk_batches`),
so both engines feed the backbone the same batches; the driver collects the encoded batches and
writes each chunk atomically as soon as all of its videos are in, with the local engine's
:class:`~lstmfpga.model.extract_features.ChunkWriter`.  A killed run loses only the chunks in
flight; a rerun skips the chunks on disk.

Without an address a local Ray instance is started (and stopped at the end); with ``auto`` or
``ray://host:port`` the run joins a cluster.  On a cluster every node needs ``lstmfpga``
installed and the videos under the same path as the driver sees them; the cache is written by
the driver.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import re
import sys
import time
from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import ConfigError, LstmfpgaError
from lstmfpga.foundation.validation import is_finite_number, is_integer
from lstmfpga.model.extract_features import (ChunkWriter, ExtractionConfig, ExtractionSummary,
                                             encode_batch, plan_extraction)
from lstmfpga.model.extraction_progress import ProgressLine


@dataclass(frozen=True)
class RayOptions:
    """Where and how the Ray engine runs.

    Parameters
    ----------
    address : str or None
        ``None``: start a local Ray instance; ``'auto'`` or ``'ray://host:port'``: join a cluster.
    gpus_per_worker : float
        GPUs per backbone actor (0: actors run on CPUs; 0.5: two actors share a GPU).
    cpus_per_worker : int
        CPUs per backbone actor, and its torch threads.
    encoders : int or None
        Backbone actors (default: as many as the cluster's GPUs, or its CPUs less one for
        decoding, allow).
    local_cpus : int or None
        CPUs of a local instance (default: all of this machine's).
    """

    address: str | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: int = 1
    encoders: int | None = None
    local_cpus: int | None = None

    def __post_init__(self):
        g = self.gpus_per_worker
        if not is_finite_number(g) or g < 0:
            raise ConfigError(f"gpus per worker must be a non-negative number, not {g!r}")
        if not is_integer(self.cpus_per_worker, numpy=True) or self.cpus_per_worker < 1:
            raise ConfigError(f"cpus per worker must be a positive integer, not {self.cpus_per_worker!r}")
        if self.encoders is not None and (not is_integer(self.encoders, numpy=True) or self.encoders < 1):
            raise ConfigError(f"encoders must be a positive integer, not {self.encoders!r}")
        if self.local_cpus is not None and (not is_integer(self.local_cpus, numpy=True) or self.local_cpus < 2):
            raise ConfigError(f"local Ray CPUs must be an integer >= 2 (one decodes, one encodes), "
                              f"not {self.local_cpus!r}")
        if self.address is not None and self.local_cpus is not None:
            raise ConfigError("local Ray CPUs apply to a local instance only, not with an address")

    @property
    def device(self) -> str:
        return "cuda" if self.gpus_per_worker > 0 else "cpu"


def _decode_row(row: dict, *, frames: int, image_size: int, face_crop: bool) -> dict:
    """Ray task: one backbone batch of work items → their clip results (frames or skip reasons)."""
    import cv2

    from lstmfpga.model.clip_loader import load_clip

    cv2.setNumThreads(1)  # a decoding task holds one CPU
    items = pickle.loads(row["items"])
    results = [load_clip(item, frames=frames, image_size=image_size, face_crop=face_crop) for item in items]
    return {"batch": row["batch"], "clips": pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)}


def _decode_memory(config: ExtractionConfig) -> int:
    """Bytes one decoding task holds at most: one video's sampled frames at up to 1080p (videos are
    cropped one by one) and the batch's crops twice (the result is pickled once), plus the decoder."""
    full_frames = config.frames * 1920 * 1080 * 3
    crops = config.batch_videos * config.frames * config.image_size ** 2 * 3
    return full_frames + 2 * crops + (64 << 20)


class _Encoder:
    """Ray actor: ResNet-50 over one decoded batch; returns the features and the frame-less results."""

    def __init__(self, *, weights: str, seed: int, frames: int, device: str, threads: int):
        import torch

        from lstmfpga.model.backbone import FrameEncoder

        torch.set_num_threads(threads)
        self.frames = frames
        self.encoder = FrameEncoder(weights=weights, device=device, seed=seed)

    def __call__(self, batch: dict) -> dict:
        encoded = []
        for clips in batch["clips"]:
            results = pickle.loads(clips)
            features = encode_batch(self.encoder, results, self.frames)
            # The frames stay here; an empty array (not None) still marks a usable video.
            light = [r if r.frames is None else dataclasses.replace(r, frames=r.frames[:0]) for r in results]
            encoded.append(pickle.dumps((light, features), protocol=pickle.HIGHEST_PROTOCOL))
        return {"batch": np.asarray(batch["batch"]), "encoded": np.array(encoded, dtype=object)}


def _connect(options: RayOptions):
    """``ray.init`` as asked; returns ``(ray, started_here)``."""
    import ray

    if ray.is_initialized():
        return ray, False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if options.address is None:
            ray.init(num_cpus=options.local_cpus, **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "a local instance"
        raise ConfigError(f"Ray cannot start or reach {where}: {str(exc).splitlines()[0]}") from None
    return ray, True


_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): (.+)$")


def _first_cause(exc: Exception) -> str:
    """The user-code exception a Ray error carries in its text (Ray keeps the traceback as text)."""
    for line in str(exc).splitlines():
        match = _EXCEPTION_LINE.match(line)
        if match and not match.group(1).startswith("ray."):
            return f"{match.group(1)}: {match.group(2)}"
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"


def _encoder_count(resources: dict, options: RayOptions) -> int:
    """Backbone actors the cluster's resources allow; refuses a pipeline that could never run."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if options.gpus_per_worker > 0:
        fit = int(gpus / options.gpus_per_worker + 1e-9)
        if fit < 1:
            raise ConfigError(f"--gpus-per-worker {options.gpus_per_worker:g} needs a GPU, and the Ray "
                              f"cluster has {gpus:g} GPUs")
    else:
        fit = int(cpus - 1) // options.cpus_per_worker
    encoders = options.encoders or fit
    need = encoders * options.cpus_per_worker + 1
    if encoders > max(fit, 0) or need > cpus:
        raise ConfigError(f"{encoders} backbone workers of {options.cpus_per_worker} CPUs"
                          + (f" and {options.gpus_per_worker:g} GPUs" if options.gpus_per_worker else "")
                          + f" plus one decoding CPU do not fit the Ray cluster ({cpus:g} CPUs, {gpus:g} GPUs)")
    return encoders


def extract_features_ray(listing, cache_dir, config: ExtractionConfig, options: RayOptions = RayOptions(), *,
                         progress: bool = True, progress_interval: float = 10.0) -> ExtractionSummary:
    """Fill ``cache_dir`` with this shard's missing chunks of ``listing`` on Ray; return what happened.

    The cache is the local engine's, chunk for chunk: same files, settings and skip reasons.
    ``config.workers`` and ``config.device`` are the local engine's; here Ray schedules the
    decoding and ``options`` places the backbone.

    Raises
    ------
    ConfigError
        Ray cannot start or be reached, or the cluster cannot hold the asked-for workers.
    LstmfpgaError
        The pipeline failed past Ray's retries (the chunks written before stay).
    """
    started = time.perf_counter()
    job = plan_extraction(listing, cache_dir, config)
    if not job.items:
        job.summary.seconds = time.perf_counter() - started
        return job.summary

    ray, started_here = _connect(options)
    try:
        from ray.data import ActorPoolStrategy, DataContext

        encoders = _encoder_count(ray.cluster_resources(), options)
        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"batch": i, "items": pickle.dumps([job.items[j] for j in batch])}
                for i, batch in enumerate(job.batches)]
        dataset = (
            ray.data.from_items(rows, override_num_blocks=len(rows))
            # Decoding reserves its memory; remote arguments unlike the actors' also keep Ray from
            # fusing decoding into the backbone actors, where it would not overlap with them.
            .map(_decode_row, num_cpus=1, memory=_decode_memory(config),
                 fn_kwargs={"frames": config.frames, "image_size": config.image_size, "face_crop": config.face_crop})
            .map_batches(_Encoder, batch_size=1, batch_format="numpy", compute=ActorPoolStrategy(size=encoders),
                         num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None,
                         fn_constructor_kwargs={"weights": config.weights, "seed": config.seed,
                                                "frames": config.frames, "device": options.device,
                                                "threads": options.cpus_per_worker})
        )
        writer = ChunkWriter(job)
        line = ProgressLine(total=len(job.items), frames=config.frames, interval=progress_interval,
                            stream=sys.stderr if progress else None)
        try:
            for row in dataset.iter_rows():
                results, features = pickle.loads(row["encoded"])
                writer.add(int(row["batch"]), results, features)
                line.update(len(results), sum(r.frames is None for r in results))
        except ray.exceptions.RayError as exc:
            raise LstmfpgaError(f"the Ray feature pipeline failed ({_first_cause(exc)}); finished chunks are "
                                "kept, rerun to continue") from None
        line.close()
    finally:
        if started_here:
            ray.shutdown()
    job.summary.seconds = time.perf_counter() - started
    return job.summary


def options_from_args(args) -> RayOptions:
    """:class:`RayOptions` from ``lstmfpga features`` arguments; ``--device`` and GPUs must agree."""
    gpus = args.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if args.device == "cuda" else 0.0
    elif args.device == "cpu" and gpus > 0:
        raise ConfigError(f"--gpus-per-worker {gpus:g} puts the backbone on GPUs: add --device cuda")
    elif args.device == "cuda" and gpus == 0:
        raise ConfigError("--device cuda with --gpus-per-worker 0: give the backbone actors a GPU share")
    return RayOptions(address=args.address, gpus_per_worker=gpus, cpus_per_worker=args.cpus_per_worker,
                      encoders=args.encoders, local_cpus=args.ray_cpus)
