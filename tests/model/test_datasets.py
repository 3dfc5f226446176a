"""Dataset readers on format-exact fixtures (tests/model/fixtures), quirks included."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.model.datasets import READERS, read_dataset
from lstmfpga.model.datasets.forgerynet import parse_line

FIXTURES = Path(__file__).parent / "fixtures"


def _copy(name, tmp_path) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def _problems(listing):
    return {p.where.rsplit("/", 1)[-1]: p.reason for p in listing.problems}


def test_forgerynet_variable_segments_and_classes(tmp_path):
    root = _copy("forgerynet", tmp_path)
    listing = read_dataset("forgerynet", root)
    by_path = {r.path.split("/")[-2]: r for r in listing.records}
    assert sorted(by_path) == sorted([
        "0a3e5b1c7e2f4d", "1f0c2d4a9b8e7c", "2b9d8e1f33a4c1", "3c1a7f0e52d6b8", "4d2b6e1a73c9f0",
        "5e3c7f2b84d0a1", "a1b2c3d4e5f6a7", "b2c3d4e5f6a7b8", "c3d4e5f6a7b8c9", "d4e5f6a7b8c9d0"])
    # zero-segment fake (a whole-video class in the training list) and multi-segment lines
    assert (by_path["2b9d8e1f33a4c1"].label, by_path["2b9d8e1f33a4c1"].extra["label_16cls"]) == (1, 7)
    assert by_path["2b9d8e1f33a4c1"].extra["n_segments"] == 0
    assert by_path["4d2b6e1a73c9f0"].extra == {"label_3way": 2, "label_16cls": 5, "n_segments": 3}
    assert by_path["c3d4e5f6a7b8c9"].extra["n_segments"] == 4
    assert (by_path["5e3c7f2b84d0a1"].label, by_path["5e3c7f2b84d0a1"].extra["label_3way"]) == (0, 0)
    assert {r.split for r in listing.records if "val_video" in r.path} == {"val"}
    assert {r.split for r in listing.records if "train_video" in r.path} == {"train"}
    assert by_path["0a3e5b1c7e2f4d"].path == "Training/train_video_release/1/0a3e5b1c7e2f4d/video.mp4"
    problems = _problems(listing)
    assert problems == {
        "video_list.txt:7": "segment count 'this' is not an integer",
        "video_list.txt:8": "segment count 2 needs 6 segment fields, found 3",
        "video_list.txt:9": "binary label 1 contradicts 16-class label 17",
        "video_list.txt:10": "labels '1 x 8' are not three integers",
        "video_list.txt:11": "video train_video_release/16/1f0c2d4a9b8e7c/video.mp4".replace(
            "video train", "video Training/train") + " already listed at " + f"{root}/Training/video_list.txt:2",
        "video_list.txt:13": "segment (-5 30 1) needs start >= 0, length >= 0, fake 0 or 1",
        "video_list.txt:5": "16-class label 20 is not a ForgeryNet class (1-15 fake, 0 or 16-19 real)",
    }


def test_forgerynet_prefers_the_video_subfolder_when_it_exists(tmp_path):
    root = _copy("forgerynet", tmp_path)
    target = root / "Validation" / "video" / "val_video_release" / "2" / "a1b2c3d4e5f6a7" / "video.mp4"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    paths = {r.path for r in read_dataset("forgerynet", root).records}
    assert "Validation/video/val_video_release/2/a1b2c3d4e5f6a7/video.mp4" in paths
    assert "Validation/val_video_release/18/b2c3d4e5f6a7b8/video.mp4" in paths


def test_forgerynet_only_validation_and_missing(tmp_path):
    root = _copy("forgerynet", tmp_path)
    assert {r.split for r in read_dataset("forgerynet", root, splits=("val",)).records} == {"val"}
    with pytest.raises(InputError, match=r"has none of Training/video_list.txt, Validation/video_list.txt"):
        read_dataset("forgerynet", tmp_path / "empty")


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 1)), max_size=9),
       cls16=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 18, 19]),
       name=st.text("abcdef0123456789_/.", min_size=1, max_size=40).filter(lambda s: s.strip()))
def test_forgerynet_line_round_trip(segments, cls16, name):
    binary = int(cls16 <= 15)
    triple = 0 if not binary else 1 + cls16 % 2
    line = " ".join(map(str, [len(segments), name, *[v for seg in segments for v in seg], binary, triple, cls16]))
    assert parse_line(line) == (name, binary, triple, cls16, tuple(segments))


def test_ffpp_pairs_both_directions(tmp_path):
    root = _copy("ffpp", tmp_path)
    listing = read_dataset("ffpp", root, methods=("Deepfakes", "FaceShifter"), compression="c40")
    paths = {r.path: r for r in listing.records}
    assert paths["original_sequences/youtube/c40/videos/071.mp4"].label == 0
    assert paths["original_sequences/youtube/c40/videos/054.mp4"].split == "train"
    for method in ("Deepfakes", "FaceShifter"):
        for name in ("071_054", "054_071", "720_672", "672_720", "012_026", "026_012"):
            rec = paths[f"manipulated_sequences/{method}/c40/videos/{name}.mp4"]
            assert rec.label == 1 and rec.extra["method"] == method
            assert (rec.extra["target"], rec.extra["source"]) == tuple(name.split("_"))
    # 8 distinct valid pairs, each 2 real + 2 methods x 2 directions
    assert len(listing) == 8 * 6
    assert sum(r.split == "val" for r in listing.records) == 2 * 6
    assert not any("Face2Face" in p for p in paths)
    reasons = [p.reason for p in listing.problems]
    assert reasons[:3] == ["entry ['999'] is not a pair of video ids", "entry '123_456' is not a pair of video ids",
                           "pair ['500', '500'] pairs a video with itself"]
    assert len(reasons) == 3 + 6 and all("already listed at" in r and "train.json:[0]" in r for r in reasons[3:])


def test_ffpp_options_are_checked(tmp_path):
    root = _copy("ffpp", tmp_path)
    with pytest.raises(ConfigError, match=r"FF\+\+ methods must be a non-empty subset of .* not \['DeepFake'\]"):
        read_dataset("ffpp", root, methods=("DeepFake",))
    with pytest.raises(ConfigError, match="compression must be one of .* not 'c30'"):
        read_dataset("ffpp", root, compression="c30")
    with pytest.raises(InputError, match="has no splits"):
        read_dataset("ffpp", tmp_path)


def test_celebdf_inverted_labels_and_training_rest(tmp_path):
    root = _copy("celebdf", tmp_path)
    names = ["Celeb-real/id0_0001.mp4", "Celeb-real/id9_0009.mp4", "YouTube-real/00170.mp4",
             "YouTube-real/00208.mp4", "YouTube-real/00300.mp4", "Celeb-synthesis/id0_id16_0000.mp4",
             "Celeb-synthesis/id1_id6_0007.mp4", "Celeb-synthesis/id9_id1_0002.mp4",
             "Celeb-synthesis/id2_id3_0004.mp4", "Celeb-synthesis/notes.txt"]
    for name in names:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(b"")
    listing = read_dataset("celebdf", root)
    got = {r.path: (r.label, r.split) for r in listing.records}
    assert got == {
        "YouTube-real/00170.mp4": (0, "test"), "YouTube-real/00208.mp4": (0, "test"),
        "Celeb-synthesis/id0_id16_0000.mp4": (1, "test"), "Celeb-real/id0_0001.mp4": (0, "test"),
        "Celeb-synthesis/id1_id6_0007.mp4": (1, "test"),
        "Celeb-real/id9_0009.mp4": (0, "train"), "YouTube-real/00300.mp4": (0, "train"),
        "Celeb-synthesis/id9_id1_0002.mp4": (1, "train"),
        # listed with a contradicting label: skipped from test, so it is training data like any unlisted video
        "Celeb-synthesis/id2_id3_0004.mp4": (1, "train"),
    }
    assert [p.reason for p in listing.problems] == [
        "label 1 (real) contradicts folder Celeb-synthesis (Celeb-DF lists use 1 = real)",
        "label '2' is not 1 (real) or 0 (fake)",
        "expected '<label> <relpath>', found 3 fields",
        "path Other-folder/x.mp4 is not under one of ['Celeb-real', 'YouTube-real', 'Celeb-synthesis']",
    ]


def test_dfdc_parts(tmp_path):
    root = _copy("dfdc", tmp_path)
    listing = read_dataset("dfdc", root)
    got = {r.path: (r.label, r.extra["original"]) for r in listing.records}
    assert got == {
        "dfdc_train_part_0/aagfhgtpmv.mp4": (1, "vudstovrck.mp4"), "dfdc_train_part_0/vudstovrck.mp4": (0, ""),
        "dfdc_train_part_0/aapnvogymq.mp4": (1, "jdubbvfswz.mp4"), "dfdc_train_part_0/jdubbvfswz.mp4": (0, ""),
        "dfdc_train_part_1/abarnvbtwb.mp4": (0, ""), "dfdc_train_part_1/abofeumbvv.mp4": (1, "atvmxvwyns.mp4"),
    }
    assert {r.split for r in listing.records} == {"train"}
    assert _problems(listing) == {
        "metadata.json:badlabelxx.mp4": "label 'MAYBE' is not REAL or FAKE",
        "metadata.json:notadict00.mp4": "entry is a str, not an object",
        "metadata.json:weirdsplit.mp4": "split 'holdout' is not one of ['test', 'train', 'training', 'val', 'validation']",
    }
    single = read_dataset("dfdc", root / "dfdc_train_part_1")
    assert sorted(r.path for r in single.records) == ["abarnvbtwb.mp4", "abofeumbvv.mp4"]
    (root / "dfdc_train_part_1" / "metadata.json").write_text("{not json")
    assert len(read_dataset("dfdc", root)) == 4
    with pytest.raises(InputError, match="has no metadata.json"):
        read_dataset("dfdc", tmp_path / "nothing")


def test_csv_list(tmp_path):
    root = _copy("csv", tmp_path)
    for listing in (read_dataset("csv", root), read_dataset("csv", root / "videos.csv")):
        got = {r.path: (r.label, r.split) for r in listing.records}
        assert got == {"clips/a.mp4": (0, "train"), "clips/b.mp4": (1, "val"), "clips/c.mp4": (1, "test"),
                       "clips/d.mp4": (0, "train")}
        assert [(p.where.rsplit(":", 1)[-1], p.reason) for p in listing.problems] == [
            ("6", "label '2' is not 0, 1, real or fake"),
            ("7", "split 'dev' is not one of ('train', 'val', 'test')"),
            ("8", "empty path"),
            ("9", "expected 'path,label[,split]', found 1 fields"),
            ("10", f"video clips/a.mp4 already listed at {root}/videos.csv:2"),
        ]
        assert listing.resolve(listing.records[0]) == root / "clips/a.mp4"
    with pytest.raises(InputError, match="does not exist"):
        read_dataset("csv", tmp_path / "missing.csv")


def test_unknown_dataset():
    with pytest.raises(ConfigError, match=r"dataset must be one of \['celebdf', 'csv', 'dfdc', 'ffpp', 'forgerynet'\], not 'ucf'"):
        read_dataset("ucf", ".")
    assert set(READERS) == {"forgerynet", "ffpp", "celebdf", "dfdc", "csv"}
