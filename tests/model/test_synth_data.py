"""``lstmfpga synth-data``: deterministic for a seed, in ForgeryNet's exact layout, fakes of the real videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.cli.main import main
from lstmfpga.model.datasets import read_dataset
from lstmfpga.model.datasets.forgerynet import parse_line
from lstmfpga.model.frames import decode_clip
from lstmfpga.model.synthetic.dataset import SynthConfig, plan_videos


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_videos(tmp_path, capsys):
    args = ["synth-data", "--videos", "7", "--frames", "9", "--size", "34", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a"), "--seed", "5"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--seed", "5"]) == 0
    assert main([*args, "--out", str(tmp_path / "c"), "--seed", "6"]) == 0
    out = capsys.readouterr().out
    assert "synth-data: train:" in out and "synth-data: val:" in out
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    videos = sorted(k for k in a if k.endswith(".mp4"))
    by_id = {k.split("/")[-2]: v for k, v in c.items() if k.endswith(".mp4")}
    assert len(videos) == 7 and sorted(by_id) == sorted(k.split("/")[-2] for k in videos)
    for name in videos:
        clip_a, clip_b = decode_clip(tmp_path / "a" / name, 9), decode_clip(tmp_path / "b" / name, 9)
        np.testing.assert_array_equal(clip_a.frames, clip_b.frames)
        assert clip_a.frames.shape == (9, 34, 34, 3) and clip_a.source_frames == 9 and not clip_a.padded
    assert all(a[k] != by_id[k.split("/")[-2]] for k in videos)


@pytest.mark.parametrize("videos,frames,val_fraction", [(2, 1, 0.25), (13, 5, 0.3), (24, 3, 0.5)])
def test_layout_parses_with_the_forgerynet_reader(tmp_path, videos, frames, val_fraction):
    from lstmfpga.model.synthetic.dataset import generate_dataset

    config = SynthConfig(videos=videos, frames=frames, size=32, seed=videos, val_fraction=val_fraction)
    counts = generate_dataset(tmp_path, config, progress=False)
    listing = read_dataset("forgerynet", tmp_path)
    assert listing.problems == ()
    assert len(listing) == videos == sum(sum(c.values()) for c in counts.values())
    planned = {f"synth{p.index:05d}": p for p in plan_videos(config)}
    for record in listing.records:
        plan = planned[record.path.split("/")[-2]]
        assert record.split == plan.split
        assert record.split == planned[f"synth{plan.target:05d}"].split  # a fake stays with its real video
        assert record.label == int(plan.kind != "none")
        assert record.extra["artifact_kind"] == plan.kind
        if record.label:
            assert record.extra["label_16cls"] == {"spatial": 1, "temporal": 2, "both": 3}[plan.kind]
        assert (record.extra["label_16cls"] >= 16) == (record.label == 0)
        folder = "Training" if record.split == "train" else "Validation"
        assert record.path.startswith(f"{folder}/video/{record.split}_video_release/")
        assert (tmp_path / record.path).stat().st_size > 0
    for folder in ("Training", "Validation"):
        lines = (tmp_path / folder / "video_list.txt").read_text().splitlines()
        for line in lines:
            relpath, binary, triple, cls16, segments = parse_line(line)
            assert line == " ".join(map(str, [len(segments), relpath, *np.ravel(segments).tolist(), binary, triple, cls16]))
            assert all(start + length <= frames for start, length, _ in segments)
        kinds = json.loads((tmp_path / folder / "synthetic_meta.json").read_text())
        assert sorted(kinds) == sorted(line.split()[1] for line in lines)


def test_cli_kind_options(tmp_path, capsys):
    assert main(["synth-data", "--out", str(tmp_path), "--videos", "8", "--frames", "2", "--size", "32", "--quiet",
                 "--fake-kinds", "temporal", "--val-fraction", "0.5", "--fake-fraction", "0.5"]) == 0
    kinds = [r.extra["artifact_kind"] for r in read_dataset("forgerynet", tmp_path).records]
    assert sorted(kinds) == ["none"] * 4 + ["temporal"] * 4
    assert main(["synth-data", "--out", str(tmp_path), "--fake-kinds", "blur", "--quiet"]) == 2
    assert "error: fake_kinds must be a non-empty sequence of" in capsys.readouterr().err


def test_config_is_validated():
    with pytest.raises(ConfigError, match="videos must be an integer >= 2, not 1"):
        SynthConfig(videos=1)
    with pytest.raises(ConfigError, match=r"size must be an even integer >= 32 \(4:2:0 video\), not 33"):
        SynthConfig(size=33)
    with pytest.raises(ConfigError, match=r"fake_kinds must be a non-empty sequence of \('spatial', 'temporal', 'both'\)"):
        SynthConfig(fake_kinds=("blur",))
    with pytest.raises(ConfigError, match="frames must be a positive integer, not 0"):
        SynthConfig(frames=0)
