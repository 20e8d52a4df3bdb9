"""Training data: the teacher-label cache, copy-paste composites of people on person-free backgrounds, and
the torch Dataset that turns them into augmented (image, label, ignore, prior) tensors.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import PriorMix, crop_resize, photometric, synth_prior, tps_warp, zoom_crop

PERSON_GROUPS = ("davis-person", "coco", "web", "clips")
BACKGROUND_GROUPS = ("davis-noperson", "noperson-clip")


@dataclass
class Item:
    group: str
    key: str
    rgb: np.ndarray
    label: np.ndarray  # uint8 0..255 soft
    ignore: np.ndarray  # uint8 0/255


def load_cache(root: Path) -> list[Item]:
    """All cached samples (see teachers.build_cache) held in memory: a few hundred MB at most."""
    items = []
    for img in sorted(root.glob("*/*.jpg")):
        stem = img.name[:-4]
        rgb = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB)
        label = cv2.imread(str(img.with_name(stem + ".label.png")), cv2.IMREAD_GRAYSCALE)
        ignore = cv2.imread(str(img.with_name(stem + ".ignore.png")), cv2.IMREAD_GRAYSCALE)
        if label is None or ignore is None:  # interrupted labelling run: skip the half-written sample
            continue
        items.append(Item(img.parent.name, stem, rgb, label, ignore))
    if not items:
        raise FileNotFoundError(f"no cached samples under {root}: run `danmask train labels` first")
    return items


def without_sequences(items: list[Item], sequences: Iterable[str]) -> list[Item]:
    """The cache minus the frames of the given DAVIS sequences (keys `<sequence>-<frame>`): the validation
    sequences of a run never reach its training, whatever the cache holds."""
    held_out = set(sequences)
    return [it for it in items if not (it.group.startswith("davis") and it.key.rsplit("-", 1)[0] in held_out)]


def cutouts(items: list[Item]) -> list[tuple[np.ndarray, np.ndarray]]:
    """People cut out with their soft masks (bounding box of the label), for copy-paste."""
    out = []
    for it in items:
        if it.group not in PERSON_GROUPS:
            continue
        fg = it.label > 127
        if fg.mean() < 0.02 or (it.ignore > 0).mean() > 0.2:
            continue
        ys, xs = np.nonzero(fg)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append((it.rgb[y0:y1, x0:x1], it.label[y0:y1, x0:x1]))
    return out


def paste(bg: np.ndarray, people: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Composite 1-2 people at random scale/position; the label is the union of their alphas."""
    img = bg.astype(np.float32)
    label = np.zeros(bg.shape[:2], np.float32)
    h, w = bg.shape[:2]
    for _ in range(int(rng.integers(1, 3))):
        rgb, alpha = people[int(rng.integers(len(people)))]
        s = rng.uniform(0.25, 0.95) * h / rgb.shape[0]
        ph, pw = max(4, int(rgb.shape[0] * s)), max(4, int(rgb.shape[1] * s))
        if pw >= w:
            continue
        rgb = cv2.resize(rgb, (pw, ph))
        a = cv2.resize(alpha, (pw, ph)).astype(np.float32) / 255.0
        if rng.random() < 0.5:
            rgb, a = rgb[:, ::-1], a[:, ::-1]
        y0 = int(rng.integers(max(1, h - ph // 2))) if ph < h else 0
        x0 = int(rng.integers(0, w - pw))
        ph2 = min(ph, h - y0)
        a2 = a[:ph2, :, None]
        img[y0:y0 + ph2, x0:x0 + pw] = img[y0:y0 + ph2, x0:x0 + pw] * (1 - a2) + rgb[:ph2] * a2
        label[y0:y0 + ph2, x0:x0 + pw] = np.maximum(label[y0:y0 + ph2, x0:x0 + pw], a[:ph2])
    return img.astype(np.uint8), (label * 255).astype(np.uint8)


def salient_only(label: np.ndarray, ignore: np.ndarray, ratio: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Keep the main people of a label; make people far smaller than the largest one background.

    Teachers and COCO mark every person, down to a seated audience or distant pedestrians; DAVIS and the product
    want the salient ones (danmaku should pass behind the dancer, not vanish over a crowd). Parts closer than a
    few pixels count as one person (a limb cut off by the threshold stays), and the edge of a dropped person is
    ignored rather than taught either way. Only relative size counts: a street of equally small people stays.
    """
    fg = label > 127
    if not fg.any():
        return label, ignore
    n, comp = cv2.connectedComponents(cv2.dilate(fg.astype(np.uint8), np.ones((7, 7), np.uint8)))
    areas = np.bincount(comp[fg], minlength=n)  # person pixels per (dilated) component
    small = np.nonzero((areas > 0) & (areas < ratio * areas.max()))[0]
    if not len(small):
        return label, ignore
    drop = np.isin(comp, small)
    edge = cv2.dilate(drop.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    label, ignore = label.copy(), ignore.copy()
    label[drop] = 0
    ignore[edge & ~drop & (label > 0)] = 255
    return label, ignore


class SegDataset(Dataset):
    """Infinite-style dataset: index -> a fresh random sample (seeded by index and epoch for determinism)."""

    def __init__(self, items: list[Item], size: tuple[int, int], prior: bool, length: int = 10**7,
                 paste_p: float = 0.35, seed: int = 0, prior_mix: PriorMix = PriorMix(), salient: float = 0.0,
                 balance: bool = False, zoom_p: float = 0.0) -> None:
        self.items, self.size, self.prior, self.length = items, size, prior, length
        self.salient = salient  # 0: every labelled person; r > 0: drop people under r x the largest one's area
        self.prior_mix = prior_mix
        self.paste_p, self.seed = paste_p, seed
        self.zoom_p = zoom_p  # share of samples cut as a zoomed model's crop around the people (augment.zoom_crop)
        self.people = cutouts(items)
        # balance: groups drawn with probability ~ sqrt(size), so one long clip's near-duplicate frames do not
        # dominate; otherwise every sample is equally likely.
        names = sorted({it.group for it in items})
        self.groups = [[it for it in items if it.group == g] for g in names]
        sizes = np.array([len(m) for m in self.groups], float)
        weights = np.sqrt(sizes) if balance else sizes
        self.group_p = weights / weights.sum()
        self.backgrounds = [it for it in items if it.group in BACKGROUND_GROUPS or
                            (it.group == "coco" and it.label.max() == 0)]

    def __len__(self) -> int:
        return self.length

    def _pick(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.backgrounds and self.people and rng.random() < self.paste_p:
            bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            rgb, label = paste(bg.rgb, self.people, rng)
            ignore = np.zeros_like(label)
            it = None
        else:
            members = self.groups[int(rng.choice(len(self.groups), p=self.group_p))]
            it = members[int(rng.integers(len(members)))]
            rgb, label, ignore = it.rgb, it.label, it.ignore
        if self.salient and (it is None or it.group != "davis-person"):  # DAVIS masks hold only the salient one
            label, ignore = salient_only(label, ignore, self.salient)
        return rgb, label, ignore

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        rgb, label, ignore = self._pick(rng)
        zoomed = zoom_crop([rgb, label, ignore], self.size, rng) if self.zoom_p and rng.random() < self.zoom_p \
            else None
        rgb, label, ignore = zoomed or crop_resize([rgb, label, ignore], self.size, rng)
        if rng.random() < 0.5:
            rgb, label, ignore = rgb[:, ::-1], label[:, ::-1], ignore[:, ::-1]
        lab = label.astype(np.float32) / 255.0
        sample = {}
        if self.prior:
            prior = synth_prior(lab, rng, self.prior_mix)
            if rng.random() < 0.15:  # camera moved fast: the frame warps away from last frame's mask
                rgb, lab, ignore = tps_warp([np.ascontiguousarray(rgb), lab, np.ascontiguousarray(ignore)], rng)
            sample["prior"] = torch.from_numpy(np.ascontiguousarray(prior))[None]
        rgb = photometric(np.ascontiguousarray(rgb), rng)
        sample["image"] = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
        sample["label"] = torch.from_numpy(np.ascontiguousarray(lab))[None]
        sample["valid"] = torch.from_numpy((np.ascontiguousarray(ignore) == 0).astype(np.float32))[None]
        return sample
