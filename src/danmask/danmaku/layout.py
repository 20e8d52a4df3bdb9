"""The single layout engine: comments + video size + settings -> a deterministic schedule.

Both renderers consume the schedule (the burn-in in Python, the web player as JSON); neither lays out text on
its own, so a comment sits in the same lane at the same place in both. Text is measured with the same font file
the burn-in draws with and the player loads as a web font.

Lanes are horizontal bands of one normal-size line. A scrolling comment may follow another in a lane only if it
never touches it: the gap between them is linear in time, so it is checked where their common time ends.
"""
from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import DanmaskError
from .comments import DEFAULT_SIZE, Comment
from .font import GlyphCoverage, find_font, load_font

REFERENCE_HEIGHT = 480  # a size-25 comment is 25 px tall on a 480-line video, and scales with the video
MIN_FONT_PX = 12
GAP_PX = 16  # horizontal room kept between comments sharing a lane


class LayoutError(DanmaskError):
    """Layout settings are out of range (a user-supplied --speed, --area, ... value)."""


@dataclass(frozen=True)
class LayoutConfig:
    """What a viewer can tune. `speed_px_s` wins over `duration_s` when both are given."""

    duration_s: float = 8.0  # time a scrolling comment takes to cross the screen (Bilibili-like: long ones faster)
    speed_px_s: float | None = None  # constant scroll speed instead of a fixed crossing time
    fixed_duration_s: float = 4.0  # how long top/bottom comments stay
    font_scale: float = 1.0
    area: float = 1.0  # fraction of the height (from the top) that comments may use
    density: float = 1.0  # fraction of comments kept, thinned evenly over time
    max_on_screen: int | None = None  # hard cap on comments visible at once
    anti_overlap: bool = True  # drop what does not fit instead of drawing over other comments
    opacity: float = 1.0  # passed to the renderers

    def __post_init__(self) -> None:
        checks = [
            ("duration_s", self.duration_s > 0 and math.isfinite(self.duration_s)),
            ("speed_px_s", self.speed_px_s is None or (self.speed_px_s > 0 and math.isfinite(self.speed_px_s))),
            ("fixed_duration_s", self.fixed_duration_s > 0 and math.isfinite(self.fixed_duration_s)),
            ("font_scale", 0.1 <= self.font_scale <= 10),
            ("area", 0 < self.area <= 1),
            ("density", 0 <= self.density <= 1),
            ("max_on_screen", self.max_on_screen is None or self.max_on_screen >= 1),
            ("opacity", 0 <= self.opacity <= 1),
        ]
        bad = [name for name, ok in checks if not ok]
        if bad:
            raise LayoutError(f"invalid layout setting {bad[0]}={getattr(self, bad[0])!r} "
                              "(durations/speed > 0, font_scale 0.1..10, area 0..1 (not 0), density and opacity "
                              "0..1, max_on_screen >= 1)")


@dataclass(slots=True)
class Placement:
    """One shown comment: its box is at (x0 + vx * (t - start), y) for start <= t < end."""

    index: int  # position in the comment list given to layout()
    text: str
    mode: str
    color: int
    stroke: int  # outline colour 0xRRGGBB
    font_px: int
    stroke_px: int
    lane: int
    lanes: int  # how many lanes the box spans
    y: int
    width: int
    height: int
    baseline: int  # from the box top to the text baseline
    start: float
    end: float
    x0: float
    vx: float  # px/s, negative for right-to-left

    def x_at(self, t: float) -> float:
        return self.x0 + self.vx * (t - self.start)


@dataclass
class Schedule:
    """The layout result: placements sorted by start time, plus what was dropped and why."""

    width: int
    height: int
    config: LayoutConfig
    font_file: str
    lane_height: int
    placements: list[Placement]
    dropped: Counter = field(default_factory=Counter)

    def active(self) -> "ActiveWindow":
        return ActiveWindow(self.placements)

    def to_json(self) -> str:
        """The schedule as the web player reads it (keys documented in docs/danmaku.md)."""
        doc = {
            "width": self.width, "height": self.height, "opacity": self.config.opacity,
            "lane_height": self.lane_height, "max_duration": max((p.end - p.start for p in self.placements),
                                                                 default=0.0),
            "dropped": dict(self.dropped), "shown": len(self.placements),
            "items": [asdict(p) for p in self.placements],
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class ActiveWindow:
    """Placements on screen at non-decreasing times t, in O(changes) per call: the burn-in's frame loop."""

    def __init__(self, placements: Sequence[Placement]) -> None:
        self._placements, self._next, self._live = placements, 0, []

    def at(self, t: float) -> list[Placement]:
        while self._next < len(self._placements) and self._placements[self._next].start <= t:
            self._live.append(self._placements[self._next])
            self._next += 1
        self._live = [p for p in self._live if p.end > t]
        return self._live


@dataclass(slots=True)
class _Box:
    """A comment being placed, in lane coordinates: head/tail are distances from the edge it enters at."""

    start: float
    end: float
    width: int
    speed: float  # 0 for fixed comments
    direction: int  # -1 scroll (right to left), +1 reverse, 0 fixed

    def head(self, t: float) -> float:
        return self.speed * (t - self.start)


def _fits_behind(prev: _Box, new: _Box) -> bool:
    """Can `new` share a lane with `prev` (placed earlier) without ever overlapping it?"""
    if prev.end <= new.start:
        return True
    if prev.direction == 0 or new.direction != prev.direction:
        return False  # fixed comments, or comments meeting head-on: the lane is busy until prev leaves
    # gap(t) = tail of prev - head of new is linear in t: check both ends of the time they share
    t_last = min(prev.end, new.end)
    return all(prev.head(t) - prev.width - new.head(t) >= GAP_PX for t in (new.start, t_last))


def font_px_for(size: int, height: int, config: LayoutConfig) -> int:
    """Bilibili size units -> pixels on this video (scales with the video height)."""
    return max(MIN_FONT_PX, round(size * config.font_scale * height / REFERENCE_HEIGHT))


def stroke_colour(color: int) -> int:
    """Black outline, white for very dark text, so every comment stays readable on any background."""
    r, g, b = color >> 16, (color >> 8) & 0xFF, color & 0xFF
    return 0xFFFFFF if 0.299 * r + 0.587 * g + 0.114 * b < 48 else 0x000000


def thin_keeps(position: int, density: float) -> bool:
    """Is the comment at `position` (in time order) kept at `density`? Evenly spread and deterministic (no
    randomness in the schedule)."""
    return math.floor((position + 1) * density) > math.floor(position * density)


class _Measure:
    """Text boxes with the renderers' font: advances from Pillow's getlength, height from the font metrics.

    Advances are cached per character (summing them is what FreeType's basic layout does, minus kerning that
    CJK fonts do not have), which makes 100k comments measurable in well under a second.
    """

    def __init__(self, font_file: str) -> None:
        self.font_file = font_file
        self._advance: dict[int, dict[str, float]] = {}
        self._coverage = GlyphCoverage(font_file)

    def drawable(self, text: str) -> str:
        """`text` without the characters this font has no glyph for (emoji in a CJK font): no tofu boxes."""
        return "".join(ch for ch in text if self._coverage.has(ch)).strip()

    def width(self, text: str, px: int) -> float:
        advance = self._advance.setdefault(px, {})
        font = None
        total = 0.0
        for ch in text:
            if ch not in advance:
                font = font or load_font(self.font_file, px)
                advance[ch] = font.getlength(ch)
            total += advance[ch]
        return total

    def box(self, text: str, px: int) -> tuple[int, int, int, int]:
        """(width, height, baseline, stroke_px) of `text` drawn at `px` pixels with an outline."""
        ascent, descent = load_font(self.font_file, px).getmetrics()
        stroke = max(1, round(px / 16))
        return math.ceil(self.width(text, px)) + 2 * stroke, ascent + descent + 2 * stroke, ascent + stroke, stroke


class Layouter:
    """The engine's state between comments: `place` lays out one comment after all earlier ones, so a live
    session places each new comment in constant time, exactly where `layout` of the whole list would.

    Comments must come in time order (file order breaking ties); `schedule()` is the result so far.
    """

    def __init__(self, shape: tuple[int, int], config: LayoutConfig | None = None,
                 font: str | Path | None = None) -> None:
        self.config = config or LayoutConfig()
        self.height, self.width = shape
        if self.width < 1 or self.height < 1:
            raise LayoutError(f"video size must be positive, got {self.width}x{self.height}")
        self.font_file = str(find_font(font))
        self._measure = _Measure(self.font_file)
        self.lane_h = self._measure.box("M", font_px_for(DEFAULT_SIZE, self.height, self.config))[1]
        self._lane_count = max(1, int(self.config.area * self.height) // self.lane_h)
        self._lanes: list[_Box | None] = [None] * self._lane_count
        self.placements: list[Placement] = []  # appended to in place (a live burn-in reads it as it grows)
        self.dropped: Counter = Counter({"density": 0})  # first key, as the whole-list layout has always had it
        self._on_screen: list[float] = []  # end times (min-heap) for max_on_screen
        self._seen = 0  # comments offered so far: the position `thin` keeps or drops by

    def place(self, index: int, comment: Comment) -> Placement | None:
        """Lay out `comment` (number `index` in the caller's list); None when it was dropped (see `dropped`)."""
        config, position = self.config, self._seen
        self._seen += 1
        if not thin_keeps(position, config.density):
            self.dropped["density"] += 1
            return None
        while self._on_screen and self._on_screen[0] <= comment.time_s:
            heapq.heappop(self._on_screen)
        if config.max_on_screen is not None and len(self._on_screen) >= config.max_on_screen:
            self.dropped["max on screen"] += 1
            return None
        text = self._measure.drawable(comment.text)
        if not text:
            self.dropped["no drawable characters"] += 1
            return None
        px = font_px_for(comment.size, self.height, config)
        w, h, baseline, stroke_px = self._measure.box(text, px)
        box = _make_box(comment, w, self.width, config)
        span = min(self._lane_count, math.ceil(h / self.lane_h))
        lane = _choose_lane(self._lanes, box, span, comment.mode, config.anti_overlap)
        if lane is None:
            self.dropped["no room"] += 1
            return None
        for i in range(lane, lane + span):
            self._lanes[i] = box
        heapq.heappush(self._on_screen, box.end)
        y = lane * self.lane_h if comment.mode != "bottom" else min(lane + span, self._lane_count) * self.lane_h - h
        x0 = {"scroll": float(self.width), "reverse": float(-w)}.get(comment.mode, (self.width - w) / 2)
        placement = Placement(
            index, text, comment.mode, comment.color, stroke_colour(comment.color), px, stroke_px,
            lane, span, max(0, y), w, h, baseline, box.start, box.end, x0, box.speed * box.direction)
        self.placements.append(placement)
        return placement

    def schedule(self) -> Schedule:
        dropped = Counter({k: v for k, v in self.dropped.items() if v})
        return Schedule(self.width, self.height, self.config, self.font_file, self.lane_h, list(self.placements),
                        dropped)


def layout(comments: Sequence[Comment], shape: tuple[int, int], config: LayoutConfig | None = None,
           font: str | Path | None = None) -> Schedule:
    """Place `comments` on a video of `shape` = (height, width), in time order (file order breaks ties).

    Returns a Schedule; comments that do not fit (anti-overlap), thinned out (density) or over max_on_screen
    are counted in `Schedule.dropped`. Same inputs, same schedule.
    """
    engine = Layouter(shape, config, font)
    for index in sorted(range(len(comments)), key=lambda i: comments[i].time_s):
        engine.place(index, comments[index])
    return engine.schedule()


def _make_box(comment: Comment, w: int, screen_w: int, config: LayoutConfig) -> _Box:
    if comment.mode in ("top", "bottom"):
        return _Box(comment.time_s, comment.time_s + config.fixed_duration_s, w, 0.0, 0)
    speed = config.speed_px_s or (screen_w + w) / config.duration_s
    return _Box(comment.time_s, comment.time_s + (screen_w + w) / speed, w, speed,
                -1 if comment.mode == "scroll" else 1)


def _choose_lane(lanes: list[_Box | None], box: _Box, span: int, mode: str, anti_overlap: bool) -> int | None:
    """First lane (from the top; from the bottom for bottom comments) where the box fits for its whole life.

    Without anti-overlap, a full screen puts the comment where the lanes free up earliest.
    """
    starts = range(len(lanes) - span, -1, -1) if mode == "bottom" else range(len(lanes) - span + 1)
    for lane in starts:
        if all(prev is None or _fits_behind(prev, box) for prev in lanes[lane:lane + span]):
            return lane
    if anti_overlap:
        return None
    return min(starts, key=lambda lane: max(prev.end if prev else 0.0 for prev in lanes[lane:lane + span]))

