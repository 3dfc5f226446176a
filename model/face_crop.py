"""Square crops of the face (OpenCV Haar cascade) or of the frame centre, resized for the backbone.

Faces are detected on each sampled frame; a frame without a detection takes the box of the
nearest frame that has one, and a clip without any detection falls back to the centre crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import is_integer

CASCADE_NAME = "haarcascade_frontalface_default.xml"
#: Detection runs on frames scaled so that their short side is at most this (speed).
DETECT_SIDE = 320


def _check_size(size) -> int:
    if not is_integer(size, numpy=True) or size < 8:
        raise ConfigError(f"image size must be an integer >= 8, not {size!r}")
    return int(size)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def centre_box(height: int, width: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the largest centred square."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def crop_box(frame: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    top, left, side = box
    return _resize(frame[top:top + side, left:left + side], size)


def centre_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre square of each ``[T, H, W, 3]`` frame, resized to ``size × size``."""
    size = _check_size(size)
    box = centre_box(*frames.shape[1:3])
    return np.stack([crop_box(f, box, size) for f in frames])


@dataclass(frozen=True)
class FaceCropper:
    """Crops the largest detected face, enlarged by ``margin``, to a square of ``size``.

    Parameters
    ----------
    size : int
        Output side in pixels.
    margin : float
        The square's side as a multiple of the detected face's side (context around the face).
    """

    size: int
    margin: float = 1.3

    def __post_init__(self):
        _check_size(self.size)
        if not isinstance(self.margin, (int, float)) or not 1.0 <= self.margin <= 3.0:
            raise ConfigError(f"face crop margin must be a number in [1, 3], not {self.margin!r}")

    @staticmethod
    def _cascade():
        import cv2

        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_NAME)
        if cascade.empty():
            raise ConfigError(f"OpenCV has no {CASCADE_NAME} (install opencv-python-headless<5)")
        return cascade

    def detect(self, frame: np.ndarray, cascade=None) -> tuple[int, int, int] | None:
        """The face square ``(top, left, side)`` in ``frame``, or None."""
        import cv2

        cascade = cascade or self._cascade()
        height, width = frame.shape[:2]
        scale = min(1.0, DETECT_SIDE / min(height, width))
        small = cv2.resize(frame, (round(width * scale), round(height * scale))) if scale < 1 else frame
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        min_side = max(12, min(gray.shape) // 8)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3]) / scale
        side = min(round(max(w, h) * self.margin), height, width)
        top = int(np.clip(round(y + h / 2 - side / 2), 0, height - side))
        left = int(np.clip(round(x + w / 2 - side / 2), 0, width - side))
        return top, left, side

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, int]:
        """Crop each of ``[T, H, W, 3]`` frames; return the crops and how many frames had a face."""
        cascade = self._cascade()
        boxes = [self.detect(frame, cascade) for frame in frames]
        found = [i for i, box in enumerate(boxes) if box is not None]
        if not found:
            return centre_crop(frames, self.size), 0
        crops = []
        for i, frame in enumerate(frames):
            nearest = min(found, key=lambda j: abs(j - i))
            crops.append(crop_box(frame, boxes[nearest], self.size))
        return np.stack(crops), len(found)
