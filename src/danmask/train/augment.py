"""Augmentations on numpy arrays (cv2): geometry shared by image, label and ignore; photometric on the image;
and the synthetic previous-mask for prior-mask models.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..runtime.zoom import ZoomSettings, crop_region, mask_box
from ..synthetic import person_mask


def crop_resize(arrays: list[np.ndarray], out_hw: tuple[int, int], rng: np.random.Generator,
                zoom: tuple[float, float] = (0.55, 1.35)) -> list[np.ndarray]:
    """Random crop with the output's aspect ratio; zoom > 1 shrinks the scene (small, full-body people)."""
    h, w = arrays[0].shape[:2]
    oh, ow = out_hw
    base = min(h / oh, w / ow)  # largest crop of the output aspect that fits
    s = base * rng.uniform(*zoom)
    ch, cw = oh * s, ow * s
    y0 = rng.uniform(min(0, h - ch), max(0, h - ch))
    x0 = rng.uniform(min(0, w - cw), max(0, w - cw))
    return _warp_crop(arrays, out_hw, (x0, y0, x0 + cw, y0 + ch))


def zoom_crop(arrays: list[np.ndarray], out_hw: tuple[int, int], rng: np.random.Generator,
              jitter: float = 0.15) -> list[np.ndarray] | None:
    """The crop a zoomed model sees at run time (`runtime.zoom.crop_region`, shipped settings) around the label's
    people, whose box is jittered as last frame's box would be (they moved, the last mask was off); None when the
    label holds nobody. Trains the network on the close-ups it is given, not only on whole frames."""
    h, w = arrays[0].shape[:2]
    box = mask_box(arrays[1], (h, w), threshold=128)
    if box is None:
        return None
    bw, bh = box[2] - box[0], box[3] - box[1]
    dx0, dy0, dx1, dy1 = rng.normal(0.0, jitter, 4) * (bw, bh, bw, bh)
    box = (box[0] + dx0, box[1] + dy0, max(box[0] + dx0 + 1, box[2] + dx1), max(box[1] + dy0 + 1, box[3] + dy1))
    return _warp_crop(arrays, out_hw, crop_region(box, (h, w), out_hw[1] / out_hw[0], ZoomSettings()))


def _warp_crop(arrays: list[np.ndarray], out_hw: tuple[int, int], crop: tuple[float, float, float, float]
               ) -> list[np.ndarray]:
    """Image, label (and ignore) in `crop` (x0, y0, x1, y1, may reach outside) resized to `out_hw`."""
    h, w = arrays[0].shape[:2]
    oh, ow = out_hw
    x0, y0, cw, ch = crop[0], crop[1], crop[2] - crop[0], crop[3] - crop[1]
    m = np.array([[ow / cw, 0, -x0 * ow / cw], [0, oh / ch, -y0 * oh / ch]], np.float32)
    interp = cv2.INTER_AREA if cw / ow > 1.5 else cv2.INTER_LINEAR
    out = []
    for i, a in enumerate(arrays):
        border = cv2.BORDER_REFLECT_101 if i == 0 else cv2.BORDER_CONSTANT
        out.append(cv2.warpAffine(a, m, (ow, oh), flags=interp if i < 2 else cv2.INTER_NEAREST, borderMode=border))
    # ignore the reflected padding region: a mirrored person there is neither truth nor noise
    if len(out) > 2:
        valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, (ow, oh), flags=cv2.INTER_NEAREST)
        out[2] = np.maximum(out[2], (1 - valid) * 255)
    return out


def photometric(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour, blur/noise, motion blur and JPEG: the ways real video degrades."""
    img = rgb.astype(np.float32)
    img = img * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)  # contrast, brightness
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.5, 1.5)  # saturation
    img = img * rng.uniform(0.9, 1.1, size=3)  # white balance
    img = np.clip(img, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.15:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    elif r < 0.3:
        k = int(rng.integers(3, 9))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (k, k)))  # synthetic motion blur
    if rng.random() < 0.2:
        img = np.clip(img + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 80))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img


def random_affine(mask: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Shift/rotate/scale a mask: strength ~0.05 = the previous frame, ~0.3 = a prior not to trust."""
    h, w = mask.shape
    ang = rng.normal(0, 30 * strength)
    scale = 1 + rng.normal(0, strength)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, max(0.3, scale))
    m[:, 2] += rng.normal(0, strength, 2) * (w, h)
    return cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def tps_warp(arrays: list[np.ndarray], rng: np.random.Generator, strength: float = 0.03,
             grid: int = 4) -> list[np.ndarray]:
    """Thin-plate-spline warp (fast camera motion / non-rigid body motion) of image and labels together."""
    h, w = arrays[0].shape[:2]
    src = np.stack(np.meshgrid(np.linspace(0, 1, grid), np.linspace(0, 1, grid)), -1).reshape(-1, 2)
    dst = src + rng.normal(0, strength, src.shape)

    def u(r2: np.ndarray) -> np.ndarray:
        return np.where(r2 > 0, r2 * np.log(r2 + 1e-12), 0.0)

    n = len(src)
    k = u(((dst[:, None] - dst[None]) ** 2).sum(-1))
    p = np.hstack([np.ones((n, 1)), dst])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    coef = np.linalg.solve(a + np.eye(n + 3) * 1e-6, np.vstack([src, np.zeros((3, 2))]))  # dst -> src mapping
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs.ravel() / (w - 1), ys.ravel() / (h - 1)], -1)
    kk = u(((pts[:, None] - dst[None]) ** 2).sum(-1))
    mapped = kk @ coef[:n] + np.hstack([np.ones((len(pts), 1)), pts]) @ coef[n:]
    mx = (mapped[:, 0] * (w - 1)).reshape(h, w).astype(np.float32)
    my = (mapped[:, 1] * (h - 1)).reshape(h, w).astype(np.float32)
    return [cv2.remap(a, mx, my, cv2.INTER_LINEAR if i < 2 else cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
            for i, a in enumerate(arrays)]


@dataclass(frozen=True)
class PriorMix:
    """How often each kind of previous mask is shown; what is left after these is a strongly moved mask."""

    empty: float = 0.2  # first frame, someone entering
    follow: float = 0.5  # slightly moved: learn to follow
    soft: float = 0.0  # moved, blurred and faded: what the model's own uncertain output looks like
    # Independent of the above: a person-shaped blob added where the label has none. Without it a frame with
    # nobody in it only ever comes with an empty prior, so the net never learns to drop its own false positive
    # and keeps it frame after frame.
    phantom: float = 0.0


def synth_prior(label: np.ndarray, rng: np.random.Generator, mix: PriorMix = PriorMix()) -> np.ndarray:
    """Previous-frame mask for prior-mask models: empty, slightly moved (follow), soft and faded (its own
    uncertain output), or strongly moved (distrust); sometimes plus a phantom person. Values in [0, 1]."""
    r = rng.random()
    if r < mix.empty:
        prior = np.zeros_like(label)
    elif r < mix.empty + mix.follow:
        prior = random_affine(label, rng, 0.04)
    elif r < mix.empty + mix.follow + mix.soft:
        faded = cv2.GaussianBlur(random_affine(label, rng, 0.08), (0, 0), rng.uniform(1, 4))
        prior = faded * np.float32(rng.uniform(0.2, 1.0))
    else:
        prior = random_affine(label, rng, 0.25)
    if rng.random() < mix.phantom:
        prior = np.maximum(prior, phantom_person(label.shape, rng) * (label < 0.5))
    return prior


def phantom_person(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft person silhouette of random place, size and strength: a false positive as a net would paint it."""
    h, w = shape
    blob = person_mask(h, w, rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.8) * h, rng.uniform(0.3, 0.9))
    blob = cv2.GaussianBlur(blob.astype(np.float32), (0, 0), rng.uniform(0.5, 3.0))
    return blob * np.float32(rng.uniform(0.4, 1.0))
