"""Forged versions of a synthetic video: a different face blended into the face region.

Artifact kinds:

``spatial``
    The source face keeps its own skin tone (a colour mismatch with the target's head), is
    blurred (a low-resolution synthesis) and pasted with a hard-edged mask (a blend seam).  The
    same in every frame: one frame shows it.
``temporal``
    Colour-matched, feathered, sharp: every single frame is a plausible face.  The forgery shows
    only over time.  The head's lighting and colour cast (a slow, smooth sweep in genuine videos)
    are those of a genuine video taken in shuffled frame order: the face flickers from frame to
    frame through exactly the levels a real video passes through, so the per-frame levels, and
    their average over the video, are those of a real video; only their order is wrong.  On top,
    one of: the blend mask drifts from frame to frame, the pasted identity flips at random
    between two sources, or the identity is swapped mid-video.
``both``
    The spatial artifacts and the temporal ones together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lstmfpga.model.synthetic.scene import (
    Identity,
    Motion,
    background_frame,
    draw_features,
    draw_head,
    inner_face_mask,
    render_real,
)

KINDS = ("spatial", "temporal", "both")
TEMPORAL_MECHANISMS = ("drift", "flip", "swap")
#: Per-frame mask drift, fraction of the frame side, i.i.d. per frame and axis.
DRIFT = 0.035


@dataclass(frozen=True)
class ForgeryPlan:
    """Everything random about one forgery, drawn once per video."""

    kind: str
    mechanism: str | None
    sources: tuple[Identity, Identity]
    order: np.ndarray      # [F] frame t takes the lighting of frame order[t] (identity unless temporal)
    offsets: np.ndarray    # [F, 2] mask/face offset per frame
    use_second: np.ndarray  # [F] bool: the second source identity is pasted at this frame
    blur: int

    @classmethod
    def random(cls, kind: str, rng: np.random.Generator, frames: int) -> ForgeryPlan:
        if kind not in KINDS:
            raise ValueError(f"forgery kind must be one of {KINDS}, not {kind!r}")
        temporal = kind in ("temporal", "both")
        mechanism = TEMPORAL_MECHANISMS[rng.integers(len(TEMPORAL_MECHANISMS))] if temporal else None
        order = np.arange(frames)
        if temporal:
            order = _scramble(rng, frames)
        offsets = np.zeros((frames, 2), np.float32)
        use_second = np.zeros(frames, bool)
        if mechanism == "drift":
            offsets = rng.uniform(-DRIFT, DRIFT, (frames, 2)).astype(np.float32)
        elif mechanism == "flip":
            use_second = rng.random(frames) < 0.5
        elif mechanism == "swap":
            use_second[int(frames * rng.uniform(0.35, 0.65)):] = True
        sources = (Identity.random(rng), Identity.random(rng))
        return cls(kind, mechanism, sources, order, offsets, use_second, blur=int(rng.integers(2, 4)))

    @property
    def segments(self) -> tuple[tuple[int, int, int], ...]:
        """ForgeryNet-style ``(start, length, fake)`` segments (empty: the whole video)."""
        frames = len(self.order)
        if self.mechanism == "swap":
            cut = int(np.argmax(self.use_second))
            return ((0, cut, 1), (cut, frames - cut, 1))
        if self.kind == "spatial":
            return ((0, frames, 1),)
        return ()


def _scramble(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A random frame order in which no two neighbours stay neighbours (when that is possible)."""
    order = rng.permutation(frames)
    for _ in range(100):
        if frames < 4 or np.all(np.abs(np.diff(order)) > 1):
            break
        order = rng.permutation(frames)
    return order


def _blur(image: np.ndarray, factor: int) -> np.ndarray:
    import cv2

    size = image.shape[0]
    small = cv2.resize(image, (max(2, size // factor), max(2, size // factor)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def render_fake(size: int, target: Identity, motion: Motion, texture: np.ndarray, t: int, plan: ForgeryPlan) -> np.ndarray:
    """Frame ``t`` of a forgery of the ``target`` video under ``plan``."""
    import cv2

    spatial = plan.kind in ("spatial", "both")
    lit = replace(motion, light=motion.light[plan.order], tint=motion.tint[plan.order])
    frame = render_real(size, target, lit, texture, t)
    source = plan.sources[int(plan.use_second[t])]
    if not spatial:
        source = replace(source, skin=target.skin, head_axes=target.head_axes)
    offset = tuple(float(v) for v in plan.offsets[t])
    moved = replace(lit, centre=motion.centre + plan.offsets)
    pasted = background_frame(texture, motion.pan[t], size)
    draw_head(pasted, source, moved, t)
    draw_features(pasted, source, moved, t)
    mask = inner_face_mask(size, target, motion, t, offset=offset)
    if spatial:
        pasted = _blur(pasted, plan.blur)
    else:
        mask = cv2.GaussianBlur(mask, (0, 0), size / 50)
    mask = mask[..., None]
    return frame * (1 - mask) + pasted * mask
