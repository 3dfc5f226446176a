"""``lstmfpga golden``: run the integer (or float) golden model on an artifact or QONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lstmfpga.foundation.atomic import atomic_file
from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.npy_file import load_npy


def _load_input(path: Path) -> np.ndarray:
    x = load_npy(path, "input array")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise InputError(f"{path}: expected float32 [batch, time, features], got shape {x.shape}")
    return x


def logits_path(out: Path) -> Path:
    """Where the logits go next to a hidden-sequence output: ``Y.npy`` → ``Y_logits.npy``."""
    return out.with_name(out.stem + "_logits.npy")


def check_outputs(out: Path) -> None:
    """Refuse, before any work, an output that could not be written: a folder, or a path under a file."""
    for path in (out, logits_path(out)):
        if path.is_dir():
            raise InputError(f"output {path} is a folder; give a .npy file name")
        if path.parent.exists() and not path.parent.is_dir():
            raise InputError(f"cannot write output {path}: {path.parent.name} is not a folder")


def save_outputs(out: Path, hidden: np.ndarray, logits: np.ndarray | None) -> list[Path]:
    """Write ``Y.npy`` (and ``Y_logits.npy``) atomically; the format every backend shares."""
    check_outputs(out)
    written = [(out, hidden)] + ([(logits_path(out), logits)] if logits is not None else [])
    for path, array in written:
        try:
            with atomic_file(path) as handle:
                np.save(handle, array.astype(np.float32), allow_pickle=False)
        except OSError as exc:
            raise InputError(f"cannot write output {path}: {exc.strerror or exc}") from None
    return [path for path, _ in written]


def run(args: argparse.Namespace) -> int:
    from lstmfpga.quant.model_file import load_model
    from lstmfpga.sim.golden.float_lstm import run_float_artifact
    from lstmfpga.foundation.integer_lstm import run_artifact

    check_outputs(Path(args.out))
    artifact = load_model(args.model)
    x = _load_input(Path(args.input))
    normalize = not args.no_normalize
    if args.float:
        hidden, logits = run_float_artifact(artifact, x, normalize=normalize)
    else:
        out = run_artifact(artifact, x, normalize=normalize)
        hidden, logits = out.hidden, out.logits
    written = save_outputs(Path(args.out), hidden, logits)
    print(f"model: {artifact.summary()}")
    print(f"{'float' if args.float else 'integer'} golden: {x.shape[0]} sequences x {x.shape[1]} steps "
          f"-> hidden {tuple(hidden.shape)}" + (f", logits {tuple(logits.shape)}" if logits is not None else ""))
    for p in written:
        print(f"wrote {p}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("golden", help="run the NumPy golden model (integer or float)",
                              description=__doc__)
    p.add_argument("--model", required=True, help="artifact .npz or Brevitas QONNX .onnx file")
    p.add_argument("--input", required=True, help="float32 [B, T, I] .npy features")
    p.add_argument("--out", required=True, help="output .npy: dequantized hidden sequence [B, T, H]; "
                   "logits go to <out>_logits.npy when the model has a classifier")
    p.add_argument("--float", action="store_true", help="run the unquantized float LSTM instead")
    p.add_argument("--no-normalize", action="store_true",
                   help="input is already standardized: skip the artifact's feature normalization")
    p.set_defaults(handler=run)
