"""Writing RGB frames to an mp4 file with PyAV (H.264 where the wheel has it, else MPEG-4 Part 2)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lstmfpga.foundation.atomic import atomic_path

FPS = 25


@lru_cache(maxsize=1)
def video_codec() -> str:
    """The best encoder this PyAV build offers."""
    import av

    for name in ("libx264", "h264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:  # UnknownCodecError and friends
            continue
        return name
    raise RuntimeError("this PyAV build has neither an H.264 nor an MPEG-4 encoder")


def write_mp4(path, frames: np.ndarray, *, fps: int = FPS) -> None:
    """Write uint8 ``[F, H, W, 3]`` RGB frames (H, W even) to ``path`` atomically."""
    import av
    import cv2

    codec = video_codec()
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w") as container:
        # Near-lossless (small artifacts survive), single-threaded and without macroblock-tree rate
        # control: with mbtree, this libx264 reads uninitialised memory and the bytes vary run to run.
        options = {"crf": "14", "preset": "medium", "threads": "1", "x264-params": "mbtree=0:rc-lookahead=0"} \
            if codec == "libx264" else {"qscale": "2"}
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for image in frames:
            # BT.601 4:2:0 planes from OpenCV: the encoder gets exactly these, no implicit conversion.
            yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
