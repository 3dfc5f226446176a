"""Feature-extraction throughput: decode, crop, ResNet-50, and the whole pipeline, in frames per second.

Runs on a freshly generated synthetic set (ForgeryNet layout).  Every row is measured in this
run; the ratio column compares with the serial pipeline (decode, crop and ResNet-50 one after
the other in one process, ``--workers 0``), the baseline.  The Ray engine runs on a local Ray
instance started before the clock starts (its actors' start-up, like the local engine's model
build, is timed): decoding as Ray tasks, ResNet-50 in actors of one CPU each, or of one GPU.

    .venv/bin/python bench/features.py [--videos 8] [--frames 16] [--image-size 224] [--device cpu|cuda|all]
                                       [--no-ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _ray_rows(listing, tmp: Path, args, devices, n_frames: int) -> list:
    """The Ray engine on a local instance of every core, per device."""
    import os

    import ray

    from lstmfpga.model.extract_features import ExtractionConfig
    from lstmfpga.model.ray_features import RayOptions, extract_features_ray

    rows = []
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        for device in devices:
            options = RayOptions(gpus_per_worker=1.0) if device == "cuda" else RayOptions(cpus_per_worker=1)
            config = ExtractionConfig(frames=args.frames, image_size=args.image_size, batch_videos=args.batch,
                                      device=device, chunk_videos=args.videos)
            _, seconds = _timed(lambda: extract_features_ray(listing, tmp / f"cache-ray-{device}", config, options,
                                                             progress=False))
            actors = "1 GPU actor" if device == "cuda" else f"{os.cpu_count() - 1} actor(s) of 1 CPU"
            rows.append((f"ray engine, {actors} + decode tasks", device, n_frames, seconds))
    finally:
        ray.shutdown()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16, help="T sampled per video")
    parser.add_argument("--source-frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--source-size", type=int, default=112, help="synthetic frame side")
    parser.add_argument("--image-size", type=int, default=224, help="crop side fed to ResNet-50")
    parser.add_argument("--batch", type=int, default=4, help="videos per batch")
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument("--no-ray", dest="ray", action="store_false", help="leave the Ray engine out")
    args = parser.parse_args(argv)

    import torch

    from lstmfpga.model.backbone import FrameEncoder
    from lstmfpga.model.datasets import read_dataset
    from lstmfpga.model.extract_features import ExtractionConfig, extract_features
    from lstmfpga.model.face_crop import FaceCropper, centre_crop
    from lstmfpga.model.frames import decode_clip
    from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_dataset(tmp / "data", SynthConfig(videos=args.videos, frames=args.source_frames, size=args.source_size),
                         progress=False)
        listing = read_dataset("forgerynet", tmp / "data")
        paths = [listing.resolve(r) for r in listing.records]
        n_frames = len(paths) * args.frames

        clips, seconds = _timed(lambda: [decode_clip(p, args.frames).frames for p in paths])
        rows.append(("decode + sample (PyAV)", "cpu", n_frames, seconds))
        _, seconds = _timed(lambda: [centre_crop(c, args.image_size) for c in clips])
        rows.append(("centre crop + resize", "cpu", n_frames, seconds))
        cropper = FaceCropper(size=args.image_size)
        _, seconds = _timed(lambda: [cropper(c) for c in clips])
        rows.append(("face crop (Haar) + resize", "cpu", n_frames, seconds))
        crops = np.concatenate([centre_crop(c, args.image_size) for c in clips])

        for device in devices:
            encoder = FrameEncoder(weights="random", device=device)
            batch = args.batch * args.frames
            encoder(crops[:batch])  # warm-up: allocator, cuDNN autotune, oneDNN primitives
            if device == "cuda":
                torch.cuda.synchronize()
            _, seconds = _timed(lambda: [encoder(crops[i:i + batch]) for i in range(0, len(crops), batch)])
            rows.append((f"ResNet-50 {args.image_size}px, batch {batch}", device, n_frames, seconds))
            for workers in (0, 1, 2):
                config = ExtractionConfig(frames=args.frames, image_size=args.image_size, batch_videos=args.batch,
                                          workers=workers, device=device, chunk_videos=args.videos)
                _, seconds = _timed(lambda: extract_features(listing, tmp / f"cache-{device}-{workers}", config,
                                                             progress=False))
                rows.append((f"pipeline, {workers} decode workers", device, n_frames, seconds))
        if args.ray:
            rows += _ray_rows(listing, tmp, args, devices, n_frames)

    baseline = {device: next(r for r in rows if r[1] == device and r[0].startswith("pipeline, 0")) for device in devices}
    print(f"feature extraction: {args.videos} videos x {args.frames} frames, "
          f"{args.source_size}px source, {args.image_size}px crops, torch threads {torch.get_num_threads()}")
    print(f"{'stage':44s} {'device':6s} {'frames':>6s} {'seconds':>8s} {'frames/s':>9s} {'vs serial':>9s}")
    for name, device, frames, seconds in rows:
        base = baseline[device if device in baseline else "cpu"]
        ratio = (frames / seconds) / (base[2] / base[3])
        print(f"{name:44s} {device:6s} {frames:6d} {seconds:8.2f} {frames / seconds:9.1f} {ratio:8.2f}x")
    for device in devices:
        rates = [(name, frames / seconds) for name, d, frames, seconds in rows if d == device]
        local = max(rate for name, rate in rates if name.startswith("pipeline"))
        for name, rate in rates:
            if name.startswith("ray engine"):
                print(f"{device}: ray engine {rate:.1f} frames/s vs the best local pipeline {local:.1f} frames/s: "
                      f"{rate / local:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
