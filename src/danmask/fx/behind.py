"""Danmaku that pass behind chosen body parts only (`danmask fx parse --effect danmaku --protect head,hands`).

The comments are laid out once by danmask's one layout engine (`danmaku.layout`, the schedule `danmask render`
and the web player use) when the first frame gives the picture's size, and drawn by the burn-in's compositor with
the chosen part groups as the mask: a face and the hands stay clear while the comments cross the clothes.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from .bodypix import GROUPS

DEFAULT_PROTECT = ("head", "hands")


def parse_protect(text: str | Sequence[str]) -> tuple[str, ...]:
    """'head,hands' -> ('head', 'hands').

    Raises:
        DanmaskError: an unknown group, or none.
    """
    names = tuple(n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip())
    bad = [n for n in names if n not in GROUPS]
    if bad or not names:
        raise DanmaskError(f"--protect takes part groups from {', '.join(GROUPS)} (comma-separated), got "
                           f"{', '.join(bad) or 'none'}")
    return names


class BehindParts:
    """`draw(rgb, groups, t)`: the comments on screen at `t`, hidden behind the pixels of the protected groups."""

    def __init__(self, comments: str | Path | Sequence, protect: Sequence[str] = DEFAULT_PROTECT,
                 font: str | Path | None = None) -> None:
        from ..danmaku.comments import load_comments
        from ..danmaku.font import find_font

        self.protect = np.array([GROUPS.index(n) + 1 for n in parse_protect(protect)], np.uint8)
        if isinstance(comments, (str, Path)):
            comments = load_comments(comments).comments
        self.comments = list(comments)
        if not self.comments:
            raise DanmaskError("no comments to show")
        self.font = find_font(font)  # a FontError now, not at the first frame
        self.window = self.compositor = None

    def _start(self, shape: tuple[int, int]) -> None:
        from ..danmaku.layout import LayoutConfig, layout
        from ..danmaku.sprites import DanmakuCompositor

        config = LayoutConfig()
        schedule = layout(self.comments, shape, config, self.font)
        self.window = schedule.active()
        self.compositor = DanmakuCompositor(schedule.font_file, config.opacity)

    def draw(self, rgb: np.ndarray, groups: np.ndarray, t: float) -> np.ndarray:
        if self.compositor is None:
            self._start(rgb.shape[:2])
        mask = np.isin(groups, self.protect).astype(np.uint8) * 255
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, rgb.shape[0] / 360))  # soft edges, as person masks have
        return self.compositor.composite(rgb, mask, self.window.at(t), t)
