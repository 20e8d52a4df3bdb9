"""Draw scheduled comments onto frames, behind the person: the compositing half of the burn-in.

Each comment is drawn once with Pillow into an RGBA sprite (text + outline, the text only ever reaches
`ImageDraw.text`) and kept while it is on screen. Per frame a sprite is blended into its rectangle with
alpha x opacity x (1 - person), where person = clip(mask / 128, 0, 1): a pixel whose mask is >= 128 (the
track's person threshold) gets weight exactly 0 and keeps the source value bit for bit, and the few pixels
just outside the person edge fade instead of stair-stepping.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .font import load_font
from .layout import Placement

PERSON_LEVEL = 128.0  # mask value from which a pixel is fully the person's


class Sprite:
    """A comment pre-drawn as straight-alpha float32 colour and alpha planes."""

    __slots__ = ("alpha", "color")

    def __init__(self, placement: Placement, font_file: str) -> None:
        p = placement
        image = Image.new("RGBA", (p.width, p.height), (0, 0, 0, 0))
        ImageDraw.Draw(image).text(
            (p.stroke_px, p.baseline), p.text, font=load_font(font_file, p.font_px), anchor="ls",
            fill=_rgb(p.color), stroke_width=p.stroke_px, stroke_fill=_rgb(p.stroke))
        rgba = np.asarray(image, dtype=np.float32)
        self.alpha = rgba[:, :, 3:] / 255.0
        self.color = rgba[:, :, :3]


def _rgb(color: int) -> tuple[int, int, int]:
    return color >> 16, (color >> 8) & 0xFF, color & 0xFF


class DanmakuCompositor:
    """Blend the comments on screen at time t into an RGB frame, leaving person pixels untouched."""

    def __init__(self, font_file: str, opacity: float = 1.0) -> None:
        self.font_file, self.opacity = font_file, opacity
        self._sprites: dict[int, Sprite] = {}

    def composite(self, rgb: np.ndarray, mask: np.ndarray | None, placements: Sequence[Placement],
                  t: float) -> np.ndarray:
        """rgb: (H, W, 3) uint8 frame (modified in place and returned); mask: uint8 at any size or None.

        `placements` are the ones on screen at `t` (see layout.ActiveWindow).
        """
        h, w = rgb.shape[:2]
        visible = self._visible_weight(mask, (h, w))
        live = {p.index for p in placements}
        for key in [k for k in self._sprites if k not in live]:
            del self._sprites[key]
        for p in placements:
            sprite = self._sprites.get(p.index)
            if sprite is None:
                sprite = self._sprites[p.index] = Sprite(p, self.font_file)
            self._blend(rgb, visible, sprite, round(p.x_at(t)), p.y)
        return rgb

    @staticmethod
    def _visible_weight(mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
        """(H, W, 1) float32: 1 where comments show, 0 on the person; None when there is no mask."""
        if mask is None:
            return None
        h, w = size
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return (1.0 - np.clip(mask.astype(np.float32) / PERSON_LEVEL, 0.0, 1.0))[:, :, None]

    def _blend(self, rgb: np.ndarray, visible: np.ndarray | None, sprite: Sprite, x: int, y: int) -> None:
        sh, sw = sprite.alpha.shape[:2]
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sw, w), min(y + sh, h)
        if x0 >= x1 or y0 >= y1:
            return
        sx, sy = x0 - x, y0 - y
        alpha = sprite.alpha[sy:sy + y1 - y0, sx:sx + x1 - x0] * self.opacity
        if visible is not None:
            alpha = alpha * visible[y0:y1, x0:x1]
        region = rgb[y0:y1, x0:x1].astype(np.float32)
        colour = sprite.color[sy:sy + y1 - y0, sx:sx + x1 - x0]
        blended = region + alpha * (colour - region)  # alpha == 0 leaves region exactly as it was
        rgb[y0:y1, x0:x1] = np.rint(blended).astype(np.uint8)
