"""Decoding a video with PyAV and sampling T frames uniformly.

Sampling rule: frame ``i`` of ``T`` is source frame ``floor((i + 1/2) · n / T)``, the centre of
the i-th of T equal bins of an ``n``-frame video.  For ``n ≥ T`` the indices are distinct and
spread over the whole video.  A video shorter than T is *repeat-padded* by the same formula
(uniform sampling with replacement, still in time order: every source frame appears once or
twice, adjacent repeats) and flagged ``padded``; it is not an error.  A video with no decodable
frame is, and so is an image file under a video name (a PNG renamed ``.mp4``): FFmpeg opens it
as a one-frame stream, which padding would turn into a still "video".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.validation import is_integer


class VideoDecodeError(InputError):
    """A video that cannot be used: missing, unreadable, corrupt, an image, or without frames."""


#: FFmpeg demuxers of still images: the ``*_pipe`` family (png_pipe, jpeg_pipe, webp_pipe, ...),
#: ``image2`` and the animated-image formats.
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng", "webp"})


def _is_image_format(name: str) -> bool:
    return any(n.endswith("_pipe") or n in _IMAGE_DEMUXERS for n in name.split(","))


def sample_indices(n_frames: int, t: int) -> tuple[np.ndarray, bool]:
    """Indices of T frames sampled uniformly from ``n_frames``, and whether the video was padded."""
    if not is_integer(t, numpy=True) or t < 1:
        raise ConfigError(f"frames per video must be a positive integer, not {t!r}")
    if n_frames < 1:
        raise InputError(f"cannot sample {t} frames from a video of {n_frames} frames")
    indices = ((np.arange(t) * 2 + 1) * n_frames) // (2 * t)
    return indices.astype(np.int64), n_frames < t


@dataclass(frozen=True, eq=False)
class DecodedClip:
    """T frames of one video.

    Attributes
    ----------
    frames : np.ndarray
        uint8 ``[T, H, W, 3]`` RGB.
    source_frames : int
        Frames in the whole video.
    indices : np.ndarray
        Which source frames were taken.
    padded : bool
        The video had fewer than T frames (repeat-padded).
    """

    frames: np.ndarray
    source_frames: int
    indices: np.ndarray
    padded: bool


def _open(path: Path):
    import av

    if not path.exists():
        raise VideoDecodeError(f"video {path} does not exist")
    if not path.is_file():
        raise VideoDecodeError(f"video {path} is not a file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"video {path} is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(f"video {path} cannot be opened: {exc}") from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"video {path} has no video stream")
    if _is_image_format(container.format.name):
        container.close()
        raise VideoDecodeError(f"video {path} is an image ({container.format.long_name}), not a video")
    return container


def count_frames(path) -> int:
    """Frames in a video by demuxing its packets (no decoding): exact for the usual codecs."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(f"video {path} cannot be read: {exc}") from None
    finally:
        container.close()


def _decode_selected(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """Decode the whole video once, keeping the frames in ``wanted``; also return the count."""
    import av

    container = _open(path)
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if count in wanted:
                kept[count] = frame.to_ndarray(format="rgb24")
            count += 1
    except (av.FFmpegError, OSError, ValueError) as exc:
        if count == 0:
            raise VideoDecodeError(f"video {path} cannot be decoded: {exc}") from None
        # A damaged tail: the frames before it are the video.
    finally:
        container.close()
    return kept, count


def decode_clip(path, t: int) -> DecodedClip:
    """Decode T uniformly sampled RGB frames of a video (see the module docstring for the rule).

    Raises
    ------
    VideoDecodeError
        The file is missing, empty, not a video, or has no decodable frame.
    """
    path = Path(path)
    estimate = count_frames(path)
    if estimate == 0:
        raise VideoDecodeError(f"video {path} has no video frames")
    indices, padded = sample_indices(estimate, t)
    kept, decoded = _decode_selected(path, set(indices.tolist()))
    if decoded == 0:
        raise VideoDecodeError(f"video {path} has no decodable frames")
    if decoded != estimate:
        # Packets that do not decode (a truncated or damaged file): resample over what decodes.
        indices, padded = sample_indices(decoded, t)
        kept, decoded_again = _decode_selected(path, set(indices.tolist()))
        if decoded_again != decoded:
            raise VideoDecodeError(f"video {path} decodes to {decoded} then {decoded_again} frames")
    frames = np.stack([kept[i] for i in indices.tolist()])
    return DecodedClip(frames=frames, source_frames=decoded, indices=indices, padded=padded)
