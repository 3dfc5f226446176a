"""``lstmfpga synth-data``: a small deepfake dataset in ForgeryNet's own layout.

Writes ``Training/`` and ``Validation/`` folders, each with ``video_list.txt`` in ForgeryNet's
line format, the videos under ``video/<split>_video_release/<class>/<id>/video.mp4``, and a
``synthetic_meta.json`` sidecar mapping every listed path to its artifact kind
(``none`` | ``spatial`` | ``temporal`` | ``both``).

Labels: real videos are ForgeryNet real-source classes 16–19 (3-way 0); fakes are class 1
(spatial), 2 (temporal) or 3 (both), 3-way 1 (identity replaced).  Segments: spatial fakes one
whole-video segment, mid-video identity swaps two segments, other fakes and reals none.

Deterministic: everything random is drawn from ``numpy.random.default_rng([seed, ...])`` keyed by the
video index (a fake draws its scene from its real video's key), and the
encoder runs single-threaded, so one seed gives the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmfpga.foundation.atomic import atomic_write_bytes
from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import is_integer
from lstmfpga.model.synthetic.forgery import KINDS, ForgeryPlan, render_fake
from lstmfpga.model.synthetic.scene import Identity, Motion, background_texture, render_real
from lstmfpga.model.synthetic.video_writer import write_mp4

SPLIT_LAYOUT = {"train": ("Training", "train_video_release"), "val": ("Validation", "val_video_release")}
FAKE_CLASS = {"spatial": 1, "temporal": 2, "both": 3}
REAL_CLASSES = (16, 17, 18, 19)
NOISE = 0.01


@dataclass(frozen=True)
class SynthConfig:
    """What ``synth-data`` makes.

    Parameters
    ----------
    videos : int
        Number of videos (>= 2).
    frames : int
        Frames per video (>= 1).
    size : int
        Frame side in pixels (even, >= 32).
    seed : int
        Seed of everything random.
    fake_fraction : float
        Share of fakes, split evenly over ``fake_kinds``.
    val_fraction : float
        Share of the real videos (with their forgeries) put into Validation.
    fake_kinds : tuple of str
        Artifact kinds of the fakes, used in turn.
    """

    videos: int = 64
    frames: int = 32
    size: int = 112
    seed: int = 0
    fake_fraction: float = 0.5
    val_fraction: float = 0.25
    fake_kinds: tuple[str, ...] = KINDS

    def __post_init__(self):
        if not is_integer(self.videos, numpy=True) or self.videos < 2:
            raise ConfigError(f"videos must be an integer >= 2, not {self.videos!r}")
        if not is_integer(self.frames, numpy=True) or self.frames < 1:
            raise ConfigError(f"frames must be a positive integer, not {self.frames!r}")
        if not is_integer(self.size, numpy=True) or self.size < 32 or self.size % 2:
            raise ConfigError(f"size must be an even integer >= 32 (4:2:0 video), not {self.size!r}")
        if not is_integer(self.seed, numpy=True) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, not {self.seed!r}")
        if not 0 < self.fake_fraction < 1:
            raise ConfigError(f"fake_fraction must be in (0, 1), not {self.fake_fraction!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), not {self.val_fraction!r}")
        if not self.fake_kinds or any(k not in KINDS for k in self.fake_kinds):
            raise ConfigError(f"fake_kinds must be a non-empty sequence of {KINDS}, not {self.fake_kinds!r}")
        object.__setattr__(self, "fake_kinds", tuple(self.fake_kinds))


@dataclass(frozen=True)
class PlannedVideo:
    index: int
    kind: str      # 'none' for real videos
    split: str
    target: int    # the real video this one shows (itself for a real video)

    @property
    def video_id(self) -> str:
        return f"synth{self.index:05d}"


def plan_videos(config: SynthConfig) -> list[PlannedVideo]:
    """Which videos are real, which are forgeries of which real video, and the splits.

    As in FaceForensics++ and ForgeryNet, every fake is a forgery of one of the real videos
    (same person, motion and background), and lies in the same split as it: identity alone
    never tells real from fake, and no person crosses from training into validation.
    """
    n_fake = int(round(config.videos * config.fake_fraction))
    n_real = config.videos - n_fake
    period = max(2, int(round(1 / config.val_fraction)))
    # Every period-th real video (and so its forgeries) goes to Validation.
    real_split = ["val" if r % period == period - 1 else "train" for r in range(n_real)]
    planned = [PlannedVideo(r, "none", real_split[r], r) for r in range(n_real)]
    for k in range(n_fake):
        target = k % n_real
        kind = config.fake_kinds[k % len(config.fake_kinds)]
        planned.append(PlannedVideo(n_real + k, kind, real_split[target], target))
    return planned


def render_video(config: SynthConfig, video: PlannedVideo) -> tuple[np.ndarray, tuple]:
    """uint8 ``[F, H, W, 3]`` frames of one planned video, and its ForgeryNet segments."""
    scene_rng = np.random.default_rng([config.seed, video.target])
    size, frames = config.size, config.frames
    target = Identity.random(scene_rng)
    motion = Motion.random(scene_rng, frames, size)
    texture = background_texture(scene_rng, size, margin=size // 4)
    plan = None
    if video.kind != "none":
        plan = ForgeryPlan.random(video.kind, np.random.default_rng([config.seed, video.index, 3]), frames)
    noise_rng = np.random.default_rng([config.seed, video.index, 1])
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        frame = render_real(size, target, motion, texture, t) if plan is None else render_fake(size, target, motion, texture, t, plan)
        frame = frame + noise_rng.normal(0, NOISE, frame.shape).astype(np.float32)
        out[t] = np.clip(np.round(frame * 255), 0, 255).astype(np.uint8)
    return out, (plan.segments if plan is not None else ())


def list_line(n_segments_fields: tuple, relpath: str, binary: int, triple: int, cls16: int) -> str:
    fields = [len(n_segments_fields), relpath, *[v for seg in n_segments_fields for v in seg], binary, triple, cls16]
    return " ".join(str(f) for f in fields)


def generate_dataset(out, config: SynthConfig = SynthConfig(), *, progress: bool = True) -> dict:
    """Write the synthetic dataset under ``out``; return counts per split and kind."""
    from tqdm import tqdm

    out = Path(out)
    planned = plan_videos(config)
    lines: dict[str, list[str]] = {split: [] for split in SPLIT_LAYOUT}
    kinds: dict[str, dict[str, str]] = {split: {} for split in SPLIT_LAYOUT}
    counts: dict[str, dict[str, int]] = {split: {} for split in SPLIT_LAYOUT}
    for video in tqdm(planned, desc="synth-data", unit="video", disable=not progress):
        folder, release = SPLIT_LAYOUT[video.split]
        rng = np.random.default_rng([config.seed, video.index, 2])
        cls16 = FAKE_CLASS[video.kind] if video.kind != "none" else int(rng.choice(REAL_CLASSES))
        relpath = f"{release}/{cls16}/{video.video_id}/video.mp4"
        path = out / folder / "video" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        frames, segments = render_video(config, video)
        write_mp4(path, frames)
        fake = int(video.kind != "none")
        lines[video.split].append(list_line(segments, relpath, fake, fake, cls16))
        kinds[video.split][relpath] = video.kind
        counts[video.split][video.kind] = counts[video.split].get(video.kind, 0) + 1
    for split, (folder, _) in SPLIT_LAYOUT.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / folder / "video_list.txt", "".join(f"{line}\n" for line in lines[split]).encode())
        atomic_write_bytes(out / folder / "synthetic_meta.json", json.dumps(kinds[split], indent=1, sort_keys=True).encode())
    return counts
