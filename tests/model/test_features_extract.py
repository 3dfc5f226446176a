"""``lstmfpga features``: kill and resume, shards, bad input, settings checks (random ResNet-50, tiny images)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmfpga.foundation.errors import InputError
from lstmfpga.cli.main import main
from lstmfpga.model.datasets import read_dataset
from lstmfpga.model.feature_cache import load_features, read_chunk
from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset
from lstmfpga.model.synthetic.video_writer import write_mp4

T = 8
FAST = ["--frames", str(T), "--image-size", "32", "--quiet", "--workers", "0"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, SynthConfig(videos=11, frames=12, size=48, seed=3), progress=False)
    return root


def _cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lstmfpga.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(synth, tmp_path):
    common = ["features", "--data", str(synth), "--dataset", "forgerynet", *FAST, "--chunk-videos", "2", "--batch", "2"]
    full = _cli(*common, "--out", str(tmp_path / "full"))
    killed_dir = tmp_path / "killed"
    victim = _cli(*common, "--out", str(killed_dir))
    deadline = time.monotonic() + 120
    while not list(killed_dir.glob("chunk-*.npz")):
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no chunk was written"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done_at_kill = len(list(killed_dir.glob("chunk-*.npz")))
    assert 1 <= done_at_kill < 6, "the kill must land mid-run"
    assert full.wait() == 0, full.communicate()

    resumed = _cli(*common, "--out", str(killed_dir))
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err
    assert f"({11 - 2 * done_at_kill} this run, {2 * done_at_kill} before)" in out

    reference, got = load_features(tmp_path / "full"), load_features(killed_dir, expected_dim=2048, expected_t=T)
    listed = sorted(r.path for r in read_dataset("forgerynet", synth).records)
    assert got.video_ids == reference.video_ids == tuple(listed)
    np.testing.assert_array_equal(got.features, reference.features)
    np.testing.assert_array_equal(got.labels, reference.labels)
    np.testing.assert_array_equal(got.extra["artifact_kind"], reference.extra["artifact_kind"])
    assert sorted(p.name for p in killed_dir.glob("chunk-*.npz")) == [f"chunk-{k:06d}.npz" for k in range(6)]
    # At most a half-written temporary file of the killed run is left, and readers ignore it.
    assert all(p.name.endswith(".tmp") for p in killed_dir.iterdir() if p.name.startswith("."))

    # Shards into separate folders, merged by copying: the same rows as one run.
    for i in range(3):
        assert main([*common, "--out", str(tmp_path / f"shard{i}"), "--shard", f"{i}/3"]) == 0
    merged = tmp_path / "merged"
    for i in range(3):
        shutil.copytree(tmp_path / f"shard{i}", merged / f"shard{i}")
    shards = load_features(merged)
    assert shards.video_ids == reference.video_ids
    np.testing.assert_allclose(shards.features.astype(np.float32), reference.features.astype(np.float32),
                               rtol=2e-3, atol=1e-3)
    assert {len(read_chunk(p).video_ids) for p in merged.rglob("chunk-*.npz")} <= {1, 2}


def _bad_dataset(synth: Path, root: Path) -> dict:
    """A ForgeryNet folder with one good video and one of every kind of bad entry."""
    shutil.copytree(synth / "Validation", root / "Validation")
    lines = (root / "Validation" / "video_list.txt").read_text().splitlines()
    good = lines[0].split()[1]
    video_dir = root / "Validation" / "video" / "val_video_release" / "16"
    video_dir.mkdir(parents=True, exist_ok=True)
    source = (root / "Validation" / "video" / good).read_bytes()
    (video_dir / "truncated.mp4").write_bytes(source[: len(source) // 2])
    (video_dir / "empty.mp4").write_bytes(b"")
    (video_dir / "text.mp4").write_text("this is not a video\n" * 20)
    (video_dir / "folder.mp4").mkdir()
    rng = np.random.default_rng(0)
    write_mp4(video_dir / "short.mp4", rng.integers(0, 255, (3, 32, 48, 3), dtype=np.uint8))
    entries = ["truncated", "empty", "text", "folder", "missing", "short"]
    lines = [lines[0]] + [f"0 val_video_release/16/{name}.mp4 0 0 16" for name in entries]
    lines.insert(2, "2 val_video_release/16/x.mp4 0 3 1 1 1 1")  # malformed: 2 segments announced, 1 given
    (root / "Validation" / "video_list.txt").write_text("\n".join(lines) + "\n")
    return {"good": f"Validation/video/{good}", "short": "Validation/video/val_video_release/16/short.mp4"}


def test_bad_inputs_are_skipped_with_reasons(synth, tmp_path, capsys):
    names = _bad_dataset(synth, tmp_path / "data")
    cache = tmp_path / "cache"
    assert main(["features", "--data", str(tmp_path / "data"), "--dataset", "forgerynet", "--out", str(cache), *FAST]) == 0
    out = capsys.readouterr().out
    assert "7 videos listed; 2 extracted (2 this run, 0 before); 5 videos skipped; 1 list entries skipped" in out
    report = json.loads((cache / "report.json").read_text())
    reasons = {Path(s["video"]).stem: s["reason"] for s in report["skipped_videos"]}
    assert sorted(reasons) == ["empty", "folder", "missing", "text", "truncated"]
    assert "is empty (0 bytes)" in reasons["empty"]
    assert "is not a file" in reasons["folder"]
    assert "does not exist" in reasons["missing"]
    assert "cannot be opened" in reasons["text"] and "cannot be opened" in reasons["truncated"]
    assert all(r.startswith("VideoDecodeError: video ") for r in reasons.values())
    assert [e["reason"] for e in report["skipped_list_entries"]] == ["segment count 2 needs 6 segment fields, found 3"]
    assert report["skipped_list_entries"][0]["where"].endswith("video_list.txt:3")
    features = load_features(cache, expected_t=T, expected_dim=2048)
    assert features.video_ids == tuple(sorted((names["good"], names["short"])))
    row = features.video_ids.index(names["short"])
    assert features.extra["padded"].tolist()[row] is True and features.extra["source_frames"][row] == 3
    assert np.isfinite(features.features.astype(np.float32)).all()

    # A rerun has nothing to do and still reports every skip; other settings are refused.
    assert main(["features", "--data", str(tmp_path / "data"), "--dataset", "forgerynet", "--out", str(cache), *FAST]) == 0
    assert "2 extracted (0 this run, 2 before); 5 videos skipped" in capsys.readouterr().out
    assert main(["features", "--data", str(tmp_path / "data"), "--dataset", "forgerynet", "--out", str(cache),
                 "--frames", "16", "--image-size", "32", "--quiet", "--workers", "0"]) == 2
    assert "was made with other settings (frames: cache has 8, this run 16)" in capsys.readouterr().err
    with pytest.raises(InputError, match=rf"{cache} holds D=2048 features, expected D=512"):
        load_features(cache, expected_dim=512)
    with pytest.raises(InputError, match=rf"{cache} holds T=8 frames per video, expected T=24"):
        load_features(cache, expected_t=24)


def test_cli_errors_are_clean(tmp_path, capsys):
    assert main(["features", "--data", str(tmp_path / "nope"), "--dataset", "forgerynet", "--out", str(tmp_path / "c")]) == 2
    assert f"error: dataset folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["features", "--data", str(tmp_path / "empty"), "--dataset", "forgerynet", "--out", str(tmp_path / "c")]) == 2
    assert "has none of Training/video_list.txt" in capsys.readouterr().err
    (tmp_path / "csvset").mkdir()
    (tmp_path / "csvset" / "list.csv").write_text("a.mp4,0\n")
    assert main(["features", "--data", str(tmp_path / "csvset"), "--dataset", "csv", "--out", str(tmp_path / "c"),
                 "--shard", "3/3"]) == 2
    assert "error: shard must be i/N with 0 <= i < N, not '3/3'" in capsys.readouterr().err
