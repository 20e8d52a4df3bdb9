"""`run_live`: the whole live job in one call (the CLI's `danmask live` mirrors its keywords).

Stages and threads: capture (decode, newest frame wins) -> the model and temporal stage on the caller's thread
-> the page encoder and the burn-in encoder, each behind its own newest-wins slot. Nothing queues, so the mask is
never more than one model step behind the source, whatever each stage costs.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..danmaku.comments import Comment
from ..danmaku.layout import LayoutConfig
from ..outputs import check_file
from ..pipeline import default_mask_size, to_uint8
from ..runtime import FAST_MODEL, SegModel, load_model
from ..segmenter import Segmenter, TemporalConfig
from .burn import BurnIn
from .capture import Capture
from .comments import LiveComments
from .source import Captured
from .stats import LiveStats

if TYPE_CHECKING:
    from .server import LiveServer

PROGRESS_EVERY_S = 1.0


@dataclass
class _Outputs:
    """What the session feeds after each mask: the live page and the burn-in, started on the first frame."""

    comments: LiveComments
    server: LiveServer | None = None
    burn: BurnIn | None = None

    def feed(self, item: Captured, rgb: np.ndarray, mask: np.ndarray, latency_s: float) -> None:
        due = self.comments.advance(item.t)
        if self.burn is not None:
            if self.burn.error is not None:
                raise self.burn.error
            self.burn.put(rgb, item.t, mask)
        if self.server is not None:
            self.server.announce(due)
            self.server.publish(item, mask, latency_s * 1000.0)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.burn is not None:
            self.burn.finish()
            if self.burn.error is not None:
                raise self.burn.error


def run_live(
    source: str | Path,
    model: SegModel | str = FAST_MODEL,
    *,
    realtime: bool = False,
    serve: bool = False,
    host: str = "127.0.0.1",
    port: int = 8767,
    output: str | Path | None = None,
    comments: Sequence[Comment] = (),
    layout: LayoutConfig | None = None,
    font: str | Path | None = None,
    duration: float | None = None,
    timeout: float = 5.0,
    threads: int = 1,
    device: str = "auto",
    config: TemporalConfig | None = None,
    mask_size: tuple[int, int] | None = None,
    comment_rate: tuple[int, float] = (5, 10.0),
    stop: threading.Event | None = None,
    on_serving: Callable[[str], object] | None = None,
    progress: Callable[[LiveStats], object] | None = None,
) -> LiveStats:
    """Segment a live source as it arrives, newest frame first; optionally serve the live page and burn in.

    Args:
        source: a camera (/dev/videoN), a stream URL (udp://, rtp://, rtsp://, rtmp://, srt://, http(s):// HLS),
            or a video file with `realtime`.
        model: registry name, .onnx path or loaded SegModel (default: the fast whole-frame model).
        realtime: release frames at their own times (pts), as a stream arrives: needed for a file, and paces a
            VOD playlist too.
        serve: serve the live page on `host`:`port` (0 picks a free port); `on_serving(url)` is called once it
            listens (after the first frame: the page needs the picture's size).
        output: a video file to write the stream to with the danmaku burned in.
        comments: comments to show as the stream reaches their times (seconds from the first frame).
        layout, font: danmaku layout settings and font (see `danmaku.layout`).
        duration: stop after this many seconds of the source's own time (None: until it ends).
        timeout: seconds to wait for a network source to open, and for each read after.
        threads, device, config, mask_size: how the masks are made (see `pipeline.iter_masks`).
        comment_rate: (count, seconds): at most count comments per viewer address in any window of seconds.
        stop: set it to end the run cleanly from another thread (the CLI uses Ctrl-C).
        progress: called with the counters about once a second.

    Returns:
        LiveStats (frames, masked, dropped, latencies); `.summary()` is the CLI's --json object.

    Raises:
        VideoError: the source cannot be opened, or the stream stopped (after what arrived was processed).
        OutputError: `output` cannot be written (checked before any work).
        ModelError, FontError, DanmaskError (cannot listen on the port).
    """
    if output is not None:
        check_file(output)
    seg_model = load_model(model, threads=threads, device=device) if isinstance(model, str) else model
    stop = stop or threading.Event()
    stats = LiveStats()
    capture = Capture(str(source), realtime=realtime, timeout_s=timeout)
    capture.start()
    outputs: _Outputs | None = None
    segmenter: Segmenter | None = None
    view: tuple[int, int] | None = None  # the size frames are converted at (None: as decoded)
    last_report = time.perf_counter()
    try:
        while not stop.is_set():
            item = capture.take()
            if item is None:
                if capture.ended:
                    break
                continue
            if segmenter is None:
                segmenter = Segmenter(seg_model, config, mask_size or default_mask_size(item.shape))
                full = output is not None or segmenter.tracks_people  # the page converts its own copy
                view = None if full else _model_view(item.shape, segmenter.model.spec.input_size)
                outputs = _start_outputs(item.shape, serve=serve, host=host, port=port, output=output,
                                         comments=comments, layout=layout, font=font, comment_rate=comment_rate,
                                         title=Path(str(source)).name or str(source), on_serving=on_serving)
            elif item.discontinuity:
                segmenter.reset()
                stats.discontinuities += 1
            rgb = item.rgb(view)
            mask = to_uint8(segmenter.step(rgb, item.t))
            latency = time.perf_counter() - item.arrived
            stats.masked += 1
            stats.latencies_s.append(latency)
            stats.frames = capture.captured
            outputs.feed(item, rgb, mask, latency)
            if progress and time.perf_counter() - last_report >= PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                progress(stats)
            if duration is not None and item.t >= duration:
                break
    finally:
        capture.stop()
        stats.frames = capture.captured
        stats.scene_cuts = segmenter.stats.cuts if segmenter else 0
        stats.ended = time.perf_counter()
        if outputs is not None:
            outputs.close()
            stats.written = outputs.burn.written if outputs.burn is not None else None
    return stats


def _model_view(shape: tuple[int, int], input_size: tuple[int, int]) -> tuple[int, int] | None:
    """The frame size a whole-frame model's input is made from when nothing else needs the full picture: twice the
    input (the same first step as `runtime.base.shrink`), or None when the frame is not larger than that."""
    h, w = (2 * side for side in input_size)
    return (h, w) if shape[0] > h and shape[1] > w else None


def _start_outputs(shape: tuple[int, int], *, serve: bool, host: str, port: int,
                   output: str | Path | None, comments: Sequence[Comment], layout: LayoutConfig | None,
                   font: str | Path | None, comment_rate: tuple[int, float], title: str,
                   on_serving: Callable[[str], object] | None) -> _Outputs:
    outputs = _Outputs(LiveComments(shape, layout, font, comments))
    if output is not None:
        outputs.burn = BurnIn(output, shape, outputs.comments)
        outputs.burn.start()
    if serve:
        from .server import LiveServer

        outputs.server = LiveServer(outputs.comments, host, port, title, comment_rate).start()
        if on_serving:
            on_serving(outputs.server.url)
    return outputs
