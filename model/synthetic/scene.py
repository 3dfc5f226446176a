"""Rendering one synthetic face video: textured background, head, eyes (blinking), mouth (talking).

Everything is drawn in float32 RGB in [0, 1] with OpenCV primitives.  A :class:`Identity` fixes
how a face looks; a :class:`Motion` fixes where it is and what it does at each frame, so a
second identity can be rendered with exactly the motion of the first (the basis of a face swap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.89, 0.72, 0.58], [0.78, 0.57, 0.43], [0.63, 0.44, 0.31],
    [0.47, 0.32, 0.22], [0.93, 0.76, 0.62], [0.84, 0.64, 0.50],
], dtype=np.float32)
HAIR_COLOURS = np.array([[0.1, 0.07, 0.05], [0.35, 0.22, 0.1], [0.6, 0.45, 0.2], [0.2, 0.2, 0.2]], dtype=np.float32)
#: A close-up, as in face-cropped datasets: the head covers about a third of the frame.
FACE_SCALE = 1.3
IRIS_COLOURS = np.array([[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.25, 0.4, 0.25], [0.1, 0.1, 0.1]], dtype=np.float32)


@dataclass(frozen=True)
class Identity:
    """How a face looks: proportions and colours, all relative to the frame size."""

    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    head_axes: tuple[float, float]
    eye_spacing: float
    eye_height: float
    eye_size: float
    mouth_width: float
    mouth_y: float
    brow_tilt: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Identity:
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
        return cls(
            skin=np.clip(skin, 0, 1),
            hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
            iris=IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
            head_axes=(FACE_SCALE * rng.uniform(0.20, 0.25), FACE_SCALE * rng.uniform(0.27, 0.32)),
            eye_spacing=FACE_SCALE * rng.uniform(0.075, 0.105),
            eye_height=FACE_SCALE * rng.uniform(-0.07, -0.03),
            eye_size=FACE_SCALE * rng.uniform(0.028, 0.042),
            mouth_width=FACE_SCALE * rng.uniform(0.055, 0.09),
            mouth_y=FACE_SCALE * rng.uniform(0.11, 0.15),
            brow_tilt=rng.uniform(-0.015, 0.015),
        )


@dataclass(frozen=True)
class Motion:
    """Per-frame pose and expression of a face, smooth in time (F frames)."""

    centre: np.ndarray     # [F, 2] head centre (x, y), fraction of the frame
    tilt: np.ndarray       # [F] degrees
    eye_open: np.ndarray   # [F] 1 open, 0 closed (blinks)
    mouth_open: np.ndarray  # [F] 0..1
    light: np.ndarray      # [F] brightness gain of the head: a slow ramp (a cloud, auto-exposure)
    tint: np.ndarray       # [F, 3] colour cast of the head: a slow white-balance drift
    pan: np.ndarray        # [F, 2] background offset in pixels

    @classmethod
    def random(cls, rng: np.random.Generator, frames: int, size: int) -> Motion:
        t = np.arange(frames, dtype=np.float32)
        phase = rng.uniform(0, 2 * np.pi, 4)
        period = rng.uniform(24, 60, 4)
        centre = np.stack([
            0.5 + rng.uniform(0.01, 0.04) * np.sin(2 * np.pi * t / period[0] + phase[0]),
            0.5 + rng.uniform(0.01, 0.02) * np.sin(2 * np.pi * t / period[1] + phase[1]),
        ], axis=1)
        tilt = rng.uniform(2, 8) * np.sin(2 * np.pi * t / period[2] + phase[2])
        eye_open = np.ones(frames, dtype=np.float32)
        for start in np.flatnonzero(rng.random(frames) < 0.06):
            eye_open[start:start + 3] = (0.1, 0.0, 0.5)[: len(eye_open[start:start + 3])]
        talk = 0.5 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(6, 12) + phase[3])
        mouth_open = np.clip(talk * rng.uniform(0.2, 0.9), 0, 1)
        # Two fifths to two thirds of a period of a slow sinusoid over the video: a smooth sweep of the light.
        sweep = 2 * np.pi * t / (frames * rng.uniform(1.5, 2.5)) + rng.uniform(0, 2 * np.pi)
        light = rng.uniform(0.85, 1.15) * (1 + rng.uniform(0.3, 0.45) * np.sin(sweep))
        tint = 1 + rng.uniform(0.03, 0.08, 3) * np.sin(sweep[:, None] + rng.uniform(0, 2 * np.pi, 3))
        pan = np.stack([t * rng.uniform(-0.3, 0.3), t * rng.uniform(-0.2, 0.2)], axis=1) * size / 112
        return cls(centre.astype(np.float32), tilt.astype(np.float32), eye_open, mouth_open.astype(np.float32),
                   light.astype(np.float32), tint.astype(np.float32), pan.astype(np.float32))


def background_texture(rng: np.random.Generator, size: int, margin: int) -> np.ndarray:
    """A smooth colour noise field with a few stripes, ``size + 2·margin`` square."""
    import cv2

    side = size + 2 * margin
    coarse = rng.random((max(2, side // 16), max(2, side // 16), 3)).astype(np.float32)
    texture = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((side, side, 3)).astype(np.float32), (0, 0), 1.0)
    base = rng.uniform(0.2, 0.8, 3).astype(np.float32)
    texture = 0.5 * base + 0.35 * texture + 0.15 * fine
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    stripes = 0.5 + 0.5 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / rng.uniform(8, 24) * 112 / size)
    texture = texture * (0.85 + 0.15 * stripes[..., None])
    return np.clip(texture, 0, 1).astype(np.float32)


def background_frame(texture: np.ndarray, pan: np.ndarray, size: int) -> np.ndarray:
    margin = (texture.shape[0] - size) // 2
    dx, dy = np.clip(np.round(pan).astype(int), -margin, margin)
    return texture[margin + dy:margin + dy + size, margin + dx:margin + dx + size].copy()


def _pt(x: float, y: float, size: int) -> tuple[int, int]:
    return int(round(x * size * 16)), int(round(y * size * 16))


def _axes(a: float, b: float, size: int) -> tuple[int, int]:
    return max(1, int(round(a * size * 16))), max(1, int(round(b * size * 16)))


def _ellipse(img, centre, axes, angle, colour, size, thickness=-1):
    import cv2

    cv2.ellipse(img, _pt(*centre, size), _axes(*axes, size), float(angle), 0, 360,
                tuple(float(c) for c in colour), thickness, cv2.LINE_AA, 4)


def _rotate(dx: float, dy: float, degrees: float) -> tuple[float, float]:
    r = np.deg2rad(degrees)
    return dx * np.cos(r) - dy * np.sin(r), dx * np.sin(r) + dy * np.cos(r)


def draw_head(frame: np.ndarray, identity: Identity, motion: Motion, t: int, *, skin=None) -> None:
    """Draw neck, hair and head (skin only) of ``identity`` at frame ``t`` onto ``frame``."""
    size = frame.shape[0]
    cx, cy = motion.centre[t]
    tilt = motion.tilt[t]
    ax, ay = identity.head_axes
    skin = identity.skin if skin is None else skin
    shade = skin * motion.light[t] * motion.tint[t]
    _ellipse(frame, (cx, cy + ay * 0.95), (ax * 0.55, ay * 0.5), 0, shade * 0.85, size)          # neck
    _ellipse(frame, (cx, cy - ay * 0.12), (ax * 1.08, ay * 1.0), tilt, identity.hair, size)      # hair
    _ellipse(frame, (cx, cy), (ax, ay), tilt, shade, size)                                         # face


def draw_features(frame: np.ndarray, identity: Identity, motion: Motion, t: int, *, light=None) -> None:
    """Draw eyes, brows, nose and mouth of ``identity`` at frame ``t`` (the swappable inner face)."""
    size = frame.shape[0]
    cx, cy = motion.centre[t]
    tilt = motion.tilt[t]
    light = motion.light[t] * motion.tint[t] if light is None else light
    for side in (-1, 1):
        ex, ey = _rotate(side * identity.eye_spacing, identity.eye_height, tilt)
        opening = max(0.08, float(motion.eye_open[t]))
        _ellipse(frame, (cx + ex, cy + ey), (identity.eye_size, identity.eye_size * 0.6 * opening), tilt,
                 np.array([0.95, 0.95, 0.92]) * light, size)
        if opening > 0.3:
            _ellipse(frame, (cx + ex, cy + ey), (identity.eye_size * 0.45, identity.eye_size * 0.45 * opening), 0,
                     identity.iris * light, size)
        bx, by = _rotate(side * identity.eye_spacing, identity.eye_height - identity.eye_size * 1.2, tilt)
        _ellipse(frame, (cx + bx, cy + by), (identity.eye_size * 1.1, identity.eye_size * 0.22),
                 tilt + side * np.rad2deg(identity.brow_tilt) * 10, identity.hair * light, size)
    nx, ny = _rotate(0, 0.04, tilt)
    _ellipse(frame, (cx + nx, cy + ny), (0.012, 0.03), tilt, identity.skin * 0.8 * light, size)
    mx, my = _rotate(0, identity.mouth_y, tilt)
    _ellipse(frame, (cx + mx, cy + my), (identity.mouth_width, 0.008 + 0.03 * motion.mouth_open[t]), tilt,
             np.array([0.6, 0.15, 0.18]) * light, size)


def inner_face_mask(size: int, identity: Identity, motion: Motion, t: int, *, shrink: float = 0.85,
                    offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Float ``[H, W]`` mask of the inner face (eyes to chin), 1 inside."""
    mask = np.zeros((size, size), dtype=np.float32)
    cx, cy = motion.centre[t]
    ax, ay = identity.head_axes
    _ellipse(mask, (cx + offset[0], cy + offset[1] + 0.03), (ax * shrink, ay * shrink * 0.85), motion.tilt[t], (1.0,), size)
    return mask


def render_real(size: int, identity: Identity, motion: Motion, texture: np.ndarray, t: int) -> np.ndarray:
    """Frame ``t`` of a genuine video of ``identity``."""
    frame = background_frame(texture, motion.pan[t], size)
    draw_head(frame, identity, motion, t)
    draw_features(frame, identity, motion, t)
    return frame
