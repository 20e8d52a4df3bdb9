"""`-o OUT`: the live stream written with the danmaku burned in behind the people, as it goes: a video file, or
an HLS playlist (OUT.m3u8) that players can follow while it grows.

The drawing and the encoder are the burn-in's own (`danmaku.sprites.DanmakuCompositor`, `danmaku.render`'s
writer); this stage only feeds them from a Newest slot in its own thread, so an encoder slower than the stream
skips frames instead of delaying the masks. Frames are stamped with the session clock at 1/90000 s (MPEG-TS's
tick): where frames were dropped the file has variable frame rate, with every frame shown when it was live.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..danmaku.render import VideoWriter
from ..danmaku.sprites import DanmakuCompositor
from ..video import VideoFrame, VideoInfo
from .comments import LiveComments
from .newest import Newest

TIME_BASE = Fraction(1, 90000)
NOMINAL_RATE = Fraction(30)  # the encoder's rate hint only: every frame's time is in its pts
CRF = 20
# OUT.m3u8: an HLS playlist growing as the stream goes (segments OUT0.ts, OUT1.ts ... beside it, about 2 s each,
# cut at keyframes every 60 frames), closed with #EXT-X-ENDLIST at the end.
HLS_OPTIONS = {"hls_time": "2", "hls_list_size": "0", "hls_playlist_type": "event"}
HLS_KEYFRAME_EVERY = 60


class BurnIn(threading.Thread):
    """Encodes (frame, uint8 mask) pairs put into `slot` until it is closed; `error` holds what stopped it."""

    def __init__(self, output: str | Path, shape: tuple[int, int], comments: LiveComments) -> None:
        super().__init__(name="danmask-live-burn", daemon=True)
        output = Path(output)
        h, w = shape
        self.info = VideoInfo(path=output, width=w, height=h, rotation=0, avg_fps=NOMINAL_RATE, duration_s=None,
                              frames=None, time_base=TIME_BASE, codec="h264", has_audio=False)
        self.output = output
        self.compositor = DanmakuCompositor(comments.font_file, comments.config.opacity)
        self.window = comments.window()
        self.slot: Newest[tuple[VideoFrame, np.ndarray]] = Newest()
        self.written = 0  # frames in the file (the encoder skips what it has no time for)
        self.error: BaseException | None = None

    def put(self, rgb: np.ndarray, t: float, mask: np.ndarray) -> None:
        """Queue the newest masked frame (`rgb` read-only: the writer draws on a copy)."""
        frame = VideoFrame(rgb=rgb, pts=round(t / TIME_BASE), time_base=TIME_BASE, time=t, index=0)
        self.slot.put((frame, mask))

    def run(self) -> None:
        try:
            hls = self.output.suffix.lower() == ".m3u8"
            with VideoWriter(self.output, self.output, self.info, CRF, muxer_options=HLS_OPTIONS if hls else None,
                             keyframe_every=HLS_KEYFRAME_EVERY if hls else None) as writer:
                self.written = writer.write_all(self._frames(), self._paint, progress=False)
        except Exception as exc:  # re-raised on the model's thread by the session
            self.error = exc
            self.slot.close()

    def _frames(self) -> Iterator[tuple[VideoFrame, np.ndarray]]:
        while (item := self.slot.get()) is not None:
            yield item

    def _paint(self, rgb: np.ndarray, mask: np.ndarray, t: float) -> None:
        self.compositor.composite(rgb, mask, self.window.at(t), t)

    def finish(self) -> None:
        """Encode what is queued, flush and close the file."""
        self.slot.close()
        self.join()
