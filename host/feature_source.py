"""Where features come from: a feature-cache folder or an ``X.npy`` array (plus optional labels).

The cache reader lives in the model stage and is imported only when a folder is given: the board
reads ``.npy`` files with NumPy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.npy_file import load_npy


@dataclass(frozen=True, eq=False)
class FeatureInput:
    """Float features ``[N, T, D]`` with per-video ids and optional 0/1 labels (1 = fake)."""

    features: np.ndarray
    video_ids: tuple
    labels: np.ndarray | None
    source: str


def load_feature_input(path, *, expected_dim: int, labels=None, split: str | None = None) -> FeatureInput:
    """Read features for ``expected_dim``-wide models.

    Parameters
    ----------
    path
        A feature-cache folder (``lstmfpga features``) or a float ``[N, T, D]`` (or ``[T, D]``) ``.npy``.
    labels
        Optional ``.npy`` of N 0/1 labels for an ``.npy`` input (a cache carries its own).
    split
        Keep only this split of a cache (``train``, ``val``, ``test``).
    """
    path = Path(path)
    if path.is_dir():
        if labels is not None:
            raise InputError("--labels applies to an X.npy input; a feature cache carries its own labels")
        from lstmfpga.model.feature_cache import load_features

        fs = load_features(path, expected_dim=expected_dim)
        if split is not None:
            fs = fs.split(split)
            if len(fs) == 0:
                raise InputError(f"feature cache {path} has no videos in split {split!r}")
        return FeatureInput(features=fs.features, video_ids=tuple(fs.video_ids), labels=fs.labels, source=str(path))
    if not path.is_file():
        raise InputError(f"features not found: {path} is neither a feature-cache folder nor a .npy file")
    if split is not None:
        raise InputError("--split applies to a feature-cache folder, not to an X.npy input")
    x = load_npy(path, "feature array", mmap=True)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise InputError(f"{path}: features must be [N, T, D], got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise InputError(f"{path}: features must be numeric, got dtype {x.dtype}")
    if x.shape[2] != expected_dim:
        raise InputError(f"{path}: {x.shape[2]} features per step, the model expects {expected_dim}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{path}: no {'sequences' if x.shape[0] == 0 else 'time steps'} (shape {x.shape})")
    y = None
    if labels is not None:
        y = np.asarray(load_npy(labels, "label array", mmap=True))
        if y.dtype.kind not in "biu":
            raise InputError(f"{labels}: labels must be integers 0 or 1, got dtype {y.dtype}")
        if y.shape != (x.shape[0],):
            raise InputError(f"{labels}: labels must have shape ({x.shape[0]},), got {y.shape}")
        if not np.isin(y, (0, 1)).all():
            raise InputError(f"{labels}: labels must be 0 (real) or 1 (fake)")
        y = y.astype(np.int64)
    ids = tuple(f"{i}" for i in range(x.shape[0]))
    return FeatureInput(features=x, video_ids=ids, labels=y, source=str(path))
