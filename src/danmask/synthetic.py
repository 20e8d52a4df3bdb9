"""Synthetic videos whose true person masks are known: the fixtures of the temporal, track and player tests.

A textured background with a moving 'person' (head + body ellipses). Options add a hard cut (new background,
person jumps), a still section (nothing moves), variable frame rate, and odd sizes. Written with PyAV.
Frame sizes are `shape` = (height, width), numpy's order, like every size in danmask's code.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass
class SyntheticVideo:
    path: Path
    masks: list[np.ndarray]  # bool (H, W) per frame, in display order
    pts: list[int]  # presentation timestamps in `time_base`
    time_base: Fraction
    cut_at: int | None  # first frame after the cut
    still: tuple[int, int] | None  # [start, end) frames where nothing moves

    @property
    def times(self) -> list[float]:
        return [float(p * self.time_base) for p in self.pts]


def _background(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    bg = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(bg, (0, 0), 3)


def person_mask(h: int, w: int, cx: float, cy: float, scale: float) -> np.ndarray:
    """Head + torso ellipses centred on (cx, cy); scale is the figure height as a fraction of h."""
    m = np.zeros((h, w), np.uint8)
    s = scale * h
    cv2.ellipse(m, (int(cx), int(cy + 0.15 * s)), (int(0.18 * s), int(0.32 * s)), 0, 0, 360, 255, -1)
    cv2.circle(m, (int(cx), int(cy - 0.3 * s)), int(0.12 * s), 255, -1)
    return m > 0


_PERSON_RGB = (np.array([220, 60, 40], np.uint8), np.array([40, 200, 90], np.uint8))  # before / after a cut


def _paint(bg: np.ndarray, color: np.ndarray, x: float) -> tuple[np.ndarray, np.ndarray]:
    """`bg` with the person centred at column x: (RGB frame, bool true mask)."""
    h, w = bg.shape[:2]
    m = person_mask(h, w, x, h * 0.55, 0.7)
    img = bg.copy()
    img[m] = color
    return img, m


def person_frame(shape: tuple[int, int] = (180, 320), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first frame of `make_video(shape=shape, seed=seed)`, made in memory, never encoded (so bit-exact):
    (RGB uint8 (h, w, 3), bool true mask). The fixed input of the golden-output tests."""
    h, w = shape
    return _paint(_background(h, w, seed), _PERSON_RGB[0], w * 0.3)


def pan_frames(new_picture: int = 4, seed: int = 3) -> list[np.ndarray]:
    """A camera sweeping across one scene at 1/8 of the frame's width per frame (a runner filmed at 15 frames/s:
    every pixel moves), 8 frames, then `new_picture` frames of an unrelated picture panned the same way. RGB uint8
    (360, 640, 3); the only scene cut is at index 8."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.uniform(0, 255, (360, 1600, 3)).astype(np.float32), (0, 0), 6)
    scene = cv2.normalize(scene, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    other = scene[:, ::-1][::-1]
    frames = [scene[:, x:x + 640] for x in range(0, 640, 80)] + [other[:, x:x + 640]
                                                                 for x in range(0, 80 * new_picture, 80)]
    return [np.ascontiguousarray(f) for f in frames]


def make_video(
    path: str | Path,
    frames: int = 60,
    shape: tuple[int, int] = (180, 320),
    fps: int = 30,
    cut_at: int | None = None,
    still: tuple[int, int] | None = None,
    vfr: bool = False,
    codec: str = "libx264",
    seed: int = 0,
) -> SyntheticVideo:
    """Write a synthetic clip and return its true masks and timestamps. `shape` is (height, width)."""
    path = Path(path)
    h, w = shape
    time_base = Fraction(1, fps * 100) if vfr else Fraction(1, fps)
    rng = np.random.default_rng(seed)
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = w, h
    stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"  # 4:2:0 needs even sizes
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    if codec == "libx264":
        stream.options = {"crf": "12", "preset": "ultrafast", "g": "30"}
    bg, person_color = _background(h, w, seed), _PERSON_RGB[0]
    masks, pts, t = [], [], 0
    x = w * 0.3
    for i in range(frames):
        if cut_at is not None and i == cut_at:
            bg, person_color, x = _background(h, w, seed + 1), _PERSON_RGB[1], w * 0.7
        moving = still is None or not (still[0] <= i < still[1])
        if moving and i > 0:
            x += w * 0.01 * (1 if (i // 40) % 2 == 0 else -1)
        img, m = _paint(bg, person_color, x)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = t, time_base
        for packet in stream.encode(frame):
            container.mux(packet)
        masks.append(m)
        pts.append(t)
        t += int(rng.integers(50, 150)) if vfr else 1
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return SyntheticVideo(path, masks, pts, time_base, cut_at, still)


@dataclass
class PeopleVideo:
    """A clip of real people cut-outs moving over a background, with every person's true mask per frame."""

    path: Path
    masks: list[dict[int, np.ndarray]]  # per frame: true id -> bool (H, W) visible mask (after occlusion)
    pts: list[int]
    time_base: Fraction


Sprite = tuple[np.ndarray, np.ndarray]  # (RGB uint8 (h, w, 3), alpha float32 (h, w) in [0, 1])


def make_people_video(path: str | Path, sprites: list[Sprite], frames: int = 90,
                      shape: tuple[int, int] = (480, 854), fps: int = 30, seed: int = 0) -> PeopleVideo:
    """Write a clip where people walk across each other's paths, and return who is where.

    Person k (a cut-out from `sprites`, cycled) enters from alternating sides and crosses the frame at its own
    speed, depth and height, bobbing as it walks; nearer people (drawn later) hide the ones behind. True ids are
    1..n in sprite order. `shape` is (height, width). This is the fixture for id swaps: paths cross by design.
    """
    path = Path(path)
    h, w = shape
    rng = np.random.default_rng(seed)
    n = len(sprites)
    bg = cv2.GaussianBlur(_background(h, w, seed), (0, 0), 2)
    lanes = []
    for k in range(n):
        height = h * rng.uniform(0.55, 0.85)
        start, end = (0.15, 0.85) if k % 2 == 0 else (0.85, 0.15)
        lanes.append((height, start + rng.uniform(-0.05, 0.05), end + rng.uniform(-0.05, 0.05),
                      h * rng.uniform(0.9, 0.98)))
    order = sorted(range(n), key=lambda k: lanes[k][0])  # smaller = farther = drawn first
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.time_base = stream.codec_context.time_base = Fraction(1, fps)
    stream.options = {"crf": "16", "preset": "ultrafast"}
    masks, pts = [], []
    for i in range(frames):
        img = bg.astype(np.float32)
        visible: dict[int, np.ndarray] = {}
        for k in order:
            rgb, alpha = sprites[k]
            height, x0, x1, foot = lanes[k]
            s = height / rgb.shape[0]
            ph, pw = max(2, round(rgb.shape[0] * s)), max(2, round(rgb.shape[1] * s))
            cx = w * (x0 + (x1 - x0) * i / max(1, frames - 1))
            bottom = foot + 0.01 * h * np.sin(i * 0.5 + k)
            m = np.array([[pw / rgb.shape[1], 0, cx - pw / 2], [0, ph / rgb.shape[0], bottom - ph]], np.float32)
            if x1 < x0:  # walking leftwards: mirror the sprite
                m[0, 0], m[0, 2] = -m[0, 0], cx + pw / 2
            person = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
            a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
            img = img * (1 - a) + person * a
            hard = a[:, :, 0] >= 0.5
            for other in visible.values():
                other &= ~hard
            visible[k + 1] = hard
        frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
        masks.append(visible)
        pts.append(i)
    container.mux(stream.encode())
    container.close()
    return PeopleVideo(path, masks, pts, Fraction(1, fps))
