"""Hostile and careless data: list entries that leave the dataset root, caches that would mix
settings or drop rows, images posing as videos.  Each case asserts the exact outcome: skipped and
reported (with file and line), refused with a clear message, or handled.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_errors import cli_error

from lstmfpga.cli.main import main
from lstmfpga.foundation.errors import InputError
from lstmfpga.model.datasets import read_dataset
from lstmfpga.model.feature_cache import FeatureSet, load_features, read_chunk, save_feature_set, write_chunk
from lstmfpga.model.frames import VideoDecodeError, decode_clip
from lstmfpga.model.synthetic.video_writer import write_mp4

FAST = ["--frames", "4", "--image-size", "32", "--quiet", "--workers", "0", "--chunk-videos", "1"]
OUTSIDE = "leads outside the dataset root"


def _video(path: Path, n_frames: int = 5, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, np.random.default_rng(seed).integers(0, 255, (n_frames, 32, 48, 3), dtype=np.uint8))
    return path


def _image_as_video(path: Path, ext: str = ".png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(ext, np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


@pytest.fixture()
def outside(tmp_path) -> Path:
    """A real, decodable video next to (not inside) the dataset root."""
    return _video(tmp_path / "outside" / "x.mp4", seed=5)


def _problems(listing) -> dict[str, str]:
    return {p.where.rsplit("/", 1)[-1]: p.reason for p in listing.problems}


def _forgerynet(root: Path, outside: Path) -> dict[int, str]:
    """A Training list with one good entry and every kind of escaping entry; returns line → path."""
    split = root / "Training"
    _video(split / "ok" / "a.mp4")
    _image_as_video(split / "ok" / "still.mp4")
    (split / "link").symlink_to(outside.parent, target_is_directory=True)
    entries = {
        1: "ok/a.mp4",
        2: "../../outside/x.mp4",
        3: "video/../../../outside/x.mp4",
        4: str(outside),
        5: "d/" * 600 + "x.mp4",
        6: "n" * 300 + ".mp4",
        7: "link/x.mp4",
        8: "ok/./b/../a.mp4",
        9: "ok/still.mp4",
    }
    split.mkdir(parents=True, exist_ok=True)
    (split / "video_list.txt").write_text("".join(f"0 {p} 0 0 16\n" for p in entries.values()))
    return entries


def test_forgerynet_entries_leaving_the_root_are_skipped_by_line(tmp_path, outside):
    root = tmp_path / "data"
    entries = _forgerynet(root, outside)
    listing = read_dataset("forgerynet", root)
    assert sorted(r.path for r in listing.records) == ["Training/ok/a.mp4", "Training/ok/still.mp4"]
    problems = _problems(listing)
    assert problems == {
        "video_list.txt:2": f"path Training/{entries[2]} {OUTSIDE}",
        "video_list.txt:3": f"path Training/{entries[3]} {OUTSIDE}",
        "video_list.txt:4": f"path {outside} is absolute: entries must be relative to the dataset root",
        "video_list.txt:5": f"path of 1205 bytes is longer than 1024 ('{'d/' * 20}'...)",
        "video_list.txt:6": f"path '{'n' * 40}'... has a name longer than 255 bytes",
        "video_list.txt:7": f"path Training/{entries[7]} {OUTSIDE} through a symbolic link",
        "video_list.txt:8": f"video Training/ok/a.mp4 already listed at {root}/Training/video_list.txt:1",
    }
    for record in listing.records:
        assert listing.resolve(record).resolve().is_relative_to(root.resolve())


def test_absolute_entries_are_refused_as_absolute(tmp_path, outside):
    root = tmp_path / "data"
    root.mkdir()
    (root / "list.csv").write_text(f"{outside},0\n")
    assert _problems(read_dataset("csv", root)) == {
        "list.csv:1": f"path {outside} is absolute: entries must be relative to the dataset root"}


def test_features_never_opens_a_file_outside_the_root(tmp_path, outside, monkeypatch, capsys):
    """End to end: the escaping entries point at a real video; the decoder is never handed it,
    the image posing as a video is refused, and every skip is in the report."""
    import av

    root = tmp_path / "data"
    _forgerynet(root, outside)
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda path, *a, **k: opened.append(Path(path).resolve()) or real_open(path, *a, **k))
    cache = tmp_path / "cache"
    assert main(["features", "--data", str(root), "--dataset", "forgerynet", "--out", str(cache), *FAST]) == 0
    assert opened and all(p.is_relative_to(root.resolve()) for p in opened), opened
    assert outside.resolve() not in opened
    report = json.loads((cache / "report.json").read_text())
    assert [e["where"].rsplit(":", 1)[-1] for e in report["skipped_list_entries"]] == ["2", "3", "4", "5", "6", "7", "8"]
    [still] = report["skipped_videos"]
    assert still["video"] == "Training/ok/still.mp4"
    assert "is an image (piped png sequence), not a video" in still["reason"]
    assert load_features(cache).video_ids == ("Training/ok/a.mp4",)


def test_celebdf_escapes_by_list_and_by_symlink_are_skipped(tmp_path, outside):
    root = tmp_path / "data"
    _video(root / "Celeb-real" / "id0_0000.mp4")
    (root / "Celeb-real" / "evil.mp4").symlink_to(outside)
    (root / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n1 Celeb-real/../../outside/x.mp4\n1 Celeb-real/../Celeb-real/id0_0000.mp4\n")
    listing = read_dataset("celebdf", root)
    assert [(r.path, r.split) for r in listing.records] == [("Celeb-real/id0_0000.mp4", "test")]
    assert [p.reason for p in listing.problems] == [
        f"path Celeb-real/../../outside/x.mp4 {OUTSIDE}",
        f"video Celeb-real/id0_0000.mp4 already listed at {root}/List_of_testing_videos.txt:1",
        f"path Celeb-real/evil.mp4 {OUTSIDE} through a symbolic link",
    ]
    assert listing.problems[0].where.endswith("List_of_testing_videos.txt:2")


def test_dfdc_escaping_and_absolute_names_are_skipped(tmp_path, outside):
    part = tmp_path / "data" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    (part / "metadata.json").write_text(json.dumps({
        "ok.mp4": {"label": "REAL"}, "../../outside/x.mp4": {"label": "FAKE"},
        str(outside): {"label": "FAKE"}, "sub/../../..": {"label": "FAKE"}}))
    listing = read_dataset("dfdc", tmp_path / "data")
    assert [r.path for r in listing.records] == ["dfdc_train_part_0/ok.mp4"]
    assert {p.where.split("metadata.json", 1)[1]: p.reason for p in listing.problems} == {
        ":../../outside/x.mp4": f"path dfdc_train_part_0/../../outside/x.mp4 {OUTSIDE}",
        f":{outside}": f"path {outside} is absolute: entries must be relative to the dataset root",
        ":sub/../../..": f"path dfdc_train_part_0/sub/../../.. {OUTSIDE}",
    }


def test_json_lists_nested_past_the_parser_are_skipped(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    root = tmp_path / "data"
    for part, text in (("dfdc_train_part_0", deep), ("dfdc_train_part_1", json.dumps({"ok.mp4": {"label": "REAL"}}))):
        (root / part).mkdir(parents=True)
        (root / part / "metadata.json").write_text(text)
    listing = read_dataset("dfdc", root)
    assert [r.path for r in listing.records] == ["dfdc_train_part_1/ok.mp4"]
    [problem] = listing.problems
    assert problem.where.endswith("dfdc_train_part_0/metadata.json") and "cannot read the metadata" in problem.reason
    (tmp_path / "ffpp" / "splits").mkdir(parents=True)
    (tmp_path / "ffpp" / "splits" / "train.json").write_text(deep)
    (tmp_path / "ffpp" / "splits" / "val.json").write_text('[["001", "002"]]')
    listing = read_dataset("ffpp", tmp_path / "ffpp", methods=("Deepfakes",))
    assert len(listing) == 4 and "cannot read the split file" in listing.problems[0].reason


def test_csv_bad_rows_never_abort_the_listing(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rows = ["a.mp4,0", "../outside/x.mp4,1", "b\0c.mp4,1", "x" * 200_000 + ",1", "./.,0", "d.mp4,1"]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    listing = read_dataset("csv", root)
    assert [r.path for r in listing.records] == ["a.mp4", "d.mp4"]
    assert _problems(listing) == {
        "list.csv:2": f"path ../outside/x.mp4 {OUTSIDE}",
        "list.csv:3": "path 'b\\x00c.mp4' holds a NUL byte",
        "list.csv:4": "unreadable CSV row: field larger than field limit (131072)",
        "list.csv:5": "path ./. names the dataset root itself, not a video",
    }


def test_ffpp_overlong_ids_are_skipped_per_record(tmp_path):
    root = tmp_path / "data"
    (root / "splits").mkdir(parents=True)
    (root / "splits" / "train.json").write_text(json.dumps([["001", "002"], ["003", "9" * 300]]))
    listing = read_dataset("ffpp", root, methods=("Deepfakes",))
    assert len(listing) == 5  # the good pair's 2 real + 2 fakes, and the real 003 of the bad pair
    assert len(listing.problems) == 3  # the long real id and both fakes that name it
    assert all(p.where.endswith("train.json:[1]") and "has a name longer than 255 bytes" in p.reason
               for p in listing.problems)


# -- caches ---------------------------------------------------------------------------------------

def _two_video_set(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    _video(root / "a.mp4", seed=1)
    _video(root / "b.mp4", seed=2)
    (root / "list.csv").write_text("a.mp4,0\nb.mp4,1\n")
    return root


def test_resume_with_other_settings_is_refused_without_cache_json(tmp_path, capsys):
    root = _two_video_set(tmp_path)
    cache = tmp_path / "cache"
    common = ["features", "--data", str(root), "--dataset", "csv", "--out", str(cache), "--frames", "4",
              "--quiet", "--workers", "0", "--chunk-videos", "1"]
    assert main([*common, "--image-size", "32"]) == 0
    chunk = cache / "chunk-000001.npz"
    chunk.unlink()                       # as if killed before the second chunk
    (cache / "cache.json").unlink()      # and the settings file lost
    before = sorted(p.name for p in cache.iterdir())
    capsys.readouterr()
    assert main([*common, "--image-size", "48"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: feature cache {cache} holds chunk {cache / 'chunk-000000.npz'} made with other "
                           "settings (image_size: chunk has 32, this run 48); use another --out folder or the same "
                           "settings")
    assert sorted(p.name for p in cache.iterdir()) == before
    assert main([*common, "--image-size", "32"]) == 0  # the same settings resume
    assert len(load_features(cache)) == 2


def test_chunks_of_mixed_settings_are_never_read_as_one_cache(tmp_path, capsys):
    root = _two_video_set(tmp_path)
    cache = tmp_path / "cache"
    for size in ("32", "48"):
        out = tmp_path / f"c{size}"
        assert main(["features", "--data", str(root), "--dataset", "csv", "--out", str(out), "--frames", "4",
                     "--image-size", size, "--quiet", "--workers", "0", "--chunk-videos", "1"]) == 0
    cache.mkdir()
    shutil.copy(tmp_path / "c32" / "chunk-000000.npz", cache / "chunk-000000.npz")
    shutil.copy(tmp_path / "c48" / "chunk-000001.npz", cache / "chunk-000001.npz")
    shutil.copy(tmp_path / "c48" / "cache.json", cache / "cache.json")  # a settings file claiming 48
    with pytest.raises(InputError, match=rf"mixes settings: {cache / 'chunk-000000.npz'} differs from "
                                         rf"{cache / 'cache.json'} \(image_size: 48 vs 32\)"):
        load_features(cache)
    capsys.readouterr()
    assert main(["train", "--features", str(cache), "--out", str(tmp_path / "t"), "--epochs", "1"]) == 2
    assert "mixes settings" in capsys.readouterr().err


def _set(n, t=3, d=4, prefix="v", seed=0):
    rng = np.random.default_rng(seed)
    return FeatureSet(features=rng.standard_normal((n, t, d)).astype(np.float16), labels=rng.integers(0, 2, n),
                      video_ids=tuple(f"{prefix}{i}" for i in range(n)), splits=["train"] * n)


def test_a_video_with_two_different_rows_is_refused(tmp_path):
    write_chunk(tmp_path / "chunk-a-000000.npz", _set(3, seed=1))
    write_chunk(tmp_path / "chunk-b-000000.npz", _set(2, seed=2))
    with pytest.raises(InputError, match=rf"video v0 is in {tmp_path / 'chunk-a-000000.npz'} and "
                                         rf"{tmp_path / 'chunk-b-000000.npz'} with different rows"):
        load_features(tmp_path)


def test_identical_copies_of_a_row_are_merged(tmp_path):
    fs = _set(4, seed=3)
    write_chunk(tmp_path / "chunk-a-000000.npz", fs.subset([0, 1, 2]))
    write_chunk(tmp_path / "chunk-b-000000.npz", fs.subset([2, 3]))
    back = load_features(tmp_path)
    assert back.video_ids == fs.video_ids
    np.testing.assert_array_equal(back.features, fs.features)


def test_resume_over_a_chunk_without_settings_is_refused(tmp_path, capsys):
    root = _two_video_set(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    write_chunk(cache / "chunk-000000.npz", _set(1, t=4, d=2048, prefix="a.mp4"))
    capsys.readouterr()
    assert main(["features", "--data", str(root), "--dataset", "csv", "--out", str(cache), *FAST]) == 2
    assert f"holds chunk {cache / 'chunk-000000.npz'} written without its settings" in capsys.readouterr().err


def test_a_compressed_chunk_is_refused_before_inflating(tmp_path):
    fs = _set(2, t=64, d=2048, seed=5)
    np.savez_compressed(tmp_path / "chunk-z-000000.npz", features=np.zeros((2, 4096, 2048), np.float16),
                        labels=fs.labels, video_ids=np.array(fs.video_ids), splits=np.array(["train"] * 2))
    assert (tmp_path / "chunk-z-000000.npz").stat().st_size < 1 << 20
    with pytest.raises(InputError, match=r"chunk-z-000000.npz cannot be read: .*member features.npy is "
                                         r"compressed; only stored \(uncompressed\) members are read"):
        load_features(tmp_path)


def test_save_feature_set_chunks_carry_their_settings(tmp_path):
    fs = _set(3, seed=4)
    save_feature_set(fs, tmp_path)
    os.remove(tmp_path / "cache.json")
    assert len(load_features(tmp_path)) == 3
    settings = json.loads(str(np.load(tmp_path / "chunk-saved-000000.npz")["settings"]))
    assert settings == {"dim": 4, "frames": 3, "source": "save_feature_set"}
    assert read_chunk(tmp_path / "chunk-saved-000000.npz").video_ids == fs.video_ids


# -- videos ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext,kind", [(".png", "piped png sequence"), (".jpg", "piped jpeg sequence"),
                                      (".bmp", "piped bmp sequence")])
def test_an_image_renamed_to_mp4_is_not_a_video(tmp_path, ext, kind):
    path = _image_as_video(tmp_path / f"still{ext}.mp4", ext)
    with pytest.raises(VideoDecodeError, match=rf"video {path} is an image \({kind}\), not a video"):
        decode_clip(path, 8)


def test_a_one_frame_video_is_still_a_video(tmp_path):
    clip = decode_clip(_video(tmp_path / "one.mp4", n_frames=1), 4)
    assert clip.padded and clip.source_frames == 1 and clip.frames.shape[0] == 4


# -- command lines --------------------------------------------------------------------------------

def test_data_commands_map_bad_paths_to_one_error_line(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n")
    (tmp_path / "empty").mkdir()
    root = _two_video_set(tmp_path)
    cases = [
        (["synth-data", "--out", a_file / "sub", "--videos", 4, "--quiet"], f"Not a directory: {a_file}"),
        (["synth-data", "--out", tmp_path / "s", "--videos", 0, "--quiet"], "videos must be an integer >= 2, not 0"),
        (["features", "--data", a_file, "--dataset", "forgerynet", "--out", tmp_path / "c"],
         f"ForgeryNet folder {a_file} has none of"),
        (["features", "--data", root, "--dataset", "csv", "--out", a_file, *FAST],
         f"feature cache folder {a_file} cannot be created"),
        (["features", "--data", root, "--dataset", "dfdc", "--out", tmp_path / "c"], "has no metadata.json"),
        (["train", "--features", tmp_path / "empty", "--out", tmp_path / "t"], "holds no chunk-*.npz files"),
        (["train", "--features", a_file, "--out", tmp_path / "t"], f"feature cache {a_file} is not a folder"),
        (["search", "--features", tmp_path / "empty", "--out", tmp_path / "se", "--trials", 1, "--space", a_file],
         f"search space file {a_file} is not valid"),
        (["search", "--features", tmp_path / "empty", "--out", a_file, "--trials", 1], f"{a_file}"),
    ]
    for args, message in cases:
        assert message in cli_error(args, capsys), args
