"""Viewers' comments on a live stream, laid out by the one layout engine as they come.

A viewer's comment comes checked by the page server (as the service checks its comments) and timed by the server
at the stream's present (`t`, the session clock of the newest masked frame), never by the client. Comments arrive in time order, so laying the whole list out again
leaves every earlier placement where it was (the engine places in time order, file order breaking ties) and only
the new comment's placement is new: that one is broadcast. The price: each comment lays out the session's comments
again, which costs about 0.9 s once a session holds 10,000 (2-core machine); an engine that keeps its lane state
between calls would make it constant.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from ..danmaku.comments import Comment
from ..danmaku.layout import LayoutConfig, Placement, Schedule, layout


class LiveComments:
    """The comments of one live session and their layout on a `shape` (h, w) picture; thread-safe."""

    def __init__(self, shape: tuple[int, int], config: LayoutConfig | None = None, font: str | Path | None = None,
                 initial: Sequence[Comment] = ()) -> None:
        self.shape, self.config = shape, config or LayoutConfig()
        self._lock = threading.Lock()
        self._comments = sorted(initial, key=lambda c: c.time_s)
        self.schedule: Schedule = layout(self._comments, shape, self.config, font)
        self.font_file = self.schedule.font_file

    def add(self, t: float, mode: str, colour: int, text: str) -> list[Placement]:
        """Add a checked comment at session time `t`; returns the new placements (none when it did not fit)."""
        with self._lock:
            self._comments.append(Comment(t, mode, text, color=colour))
            before = {p.index for p in self.schedule.placements}
            self.schedule = layout(self._comments, self.shape, self.config, self.font_file)
            return [p for p in self.schedule.placements if p.index not in before]

    def placements(self) -> list[Placement]:
        with self._lock:
            return list(self.schedule.placements)

    def active(self, t: float) -> list[Placement]:
        """Placements on screen at `t`, oldest first (the burn-in's drawing order)."""
        return [p for p in self.placements() if p.start <= t < p.end]
