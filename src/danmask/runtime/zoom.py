"""A whole-frame model that looks closer: each frame is segmented in a crop around where the last frame's people
were, at the model's own input size, and pasted back.

Why: a small full-body person (a runner, a surfer) covers 20x60 pixels of a 144x256 whole frame, and a whole-frame
model loses their limbs. Cropped to the people (with a margin) the same network sees them two to four times larger,
for the same single pass per frame. The crop keeps the network's aspect ratio (nothing is stretched), is never
smaller than `min_side` of the frame (the network was trained on people in context, not on close-ups of a limb)
and never leaves the frame.

The whole frame is still segmented, in a second pass, when nobody was found in the last frame, after `reset()`
(scene cuts, seeks) and every `refresh_s` seconds, so newcomers outside the crop are found; on those frames the
crop's own mask is kept inside the crop. Switched on per model by `"zoom": {...}` in the sidecar's `extra`
(see `ZoomSettings`); the figures are in docs/models/mpft-cpu.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ModelError
from .base import ModelSpec, SegModel

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels


@dataclass(frozen=True)
class ZoomSettings:
    """How close to look; the defaults are what `mpft-cpu` ships with."""

    margin: float = 1.3  # the crop is this many times the people's box (before fitting the network's aspect)
    min_side: float = 0.3  # the crop's width is at least this fraction of the frame's
    refresh_s: float = 0.5  # the whole frame is segmented again this often, for newcomers

    def __post_init__(self) -> None:
        if self.margin < 1.0 or not 0.0 < self.min_side <= 1.0 or self.refresh_s < 0:
            raise ValueError(f"zoom needs margin >= 1, 0 < min_side <= 1 and refresh_s >= 0, got {self}")

    @classmethod
    def from_extra(cls, raw: object, where: str) -> ZoomSettings:
        """From a sidecar's `extra.zoom` (an object of the fields above)."""
        if not isinstance(raw, dict) or not set(raw) <= {"margin", "min_side", "refresh_s"}:
            raise ValueError(f"{where}: extra.zoom must be an object with margin, min_side and refresh_s")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw.values()):
            raise ValueError(f"{where}: extra.zoom values must be numbers")
        return cls(**{k: float(v) for k, v in raw.items()})


def zoom_settings(spec: ModelSpec) -> ZoomSettings | None:
    """A model's zoom, from its sidecar's `extra.zoom` (None: it sees whole frames).

    Raises:
        ModelError: a malformed `extra.zoom`, or zoom asked of a model that takes the previous mask (that mask
            covers the frame, not the crop).
    """
    raw = spec.extra.get("zoom")
    if raw is None:
        return None
    if spec.takes_prior:
        raise ModelError(f"model '{spec.name}': extra.zoom is for models without a prior input")
    try:
        return ZoomSettings.from_extra(raw, f"model '{spec.name}'")
    except ValueError as exc:
        raise ModelError(str(exc)) from exc


def crop_region(box: Box, frame: tuple[int, int], aspect: float, settings: ZoomSettings) -> Box:
    """The crop around `box` in a frame of (h, w): `margin` x the box, widened to `aspect` (w / h), at least
    `min_side` of the frame's width (or its whole height), shifted to lie inside the frame."""
    h, w = frame
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    cw = max((box[2] - box[0]) * settings.margin, (box[3] - box[1]) * settings.margin * aspect,
             settings.min_side * w)
    cw = min(cw, w, h * aspect)
    ch = cw / aspect
    x0 = min(max(cx - cw / 2, 0.0), w - cw)
    y0 = min(max(cy - ch / 2, 0.0), h - ch)
    return x0, y0, x0 + cw, y0 + ch


def mask_box(mask: np.ndarray, frame: tuple[int, int], threshold: float = 0.5) -> Box | None:
    """The frame-pixel box around a mask drawn at any size (None when nothing reaches `threshold`)."""
    rows = np.nonzero((mask >= threshold).any(axis=1))[0]
    cols = np.nonzero((mask >= threshold).any(axis=0))[0]
    if not len(rows):
        return None
    sy, sx = frame[0] / mask.shape[0], frame[1] / mask.shape[1]
    return cols[0] * sx, rows[0] * sy, (cols[-1] + 1) * sx, (rows[-1] + 1) * sy


class ZoomedModel:
    """`track(rgb, t, size)` -> the person mask at `size`, from a crop around the last frame's people.

    Takes whole frames (`frame_input`: the Segmenter does not shrink them first); has no person ids."""

    frame_input = True
    tracks_people = False

    def __init__(self, inner: SegModel, settings: ZoomSettings | None = None) -> None:
        self.inner, self.settings = inner, settings or ZoomSettings()
        self.spec: ModelSpec = inner.spec
        self.crops = self.whole = 0  # passes of each kind, for the cost figures
        self.reset()

    def reset(self) -> None:
        """Forget where the people were: the next frame is segmented whole."""
        self._box: Box | None = None
        self._last_whole: float | None = None

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """A still image: the whole frame at the model's input size (the SegModel contract)."""
        return self.inner.predict(rgb, prior)

    def track(self, rgb: np.ndarray, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
        """Float32 (h, w) mask at `size` (default the frame's)."""
        frame = rgb.shape[:2]
        size = tuple(size or frame)
        whole_due = (self._box is None or self._last_whole is None
                     or t - self._last_whole >= self.settings.refresh_s or t < self._last_whole)
        if self._box is None:
            mask = self._segment(rgb, (0.0, 0.0, float(frame[1]), float(frame[0])), size)
        else:
            h_in, w_in = self.spec.input_size
            region = crop_region(self._box, frame, w_in / h_in, self.settings)
            mask = self._segment(rgb, region, size)
            if whole_due:  # newcomers: the whole frame outside the crop, the closer look inside it
                whole = self._segment(rgb, (0.0, 0.0, float(frame[1]), float(frame[0])), size)
                inside = _inside(region, frame, size)
                mask = np.where(inside, mask, whole)
        if whole_due:
            self._last_whole = t
        self._box = mask_box(mask, frame)
        return mask

    def _segment(self, rgb: np.ndarray, region: Box, size: tuple[int, int]) -> np.ndarray:
        """The model on `region` of the frame, pasted into a zero mask of (h, w) `size`."""
        fh, fw = rgb.shape[:2]
        whole = region == (0.0, 0.0, float(fw), float(fh))
        self.whole += whole
        self.crops += not whole
        bounds = pixel_bounds(region)
        c0, r0, c1, r1 = bounds
        out = np.clip(np.asarray(self.inner.predict(rgb[r0:r1, c0:c1], None), np.float32), 0.0, 1.0)
        return paste_crop(out, bounds, (fh, fw), size)


def pixel_bounds(region: Box) -> tuple[int, int, int, int]:
    """Integer (c0, r0, c1, r1) of a crop: the pixels read, and where its mask is pasted back (so nothing shifts)."""
    c0, r0 = int(np.floor(region[0])), int(np.floor(region[1]))
    return c0, r0, max(c0 + 1, int(np.ceil(region[2]))), max(r0 + 1, int(np.ceil(region[3])))


def paste_crop(crop: np.ndarray, bounds: tuple[int, int, int, int], frame: tuple[int, int],
               size: tuple[int, int]) -> np.ndarray:
    """A crop's float mask (any size) drawn into a zero mask of (h, w) `size` over a frame of (h, w) `frame`."""
    c0, r0, c1, r1 = bounds
    (fh, fw), (h, w) = frame, size
    sx, sy = w / fw, h / fh
    m = np.array([[(c1 - c0) * sx / crop.shape[1], 0.0, c0 * sx],
                  [0.0, (r1 - r0) * sy / crop.shape[0], r0 * sy]], np.float64)
    return cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _inside(region: Box, frame: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Boolean (h, w) mask of the output pixels that lie in `region`."""
    (fh, fw), (h, w) = frame, size
    out = np.zeros(size, bool)
    out[int(np.floor(region[1] * h / fh)):int(np.ceil(region[3] * h / fh)),
        int(np.floor(region[0] * w / fw)):int(np.ceil(region[2] * w / fw))] = True
    return out
