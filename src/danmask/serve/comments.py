"""Viewer danmaku of the service: what a posted comment may be, how often a client may post, and the Bilibili XML
the comments are served as. Comment text is stored and served as data (JSON strings, XML character data), and the
player draws it with canvas text: it never becomes HTML."""
from __future__ import annotations

import math
import threading
import time
from xml.sax.saxutils import escape

from ..danmaku.comments import BILIBILI_MODES, MODES, Comment, clean_text
from ..errors import CommentError

MAX_CHARS = 100  # Bilibili's own limit for one comment
RATE = (5, 10.0)  # at most 5 comments per client in any 10 s
BILIBILI_NUMBER = {"scroll": 1, "bottom": 4, "top": 5, "reverse": 6}


def check_comment(body: object, duration_s: float | None) -> tuple[float, str, int, str]:
    """(time, mode, colour, text) of a posted comment.

    Accepts {"time": seconds, "mode": "scroll|top|bottom|reverse" or Bilibili's 1/4/5/6, "colour" (or "color"):
    0xRRGGBB as a number or "#rrggbb", "text": 1..100 characters on one line}.

    Raises:
        CommentError: a one-line reason.
    """
    if not isinstance(body, dict):
        raise CommentError("a comment is a JSON object with time, mode, colour and text")
    t = body.get("time")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise CommentError("time must be a number of seconds >= 0")
    if duration_s and t > duration_s + 1:
        raise CommentError(f"time {t} is after the end of the video ({duration_s:.1f} s)")
    mode = body.get("mode", "scroll")
    mode = BILIBILI_MODES.get(mode, mode) if isinstance(mode, int) and not isinstance(mode, bool) else mode
    if mode not in MODES:
        raise CommentError(f"mode must be one of {', '.join(MODES)} (or Bilibili's 1, 4, 5, 6)")
    colour = body.get("colour", body.get("color", 0xFFFFFF))
    if isinstance(colour, str) and len(colour) == 7 and colour.startswith("#"):
        try:
            colour = int(colour[1:], 16)
        except ValueError:
            pass
    if isinstance(colour, bool) or not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF:
        raise CommentError("colour must be 0xRRGGBB as a number or '#rrggbb'")
    text = body.get("text")
    if not isinstance(text, str):
        raise CommentError("text must be a string")
    if len(text) > MAX_CHARS:
        raise CommentError(f"text is {len(text)} characters, more than {MAX_CHARS}")
    text = clean_text(text)
    if not text:
        raise CommentError("text is empty")
    return float(t), mode, colour, text


class RateLimit:
    """At most `count` events per client in any `window_s` seconds (a sliding window in memory)."""

    def __init__(self, count: int = RATE[0], window_s: float = RATE[1]) -> None:
        self.count, self.window_s = count, window_s
        self._events: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 10_000:  # forget idle clients
                self._events = {c: e for c, e in self._events.items() if e and now - e[-1] < self.window_s}
            recent = [t for t in self._events.get(client, []) if now - t < self.window_s]
            allowed = len(recent) < self.count
            if allowed:
                recent.append(now)
            self._events[client] = recent
            return allowed


def to_comments(rows: list[dict]) -> list[Comment]:
    """Stored rows -> Comments for the layout engine."""
    return [Comment(r["time"], r["mode"], r["text"], color=r["colour"], id=str(r["id"])) for r in rows]


def bilibili_xml(rows: list[dict]) -> str:
    """Bilibili's comment XML (<i><d p="time,mode,size,colour,...">text</d></i>), text escaped as character data."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<i>"]
    for r in rows:
        p = f"{r['time']:.3f},{BILIBILI_NUMBER[r['mode']]},25,{r['colour']},0,0,0,{r['id']}"
        lines.append(f'<d p="{p}">{escape(r["text"])}</d>')
    lines.append("</i>")
    return "\n".join(lines) + "\n"
