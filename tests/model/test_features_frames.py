"""Frame sampling, decoding, cropping and the ResNet-50 trunk, against independent references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmfpga.foundation.errors import ArtifactError, ConfigError, InputError
from lstmfpga.model.face_crop import FaceCropper, centre_crop
from lstmfpga.model.frames import VideoDecodeError, decode_clip, sample_indices
from lstmfpga.model.synthetic.video_writer import write_mp4


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), t=st.integers(1, 64))
def test_sample_indices_are_bin_centres(n, t):
    indices, padded = sample_indices(n, t)
    reference = [int((Fraction(2 * i + 1, 2 * t) * n)) for i in range(t)]  # floor of the centre of bin i
    assert indices.tolist() == reference
    assert padded == (n < t)
    assert np.all(np.diff(indices) >= 0) and indices.min() >= 0 and indices.max() < n
    if n >= t:
        assert len(set(indices.tolist())) == t
    else:
        assert set(indices.tolist()) == set(range(n))  # every frame of a short video is used


def test_sample_indices_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="frames per video must be a positive integer, not 0"):
        sample_indices(10, 0)
    with pytest.raises(InputError, match="cannot sample 8 frames from a video of 0 frames"):
        sample_indices(0, 8)


def _level_video(path, n_frames, height=34, width=50):
    """Frame i is flat grey at level 12 + 9·i (distinct after lossy coding)."""
    levels = 12 + 9 * np.arange(n_frames)
    frames = np.broadcast_to(levels[:, None, None, None], (n_frames, height, width, 3)).astype(np.uint8)
    write_mp4(path, np.ascontiguousarray(frames))
    return levels


@pytest.mark.parametrize("n_frames,t", [(1, 8), (7, 8), (8, 8), (13, 8), (25, 24), (23, 16)])
def test_decode_takes_the_sampled_frames(tmp_path, n_frames, t):
    levels = _level_video(tmp_path / "v.mp4", n_frames)
    clip = decode_clip(tmp_path / "v.mp4", t)
    expected, padded = sample_indices(n_frames, t)
    assert clip.frames.shape == (t, 34, 50, 3) and clip.frames.dtype == np.uint8
    assert clip.source_frames == n_frames and clip.padded == padded
    np.testing.assert_array_equal(clip.indices, expected)
    recovered = np.abs(clip.frames.reshape(t, -1).mean(1)[:, None] - levels[None]).argmin(1)
    np.testing.assert_array_equal(recovered, expected)


def test_decode_errors_name_the_file(tmp_path):
    with pytest.raises(VideoDecodeError, match=rf"video {tmp_path / 'none.mp4'} does not exist"):
        decode_clip(tmp_path / "none.mp4", 8)
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=r"zero.mp4 is empty \(0 bytes\)"):
        decode_clip(tmp_path / "zero.mp4", 8)
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoDecodeError, match="junk.mp4 cannot be opened"):
        decode_clip(tmp_path / "junk.mp4", 8)


@pytest.mark.parametrize("shape,size", [((3, 34, 50, 3), 32), ((2, 61, 40, 3), 17), ((1, 64, 64, 3), 64)])
def test_centre_crop_matches_slicing(shape, size):
    import cv2

    frames = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    h, w = shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crops = centre_crop(frames, size)
    assert crops.shape == (shape[0], size, size, 3)
    for frame, crop in zip(frames, crops):
        square = frame[top:top + side, left:left + side]
        reference = square if side == size else cv2.resize(
            square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
        np.testing.assert_array_equal(crop, reference)


def test_face_crop_falls_back_and_fills_from_the_nearest_detection(monkeypatch):
    frames = np.random.default_rng(2).integers(0, 256, (5, 60, 80, 3), dtype=np.uint8)
    cropper = FaceCropper(size=24)
    crops, found = cropper(frames)  # noise has no face: the centre crop
    assert found == 0
    np.testing.assert_array_equal(crops, centre_crop(frames, 24))

    boxes = {1: (5, 10, 40), 3: (0, 30, 50)}
    monkeypatch.setattr(FaceCropper, "detect", lambda self, frame, cascade=None: boxes.get(
        next(i for i, f in enumerate(frames) if f is frame or np.shares_memory(f, frame))))
    crops, found = cropper(frames)
    assert found == 2
    nearest = {0: 1, 1: 1, 2: 1, 3: 3, 4: 3}  # ties go to the earlier detection
    for i, j in nearest.items():
        top, left, side = boxes[j]
        np.testing.assert_array_equal(crops[i], centre_crop(frames[i:i + 1, top:top + side, left:left + side], 24)[0])
    with pytest.raises(ConfigError, match="face crop margin must be a number in"):
        FaceCropper(size=24, margin=5)


@pytest.mark.slow
def test_backbone_seeded_file_weights_and_errors(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from lstmfpga.model.backbone import FrameEncoder, build_backbone

    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b, c = (build_backbone("random", seed=s) for s in (7, 7, 8))
    with torch.inference_mode():
        ya, yb, yc = a(x), b(x), c(x)
    assert ya.shape == (3, 2048)
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)

    state = {f"module.{k}": v for k, v in a.state_dict().items()}  # as saved from DataParallel
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    from_file = build_backbone(str(tmp_path / "w.pth"), seed=99)
    with torch.inference_mode():
        assert torch.equal(from_file(x), ya)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ArtifactError, match="bad.pth do not fit ResNet-50"):
        build_backbone(str(tmp_path / "bad.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(ArtifactError, match="junk.pth cannot be read as a torch state dict"):
        build_backbone(str(tmp_path / "junk.pth"))

    from torchvision.models import ResNet50_Weights

    def offline(self, *args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(type(ResNet50_Weights.IMAGENET1K_V2), "get_state_dict", offline)
    with pytest.raises(ConfigError, match="cannot reach it .*--backbone-weights PATH"):
        build_backbone("imagenet")

    encoder = FrameEncoder(weights="random", seed=7)
    frames = np.random.default_rng(3).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    features = encoder(frames)
    from lstmfpga.model.backbone import to_input

    with torch.inference_mode():
        np.testing.assert_allclose(features, a(to_input(frames, "cpu")).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="device must be 'cpu' or 'cuda', not 'tpu'"):
        FrameEncoder(device="tpu")
