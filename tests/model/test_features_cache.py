"""The feature cache API: round trips, merging shards, wrong shapes, subsets."""

from __future__ import annotations

import numpy as np
import pytest

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.feature_cache import (
    FeatureSet,
    load_features,
    read_chunk,
    save_feature_set,
    write_chunk,
)


def _random_set(rng, n, t, d, prefix="v"):
    return FeatureSet(
        features=rng.standard_normal((n, t, d)).astype(np.float16),
        labels=rng.integers(0, 2, n),
        video_ids=tuple(f"{prefix}/{i:03d}.mp4" for i in range(n)),
        splits=rng.choice(["train", "val", "test"], n),
        extra={"label_16cls": rng.integers(0, 20, n), "artifact_kind": rng.choice(["none", "spatial"], n)},
    )


@pytest.mark.parametrize("n,t,d", [(1, 8, 2048), (7, 3, 5), (13, 24, 17)])
def test_round_trip_sorted_by_id(tmp_path, n, t, d):
    rng = np.random.default_rng(n * 100 + t)
    fs = _random_set(rng, n, t, d)
    perm = rng.permutation(n)
    save_feature_set(fs.subset(perm), tmp_path)
    back = load_features(tmp_path, expected_dim=d, expected_t=t)
    assert back.video_ids == fs.video_ids  # ids were written sorted, loading re-sorts the permutation
    np.testing.assert_array_equal(back.features, fs.features)
    np.testing.assert_array_equal(back.labels, fs.labels)
    np.testing.assert_array_equal(back.splits, fs.splits)
    np.testing.assert_array_equal(back.extra["label_16cls"], fs.extra["label_16cls"])
    np.testing.assert_array_equal(back.extra["artifact_kind"], fs.extra["artifact_kind"])
    assert back.features.dtype == np.float16 and back.labels.dtype == np.int64 and len(back) == n


def test_shards_in_subfolders_merge_and_dedupe(tmp_path):
    rng = np.random.default_rng(1)
    fs = _random_set(rng, 11, 4, 6)
    (tmp_path / "a").mkdir()
    write_chunk(tmp_path / "a" / "chunk-s0of2-000000.npz", fs.subset(np.arange(0, 6)))
    (tmp_path / "b").mkdir()
    write_chunk(tmp_path / "b" / "chunk-s1of2-000000.npz", fs.subset(np.arange(5, 11)), skipped=[("x.mp4", "bad")])
    back = load_features(tmp_path)
    assert back.video_ids == fs.video_ids
    np.testing.assert_array_equal(back.features, fs.features)
    assert read_chunk(tmp_path / "b" / "chunk-s1of2-000000.npz").skipped == (("x.mp4", "bad"),)


def test_missing_extra_column_is_filled(tmp_path):
    rng = np.random.default_rng(2)
    fs = _random_set(rng, 4, 2, 3)
    plain = FeatureSet(features=fs.features[:2], labels=fs.labels[:2], video_ids=fs.video_ids[:2], splits=fs.splits[:2])
    write_chunk(tmp_path / "chunk-x-000000.npz", plain)
    write_chunk(tmp_path / "chunk-x-000001.npz", fs.subset([2, 3]))
    back = load_features(tmp_path)
    assert back.extra["label_16cls"].tolist()[:2] == [-1, -1]
    assert back.extra["artifact_kind"].tolist()[:2] == ["", ""]
    assert back.extra["artifact_kind"].tolist()[2:] == fs.extra["artifact_kind"][2:].tolist()


def test_wrong_dim_or_t_names_cache_and_sizes(tmp_path):
    save_feature_set(_random_set(np.random.default_rng(3), 3, 8, 16), tmp_path)
    with pytest.raises(InputError, match=rf"{tmp_path}.*D=16.*expected D=2048"):
        load_features(tmp_path, expected_dim=2048)
    with pytest.raises(InputError, match=rf"{tmp_path}.*T=8.*expected T=16"):
        load_features(tmp_path, expected_t=16)


def test_mixed_shapes_and_empty_and_damaged(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_features(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no chunk"):
        load_features(tmp_path)
    rng = np.random.default_rng(4)
    write_chunk(tmp_path / "chunk-a-000000.npz", _random_set(rng, 2, 8, 4, "a"))
    write_chunk(tmp_path / "chunk-a-000001.npz", _random_set(rng, 2, 16, 4, "b"))
    with pytest.raises(InputError, match="mixes sequence shapes"):
        load_features(tmp_path)
    (tmp_path / "chunk-a-000001.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="chunk-a-000001.npz cannot be read"):
        load_features(tmp_path)


def test_subset_mask_indices_and_validation():
    rng = np.random.default_rng(5)
    fs = _random_set(rng, 9, 3, 2)
    mask = rng.integers(0, 2, 9).astype(bool)
    sub = fs.subset(mask)
    assert sub.video_ids == tuple(v for v, m in zip(fs.video_ids, mask) if m)
    np.testing.assert_array_equal(sub.features, fs.features[mask])
    np.testing.assert_array_equal(fs.subset([8, 0]).labels, fs.labels[[8, 0]])
    assert len(fs.subset([])) == 0
    assert set(fs.split("val").splits.tolist()) == {"val"}
    with pytest.raises(InputError, match="boolean mask must have shape"):
        fs.subset(mask[:-1])
    with pytest.raises(InputError, match="labels must be 0"):
        FeatureSet(features=fs.features, labels=fs.labels + 2, video_ids=fs.video_ids, splits=fs.splits)
    with pytest.raises(InputError, match="unique"):
        FeatureSet(features=fs.features[:2], labels=fs.labels[:2], video_ids=("a", "a"), splits=fs.splits[:2])
    with pytest.raises(InputError, match="splits must be one of"):
        FeatureSet(features=fs.features[:1], labels=fs.labels[:1], video_ids=("a",), splits=["dev"])
