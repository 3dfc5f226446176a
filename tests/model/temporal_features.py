"""Tiny random feature sets for the training and search tests (a helper module, not a test)."""

from __future__ import annotations

import numpy as np

from lstmfpga.model.feature_cache import FeatureSet

KINDS = ("temporal", "spatial")


def temporal_feature_set(*, pairs: int, t: int, d: int, seed: int, signal_dims: int = 4,
                         val_share: float = 0.25) -> FeatureSet:
    """``2 * pairs`` videos; each fake is the exact time-reversal of one real video.

    In the first ``signal_dims`` features a real video decreases over time and its fake twin
    increases; everything else is noise.  Frame means are equal within each pair, so a head that
    averages over time cannot tell the pair apart, while a recurrent head can.
    """
    rng = np.random.default_rng(seed)
    reals = rng.normal(size=(pairs, t, d))
    trend = np.sort(rng.normal(size=(pairs, t, signal_dims)), axis=1)[:, ::-1, :]
    reals[:, :, :signal_dims] = 2.0 * trend + 3.0
    fakes = reals[:, ::-1, :]
    features = np.concatenate([reals, fakes]).astype(np.float16)
    labels = np.concatenate([np.zeros(pairs, np.int64), np.ones(pairs, np.int64)])
    n_val = int(round(val_share * pairs))
    pair_split = np.array(["val"] * n_val + ["train"] * (pairs - n_val))
    rng.shuffle(pair_split)
    splits = np.concatenate([pair_split, pair_split])
    kinds = np.concatenate([["none"] * pairs, [KINDS[i % 2] for i in range(pairs)]])
    ids = tuple(f"real/{i:03d}.mp4" for i in range(pairs)) + tuple(f"fake/{i:03d}.mp4" for i in range(pairs))
    return FeatureSet(features=features, labels=labels, video_ids=ids, splits=splits,
                      extra={"artifact_kind": kinds})


def random_feature_set(*, n: int, t: int, d: int, seed: int) -> FeatureSet:
    """Pure noise with a weak mean shift for fakes; train/val/test splits."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    features = rng.normal(size=(n, t, d)) + 0.8 * labels[:, None, None]
    splits = np.array(["train", "train", "train", "val"] * (n // 4 + 1))[:n]
    return FeatureSet(features=features.astype(np.float16), labels=labels,
                      video_ids=tuple(f"v{i:04d}" for i in range(n)), splits=splits)
