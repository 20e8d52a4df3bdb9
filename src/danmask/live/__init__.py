"""Live: danmaku behind people on live streams and cameras (`danmask live`).

One module per stage, in the order a frame meets them: `source` (PyAV: camera, stream URL, or a file paced by its
pts; the session clock), `capture` (the reading thread; the newest frame wins), the model and temporal stage on
the caller's thread (`session.run_live`, with `segmenter.Segmenter`), then `server` (the live page: JPEG frames and
their masks over a WebSocket, viewers' comments broadcast) and `burn` (the stream written with the danmaku burned
in). `newest` is the one-slot mailbox between stages, `comments` the viewers' comments laid out as they come,
`stats` the counters and latency summary.
"""
from .session import run_live
from .stats import LiveStats

__all__ = ["LiveStats", "run_live"]
