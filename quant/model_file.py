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
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        return LstmArtifact.load(path)
    from lstmfpga.quant.qonnx_import import artifact_from_qonnx

    return artifact_from_qonnx(path)
