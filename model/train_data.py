"""From a cached :class:`FeatureSet` to training arrays: frame sub-sampling, the held-out dev part,
and the standardization every later stage (QAT, the integer artifact, the FPGA host) repeats.

NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.model.feature_cache import FeatureSet
from lstmfpga.foundation.artifact import Normalization


def frame_indices(t_max: int, frames: int) -> np.ndarray:
    """``frames`` indices spread uniformly over ``0 .. t_max - 1`` (first and last included)."""
    if frames > t_max:
        raise ConfigError(f"frames={frames} exceeds the {t_max} frames per video in the feature cache")
    if frames == 1:
        return np.array([(t_max - 1) // 2])
    return np.round(np.linspace(0, t_max - 1, frames)).astype(np.int64)


def stratified_dev_mask(labels: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """A seeded boolean mask picking ``fraction`` of each class (at least one of a class with ≥ 2)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0xDE5])
    mask = np.zeros(labels.size, dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = int(round(fraction * members.size))
        take = min(max(take, 1 if members.size >= 2 else 0), members.size - 1)
        mask[rng.permutation(members)[:take]] = True
    return mask


@dataclass(frozen=True)
class PreparedData:
    """Standardized float32 arrays of the three parts a training run uses.

    ``eval_split`` is ``'test'`` when the cache has test videos, else ``'val'``, else ``None``
    (then only dev metrics are reported).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    dev_x: np.ndarray
    dev_y: np.ndarray
    eval_x: np.ndarray | None
    eval_y: np.ndarray | None
    eval_split: str | None
    eval_extra: dict
    normalization: Normalization
    frame_indices: np.ndarray


def prepare_data(feature_set: FeatureSet, *, frames: int, clip: float, dev_fraction: float,
                 seed: int) -> PreparedData:
    """Sub-sample frames, carve the dev part out of 'train', fit and apply the normalization."""
    if not isinstance(feature_set, FeatureSet):
        raise InputError(f"training takes a FeatureSet, not {type(feature_set).__name__}")
    indices = frame_indices(feature_set.frames, frames)
    train_rows = np.flatnonzero(feature_set.splits == "train")
    labels = feature_set.labels
    for cls, name in ((0, "real"), (1, "fake")):
        count = int((labels[train_rows] == cls).sum())
        if count < 2:
            raise InputError(f"the train split holds {count} {name} videos; training needs at least 2 of each class")
    dev_mask = stratified_dev_mask(labels[train_rows], fraction=dev_fraction, seed=seed)
    fit_rows, dev_rows = train_rows[~dev_mask], train_rows[dev_mask]
    eval_split = next((s for s in ("test", "val") if (feature_set.splits == s).any()), None)
    eval_rows = np.flatnonzero(feature_set.splits == eval_split) if eval_split else None

    def take(rows):
        x = feature_set.features[rows][:, indices, :]
        if not np.isfinite(x).all():
            bad = sorted({feature_set.video_ids[r] for r in rows[~np.isfinite(x).all(axis=(1, 2))]})
            raise InputError(f"features of videos {bad[:5]} contain NaN or infinite values")
        return x

    fit_x = take(fit_rows)
    normalization = Normalization.fit(fit_x, clip=clip)
    return PreparedData(
        train_x=normalization.apply(fit_x),
        train_y=labels[fit_rows],
        dev_x=normalization.apply(take(dev_rows)),
        dev_y=labels[dev_rows],
        eval_x=normalization.apply(take(eval_rows)) if eval_split else None,
        eval_y=labels[eval_rows] if eval_split else None,
        eval_split=eval_split,
        eval_extra={k: v[eval_rows] for k, v in feature_set.extra.items()} if eval_split else {},
        normalization=normalization,
        frame_indices=indices,
    )
