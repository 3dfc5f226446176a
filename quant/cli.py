"""Subcommands of the quant stage: ``qat`` (Brevitas fine-tuning) and ``export`` (QONNX + artifact)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmfpga.foundation.errors import ArtifactError, InputError


def _feature_set(args):
    import numpy as np

    from lstmfpga.foundation.npy_file import load_npy
    from lstmfpga.model.feature_cache import FeatureSet, load_features

    path = Path(args.features)
    if path.is_dir():
        return load_features(path)
    if args.labels is None:
        raise InputError("--features X.npy needs --labels Y.npy (0 = real, 1 = fake per sequence)")
    x = load_npy(path, "feature array")
    y = load_npy(args.labels, "label array")
    if x.ndim != 3 or y.shape != (x.shape[0],):
        raise InputError(f"features must be [N, T, D] and labels [N], got {x.shape} and {y.shape}")
    rng = np.random.default_rng(args.seed)
    splits = np.where(rng.random(len(y)) < 0.2, "val", "train").astype(object)
    return FeatureSet(features=x.astype(np.float16), labels=y.astype(np.int64),
                      video_ids=tuple(f"seq{i:06d}" for i in range(len(y))), splits=splits, extra={})


def run_qat(args: argparse.Namespace) -> int:
    from lstmfpga.model.train_cli import final_summary
    from lstmfpga.quant.head import QuantHeadConfig
    from lstmfpga.quant.qat import QatConfig, qat_from_features

    fs = _feature_set(args)
    head_config = QuantHeadConfig(input_size=int(fs.features.shape[2]), hidden_size=args.hidden,
                                  num_layers=args.layers, weight_bits=args.weight_bits,
                                  act_bits=args.act_bits, clip=args.clip)
    config = QatConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, patience=args.patience,
                       monitor=args.monitor, seed=args.seed)
    if args.float_checkpoint:
        print(f"QAT: {len(fs)} videos, head shape from {args.float_checkpoint}, "
              f"{args.weight_bits}-bit weights, {args.act_bits}-bit activations")
    else:
        print(f"QAT: {len(fs)} videos, head {head_config}")
    result = qat_from_features(fs, args.out, head_config=head_config, frames=args.frames,
                               float_checkpoint=args.float_checkpoint, config=config, plots=not args.no_plots,
                               checkpoint_every_s=args.checkpoint_every)
    print(final_summary(result.metrics))
    print(f"wrote {result.checkpoint}")
    return 0


def export_checkpoint(checkpoint, out_dir, *, timesteps: int = 16) -> tuple[Path, Path]:
    """Write ``model.onnx`` and ``artifact.npz``; checks the QONNX parse gives the same artifact."""
    from lstmfpga.quant.brevitas_export import artifact_from_head, export_qonnx_file
    from lstmfpga.quant.qat import load_qat_checkpoint
    from lstmfpga.quant.qonnx_import import artifact_from_qonnx

    head, ckpt = load_qat_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    onnx_path = export_qonnx_file(head, out_dir / "model.onnx", timesteps=timesteps)
    meta = {"checkpoint": Path(checkpoint).name, "frames": ckpt.get("frames")}
    artifact = artifact_from_head(head, meta=meta)
    parsed = artifact_from_qonnx(onnx_path)
    if parsed.sha256 != artifact.sha256:
        raise ArtifactError(f"the QONNX file {onnx_path} parses to a different artifact "
                            f"({parsed.sha256[:16]}… vs {artifact.sha256[:16]}…): export is inconsistent")
    return onnx_path, artifact.save(out_dir / "artifact.npz")


def run_export(args: argparse.Namespace) -> int:
    from lstmfpga.foundation.artifact import LstmArtifact

    onnx_path, artifact_path = export_checkpoint(args.checkpoint, args.out, timesteps=args.timesteps)
    artifact = LstmArtifact.load(artifact_path)
    print(f"wrote {onnx_path} (QONNX)")
    print(f"wrote {artifact_path}: {artifact.summary()}")
    print(f"sha256 {artifact.sha256} (QONNX parse agrees)")
    return 0


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    p = subparsers.add_parser("qat", help="quantization-aware training of the LSTM head (Brevitas)")
    p.add_argument("--features", required=True, help="feature cache folder, or X.npy [N, T, D]")
    p.add_argument("--labels", help="Y.npy [N] when --features is an .npy file")
    p.add_argument("--out", required=True, help="output folder (qat_head.pt, qat_metrics.json, plots); re-running a killed QAT with the same --out resumes it")
    p.add_argument("--float-checkpoint", help="start from a float LSTM head (lstmfpga train's checkpoint.pt)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--act-bits", type=int, default=8)
    p.add_argument("--clip", type=float, default=4.0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patience", type=int, default=5,
                   help="early stopping: epochs without a better dev metric (default: %(default)s)")
    p.add_argument("--monitor", default="roc_auc",
                   help="dev metric for early stopping: roc_auc, accuracy, f1, loss (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="least seconds between resume states; 0 = after every epoch (default: %(default)s)")
    p.set_defaults(handler=run_qat)

    p = subparsers.add_parser("export", help="export a QAT head to QONNX and the integer artifact")
    p.add_argument("--checkpoint", required=True, help="qat_head.pt from lstmfpga qat")
    p.add_argument("--out", required=True, help="output folder (model.onnx, artifact.npz)")
    p.add_argument("--timesteps", type=int, default=16, help="sequence length of the QONNX example input")
    p.set_defaults(handler=run_export)
