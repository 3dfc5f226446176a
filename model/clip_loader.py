"""Decode-and-crop work items for the feature extractor, as a torch Dataset run by DataLoader workers.

Each item is one video; a batch is a list of items of one cache chunk.  A video that cannot be
used comes back with the reason instead of frames, so the job skips it and goes on.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmfpga.foundation.process_lifetime import die_with_parent
from lstmfpga.model.face_crop import FaceCropper, centre_crop
from lstmfpga.model.frames import decode_clip


@dataclass(frozen=True)
class WorkItem:
    chunk: int
    video_id: str
    path: Path


@dataclass(frozen=True, eq=False)
class ClipResult:
    """Cropped frames of one video (uint8 ``[T, S, S, 3]``) or the reason it was skipped."""

    item: WorkItem
    frames: np.ndarray | None
    reason: str = ""
    source_frames: int = 0
    padded: bool = False
    face_frames: int = -1


def load_clip(item: WorkItem, *, frames: int, image_size: int, face_crop: bool) -> ClipResult:
    """Decode, sample and crop one video; any failure becomes a skip reason."""
    try:
        clip = decode_clip(item.path, frames)
        if face_crop:
            crops, face_frames = FaceCropper(size=image_size)(clip.frames)
        else:
            crops, face_frames = centre_crop(clip.frames, image_size), -1
    except Exception as exc:  # a batch job skips and reports: any failure of one video is its reason
        message = str(exc) if str(item.path) in str(exc) else f"video {item.path}: {exc}"
        return ClipResult(item, None, reason=f"{type(exc).__name__}: {message}")
    return ClipResult(item, crops, source_frames=clip.source_frames, padded=clip.padded, face_frames=face_frames)


class ClipDataset:
    """Map-style dataset of :class:`WorkItem` s (a torch ``Dataset`` by protocol)."""

    def __init__(self, items: list[WorkItem], *, frames: int, image_size: int, face_crop: bool):
        self.items = items
        self.frames = frames
        self.image_size = image_size
        self.face_crop = face_crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ClipResult:
        return load_clip(self.items[index], frames=self.frames, image_size=self.image_size, face_crop=self.face_crop)


def chunk_batches(items: list[WorkItem], batch_videos: int) -> list[list[int]]:
    """Index batches of at most ``batch_videos`` that never cross a chunk boundary.

    Batches are fixed by the chunk alone, so a resumed run computes every chunk with the same
    batch shapes as an uninterrupted one (and gets bit-identical features).
    """
    batches: list[list[int]] = []
    for index, item in enumerate(items):
        if batches and items[batches[-1][0]].chunk == item.chunk and len(batches[-1]) < batch_videos:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _worker_init(_worker_id: int, *, parent: int) -> None:
    import cv2
    import torch

    die_with_parent(parent)
    # Workers only decode and crop: one thread each, the cores stay with the backbone.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def make_loader(dataset: ClipDataset, batches: list[list[int]], *, workers: int, pin_memory: bool = False):
    """A DataLoader yielding lists of :class:`ClipResult`, decoding ``workers`` videos ahead."""
    import multiprocessing

    from torch.utils.data import DataLoader

    # Spawned, not forked: a fork inherits OpenCV's and OpenMP's thread pools mid-state, and a
    # worker that resizes after its parent did can hang for ever.
    context = multiprocessing.get_context("spawn") if workers else None
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=list,
        worker_init_fn=functools.partial(_worker_init, parent=os.getpid()) if workers else None,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
        pin_memory=pin_memory,
        multiprocessing_context=context,
    )
