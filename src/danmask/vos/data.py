"""Training clips for the memory network: three frames, the object's mask on each, the object visible in the first.

Two sources, as in the Youku solution's two stages:
- **images made into clips** (stage 1): a photo and its mask, moved by growing random affine and thin-plate warps;
- **video** (stage 2): frames 1-3 samples apart (3-9 video frames) from the clips labelled by the teachers
  (`danmask train labels`), one random crop shared by the three.
Both get a *distractor*: another person pasted into every frame (moving a little), who is not the object and may
cover it. That is what teaches the read to follow *this* person rather than anyone who looks like a person.
DAVIS person sequences never enter: they are what `danmask eval --vos` measures.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..train.augment import crop_resize, photometric, tps_warp
from ..train.data import Item, cutouts

STATIC_GROUPS = ("coco", "web")
VIDEO_GROUPS = ("clips",)


@dataclass(frozen=True)
class ClipSample:
    frames: np.ndarray  # (3, H, W, 3) uint8
    masks: np.ndarray  # (3, H, W) float32 in [0, 1]
    valid: np.ndarray  # (3, H, W) float32: 0 where the label is unknown (ignore map, padding)


def video_runs(items: list[Item]) -> list[list[Item]]:
    """The teacher-labelled clip frames grouped per clip, in frame order (keys `<clip>-<frame>`)."""
    runs: dict[str, list[Item]] = {}
    for it in items:
        if it.group in VIDEO_GROUPS:
            runs.setdefault(it.key.rsplit("-", 1)[0], []).append(it)
    return [sorted(run, key=lambda it: int(it.key.rsplit("-", 1)[1])) for run in runs.values() if len(run) >= 3]


def _crop_all(rgbs, labels, ignores, size, rng_seed: int):
    out = []
    for rgb, label, ignore in zip(rgbs, labels, ignores):
        out.append(crop_resize([rgb, label, ignore], size, np.random.default_rng(rng_seed), zoom=(0.6, 1.2)))
    return out


def _moved(arrays: list[np.ndarray], rng: np.random.Generator, strength: float) -> list[np.ndarray]:
    """One random similarity transform (shift, turn, zoom) applied to image and labels together."""
    h, w = arrays[0].shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.normal(0, 25 * strength), 1 + rng.normal(0, strength))
    m[:, 2] += rng.normal(0, strength, 2) * (w, h)
    return [cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR if i < 2 else cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_REFLECT_101 if i == 0 else cv2.BORDER_CONSTANT,
                           borderValue=0 if i < 2 else 255)
            for i, a in enumerate(arrays)]


def static_clip(item: Item, size: tuple[int, int], rng: np.random.Generator) -> list[list[np.ndarray]]:
    """A photo made into three frames: the first cropped, each next one moved a little more."""
    first = crop_resize([item.rgb, item.label, item.ignore], size, rng, zoom=(0.6, 1.2))
    frames = [first]
    for step in (1, 2):
        moved = _moved(first, rng, 0.04 * step)
        if rng.random() < 0.5:
            moved = tps_warp(moved, rng, strength=0.02 * step)
        frames.append(moved)
    return frames


def video_clip(run: list[Item], size: tuple[int, int], rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Three frames of one clip, 1-3 samples apart, in order or reversed, with one shared crop."""
    gaps = rng.integers(1, 4, size=2)
    start = int(rng.integers(0, max(1, len(run) - int(gaps.sum()))))
    picks = [run[min(len(run) - 1, start + int(k))] for k in (0, gaps[0], gaps.sum())]
    if rng.random() < 0.5:
        picks = picks[::-1]
    return _crop_all([p.rgb for p in picks], [p.label for p in picks], [p.ignore for p in picks], size,
                     int(rng.integers(1 << 31)))


def add_distractor(frames: list[list[np.ndarray]], people: list[tuple[np.ndarray, np.ndarray]],
                   rng: np.random.Generator) -> None:
    """Paste one person (not the object) into every frame, drifting; the object is hidden where they overlap."""
    rgb, alpha = people[int(rng.integers(len(people)))]
    h, w = frames[0][0].shape[:2]
    scale = rng.uniform(0.3, 0.9) * h / rgb.shape[0]
    ph, pw = max(4, int(rgb.shape[0] * scale)), max(4, int(rgb.shape[1] * scale))
    if pw >= w - 1 or ph >= h:
        return
    rgb = cv2.resize(rgb, (pw, ph))
    a = cv2.resize(alpha, (pw, ph)).astype(np.float32) / 255.0
    x, y = rng.uniform(0, w - pw), rng.uniform(0, h - ph)
    vx, vy = rng.normal(0, 0.03 * w), rng.normal(0, 0.01 * h)
    for image, label, _ in frames:
        x0, y0 = int(np.clip(x, 0, w - pw)), int(np.clip(y, 0, h - ph))
        region = (slice(y0, y0 + ph), slice(x0, x0 + pw))
        image[region] = (image[region] * (1 - a[..., None]) + rgb * a[..., None]).astype(np.uint8)
        label[region] = (label[region] * (1 - a)).astype(label.dtype)
        x, y = x + vx, y + vy


class ClipDataset(Dataset):
    """Endless random clips (index ignored): `static_share` of them from photos, the rest from video."""

    def __init__(self, items: list[Item], size: tuple[int, int], static_share: float = 0.5,
                 distractor_p: float = 0.5, seed: int = 0) -> None:
        self.static = [it for it in items if it.group in STATIC_GROUPS and (it.label > 127).mean() > 0.01]
        self.runs = video_runs(items)
        self.people = cutouts(items)
        if not self.static and not self.runs:
            raise ValueError("no photos (coco, web) or clip runs in the label cache")
        self.size, self.static_share, self.distractor_p, self.seed = size, static_share, distractor_p, seed

    def __len__(self) -> int:
        return 1 << 30

    def sample(self, rng: np.random.Generator) -> ClipSample:
        use_static = self.static and (not self.runs or rng.random() < self.static_share)
        for _ in range(10):  # the object must be visible in the first frame
            if use_static:
                frames = static_clip(self.static[int(rng.integers(len(self.static)))], self.size, rng)
            else:
                frames = video_clip(self.runs[int(rng.integers(len(self.runs)))], self.size, rng)
            if (frames[0][1] > 127).mean() > 0.005:
                break
        if self.people and rng.random() < self.distractor_p:
            add_distractor(frames, self.people, rng)
        images = np.stack([photometric(f[0], rng) for f in frames])
        masks = np.stack([f[1].astype(np.float32) / 255.0 for f in frames])
        valid = np.stack([(f[2] < 128).astype(np.float32) for f in frames])
        return ClipSample(images, masks, valid)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.sample(np.random.default_rng([self.seed, index]))
        return {"rgb": torch.from_numpy(s.frames).permute(0, 3, 1, 2).float() / 255.0,
                "mask": torch.from_numpy(s.masks)[:, None], "valid": torch.from_numpy(s.valid)[:, None]}
