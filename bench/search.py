"""What the feature cache saves the random search: one trial on cached features vs one trial that
re-extracts the features (decode + ResNet-50) for the same videos.

    .venv/bin/python bench/search.py [--videos 24] [--frames 24] [--epochs 1 10] [--threads 1] [--device cpu]

Measured in this run: a synthetic ForgeryNet-layout dataset is written, its features are extracted
with the project's extractor (``lstmfpga.model.extract_features``, ResNet-50 with random weights:
the cost is the same as with ImageNet weights), then heads of the seed's space are trained on the
cache.  Two ways a search without the cache pays for features, both from the measured extraction
time scaled to the trial's T frames:

- ``once``: the trial extracts its features, then trains on them in memory;
- ``per epoch``: the seed's hybrid CNN-LSTM model (frozen ResNet-50 in the training loop)
  recomputes every frame's features in every epoch.

The last column bounds both ratios from the arithmetic alone: ResNet-50's FLOPs for one frame over
the LSTM's training FLOPs (forward + backward ≈ 3× forward) for one time step.  Per epoch, caching
can save at most about that factor, whatever the hardware; large heads train at a cost close to
ResNet-50's own.  Both sides run on the same number of torch threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

# Configurations from the seed's space: the cheapest, a middle one, the most expensive.
CONFIGS = {
    "small (512 units, 1 layer, T=8, batch 24)": dict(hidden=512, layers=1, frames=8, batch_size=24),
    "middle (1024 units, 2 layers, T=16, batch 16)": dict(hidden=1024, layers=2, frames=16, batch_size=16),
    "large (2048 units, 3 layers, T=24, batch 8)": dict(hidden=2048, layers=3, frames=24, batch_size=8),
}


def _extract(data_dir: Path, cache_dir: Path, *, frames: int, image_size: int, device: str) -> float:
    from lstmfpga.model.datasets import read_dataset
    from lstmfpga.model.extract_features import ExtractionConfig, extract_features

    listing = read_dataset("forgerynet", data_dir)
    config = ExtractionConfig(frames=frames, image_size=image_size, weights="random", workers=0, device=device,
                              batch_videos=4)
    summary = extract_features(listing, cache_dir, config, progress=True)
    return summary.seconds


def resnet50_flops(image_size: int) -> float:
    """Forward FLOPs of torchvision's ResNet-50 for one frame (4.09 GMAC at 224 px, ∝ pixels)."""
    return 2 * 4.09e9 * (image_size / 224) ** 2


def lstm_train_flops(*, input_size: int, hidden: int, layers: int) -> float:
    """Forward + backward FLOPs of a stacked LSTM for one time step of one sequence."""
    forward = sum(2 * 4 * hidden * ((input_size if l == 0 else hidden) + hidden) for l in range(layers))
    return 3 * forward


def _trial_seconds(feature_set, out_dir: Path, *, epochs: int, **config) -> float:
    from lstmfpga.model.train_config import TrainConfig
    from lstmfpga.model.training import train_head

    train_config = TrainConfig(head="lstm", epochs=epochs, patience=epochs, **config)
    started = time.perf_counter()
    train_head(train_config, feature_set, out_dir, log=None, plots=False)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=24, help="synthetic videos (default %(default)s)")
    parser.add_argument("--frames", type=int, default=24, help="T_max extracted per video (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet-50 input side (default %(default)s)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 10], help="epochs per trial (default %(default)s)")
    parser.add_argument("--configs", nargs="+", default=["small", "middle", "large"],
                        choices=["small", "middle", "large"], help="head configurations to time")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (default %(default)s: on a shared machine more "
                             "threads oversubscribe the cores and distort the timings)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    from lstmfpga.model.feature_cache import load_features
    from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

    with tempfile.TemporaryDirectory(prefix="lstmfpga-bench-search-") as tmp:
        tmp = Path(tmp)
        generate_dataset(tmp / "data", SynthConfig(videos=args.videos, frames=max(32, args.frames)), progress=False)
        extract_s = _extract(tmp / "data", tmp / "cache", frames=args.frames, image_size=args.image_size,
                             device=args.device)
        feature_set = load_features(tmp / "cache")
        n_train = int((feature_set.splits == "train").sum())
        print(f"\n{len(feature_set)} videos ({n_train} train), T_max={feature_set.frames}, D={feature_set.dim}, "
              f"torch threads {torch.get_num_threads()}, device {args.device}")
        print(f"feature extraction (decode + ResNet-50, {len(feature_set)} videos x {args.frames} frames): "
              f"{extract_s:.2f} s\n")
        header = (f"{'head config':<46} {'epochs':>6} {'cached s':>9} {'once s':>8} {'ratio':>7} "
                  f"{'per epoch s':>12} {'ratio':>7} {'FLOP bound':>10}")
        print(header)
        print("-" * len(header))
        worst = {"once": None, "per epoch": None}
        for name in args.configs:
            label, config = next((k, v) for k, v in CONFIGS.items() if k.startswith(name))
            if config["frames"] > feature_set.frames:
                print(f"{label:<46} skipped: needs T={config['frames']} > {feature_set.frames}")
                continue
            # Without the cache a trial extracts only the T frames it uses: ResNet-50 cost is per frame.
            extract_t = extract_s * config["frames"] / feature_set.frames
            bound = resnet50_flops(args.image_size) / lstm_train_flops(
                input_size=feature_set.dim, hidden=config["hidden"], layers=config["layers"])
            for epochs in args.epochs:
                cached = _trial_seconds(feature_set, tmp / f"trial-{name}-{epochs}", epochs=epochs, **config)
                once, per_epoch = extract_t + cached, epochs * extract_t + cached
                for key, total in (("once", once), ("per epoch", per_epoch)):
                    worst[key] = min(total / cached, worst[key] or float("inf"))
                print(f"{label:<46} {epochs:>6} {cached:>9.3f} {once:>8.2f} {once / cached:>6.0f}x "
                      f"{per_epoch:>12.2f} {per_epoch / cached:>6.0f}x {bound:>9.0f}x")
        for key, value in worst.items():
            if value is not None:
                print(f"worst ratio, features paid {key}: {value:.0f}x "
                      f"(target >= 100x: {'met' if value >= 100 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
