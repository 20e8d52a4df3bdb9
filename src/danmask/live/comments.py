"""The comments of a live session, laid out by the one layout engine as the stream reaches them.

The engine places comments in time order, so a live session feeds it in time order: the comments given at the start
(a comment file; times from the first frame) when the stream reaches their time, and each viewer's comment at the
stream's present (the session clock of the newest masked frame, never the client's). `danmaku.layout.Layouter`
keeps its lane state between comments, so each one costs the same however long the session, and lands exactly
where a layout of the whole list would put it: a placement, once broadcast, never moves.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ..danmaku.comments import Comment
from ..danmaku.layout import ActiveWindow, LayoutConfig, Layouter, Placement


class LiveComments:
    """One session's comments on a `shape` (h, w) picture; thread-safe."""

    def __init__(self, shape: tuple[int, int], config: LayoutConfig | None = None, font: str | Path | None = None,
                 scheduled: Sequence[Comment] = ()) -> None:
        self._engine = Layouter(shape, config, font)
        self.shape, self.config, self.font_file = shape, self._engine.config, self._engine.font_file
        self._pending = deque(sorted(scheduled, key=lambda c: c.time_s))
        self._offered = 0
        self._lock = threading.Lock()

    def advance(self, t: float) -> list[Placement]:
        """Place the scheduled comments due by session time `t`; returns their placements (to broadcast)."""
        with self._lock:
            return self._due(t)

    def add(self, t: float, mode: str, colour: int, text: str) -> tuple[list[Placement], Placement | None]:
        """A viewer's checked comment at session time `t`: (placements of the scheduled comments due by then, the
        viewer's placement or None when there was no room)."""
        with self._lock:
            due = self._due(t)
            return due, self._place(Comment(t, mode, text, color=colour))

    def placements(self) -> list[Placement]:
        with self._lock:
            return list(self._engine.placements)

    def window(self) -> ActiveWindow:
        """The placements on screen at non-decreasing times, as the session goes on (one reader: the burn-in)."""
        return ActiveWindow(self._engine.placements)  # the engine appends to this very list

    def _due(self, t: float) -> list[Placement]:
        placed = []
        while self._pending and self._pending[0].time_s <= t:
            placement = self._place(self._pending.popleft())
            if placement is not None:
                placed.append(placement)
        return placed

    def _place(self, comment: Comment) -> Placement | None:
        self._offered += 1
        return self._engine.place(self._offered - 1, comment)
