"""Open a model file of either kind: an integer artifact (``.npz``) or a Brevitas QONNX export."""

from __future__ import annotations

import os
from pathlib import Path

from lstmfpga.foundation.artifact import LstmArtifact
from lstmfpga.foundation.errors import ArtifactError


def load_model(path: str | os.PathLike) -> LstmArtifact:
    """Load an artifact (``.npz``) or build one from a Brevitas-exported QONNX file (``.onnx``)."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"model file not found: {path}")
    if path.is_dir():
        raise ArtifactError(f"model {path} is a folder; give the artifact .npz or the .onnx file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ArtifactError(f"model file {path} cannot be read: {exc.strerror or exc}") from None
    if magic.startswith(b"PK"):
        return LstmArtifact.load(path)
    from lstmfpga.quant.qonnx_import import artifact_from_qonnx

    return artifact_from_qonnx(path)
