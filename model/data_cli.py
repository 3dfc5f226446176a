"""``lstmfpga synth-data`` and ``lstmfpga features``: argparse and the dataset names (standard library
only); the work is imported in the handlers."""

from __future__ import annotations

import argparse

from lstmfpga.model.datasets import READERS, ffpp

DATASETS = tuple(sorted(READERS))


def _synth_data(args) -> int:
    from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

    config = SynthConfig(videos=args.videos, frames=args.frames, size=args.size, seed=args.seed,
                         fake_fraction=args.fake_fraction, val_fraction=args.val_fraction,
                         fake_kinds=tuple(k.strip() for k in args.fake_kinds.split(",") if k.strip()))
    counts = generate_dataset(args.out, config, progress=not args.quiet)
    for split, by_kind in counts.items():
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
        print(f"synth-data: {split}: {sum(by_kind.values())} videos ({detail})")
    print(f"synth-data: wrote {args.out} (ForgeryNet layout: Training/, Validation/)")
    return 0


def _features(args) -> int:
    from lstmfpga.model.extract_features import run_features

    return run_features(args)


def register(subparsers) -> None:
    """Add ``synth-data`` and ``features`` to the ``lstmfpga`` parser."""
    synth = subparsers.add_parser(
        "synth-data", help="write the embedded synthetic deepfake dataset (ForgeryNet layout)",
        description="Write a small synthetic deepfake dataset in ForgeryNet's layout: real and forged "
                    "mp4 videos of moving faces, with spatial, temporal-only and combined artifacts.")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--videos", type=int, default=64, help="number of videos (default 64)")
    synth.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    synth.add_argument("--size", type=int, default=112, help="frame side in pixels, even (default 112)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--fake-kinds", default="spatial,temporal,both",
                       help="artifact kinds of the fakes, used in turn (default spatial,temporal,both)")
    synth.add_argument("--fake-fraction", type=float, default=0.5, help="share of fake videos (default 0.5)")
    synth.add_argument("--val-fraction", type=float, default=0.25,
                       help="share of real videos, with their fakes, in Validation (default 0.25)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_synth_data)

    feats = subparsers.add_parser(
        "features", help="decode, sample, crop and run ResNet-50 into a resumable feature cache",
        description="Extract T-frame ResNet-50 feature sequences of every video of a dataset into a "
                    "feature cache.  Resumable (rerun the same command), shardable (--shard i/N), "
                    "unusable videos are skipped and listed in CACHE/report.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    feats.add_argument("--data", required=True, help="dataset root folder (for csv: the .csv file or its folder)")
    feats.add_argument("--dataset", required=True, choices=DATASETS, help="dataset layout")
    feats.add_argument("--out", required=True, help="feature cache folder")
    feats.add_argument("--frames", type=int, default=16, help="T, frames per video (8, 16, 24 in the search)")
    feats.add_argument("--batch", type=int, default=4, help="videos per backbone batch")
    feats.add_argument("--workers", type=int, default=1, help="decoding worker processes (0: none)")
    feats.add_argument("--shard", default="0/1", help="i/N: this machine's share of the chunks")
    feats.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    feats.add_argument("--face-crop", action="store_true", help="crop the detected face (else the centre)")
    feats.add_argument("--image-size", type=int, default=224, help="crop side fed to ResNet-50")
    feats.add_argument("--backbone-weights", default="random",
                       help="random (seeded), imagenet (needs a network) or a state-dict PATH")
    feats.add_argument("--seed", type=int, default=0, help="seed of the random backbone")
    feats.add_argument("--chunk-videos", type=int, default=32, help="videos per cache chunk (unit of resumption)")
    feats.add_argument("--ffpp-methods", default=",".join(ffpp.METHODS[:4]),
                       help="FF++ only: comma-separated manipulation methods")
    feats.add_argument("--ffpp-compression", default="c23", choices=ffpp.COMPRESSIONS, help="FF++ only")
    feats.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = feats.add_argument_group(
        "Ray engine", "--engine ray: decoding as Ray tasks, ResNet-50 in a pool of Ray actors, the same cache")
    ray.add_argument("--engine", default="local", choices=("local", "ray"),
                     help="local: this process and --workers decoders; ray: a Ray Data pipeline")
    ray.add_argument("--address", default=None,
                     help="Ray cluster to join: auto or ray://HOST:PORT; none starts a local instance")
    ray.add_argument("--gpus-per-worker", type=float, default=None,
                     help="GPUs per backbone actor, e.g. 1 or 0.5; none: 1 with --device cuda, else 0")
    ray.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs (torch threads) per backbone actor")
    ray.add_argument("--encoders", type=int, default=None,
                     help="backbone actors; none: as many as the cluster's GPUs or spare CPUs allow")
    ray.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray instance; none: all")
    feats.set_defaults(handler=_features)
