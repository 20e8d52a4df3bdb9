"""Live sources through PyAV: a camera (/dev/videoN, FFmpeg's v4l2 input), a stream URL (UDP/RTP MPEG-TS, RTSP,
RTMP, SRT, HLS over HTTP), or a file paced at its own frame rate by its timestamps (`realtime`), as a stream
arrives.

Each frame is stamped on arrival with `time.perf_counter()` (latency starts there) and with a session clock `t`:
seconds since the first frame, from the source's own pts, strictly increasing. A live stream's pts may restart or
jump (a new broadcast, a wrap); such a jump is a discontinuity, flagged so the temporal stage starts afresh, and
the clock moves on by one nominal frame instead of following it. Frames are not converted to RGB here: most of
them may be dropped, and only the ones the model takes are worth converting.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from ..errors import VideoError
from ..video import DEMUX_ERRORS, apply_rotation, demux_error_text, error_text, rotation_of

STREAM_SCHEMES = ("udp", "rtp", "rtsp", "rtmp", "rtmps", "srt", "http", "https", "tcp")
MAX_GAP_S = 2.0  # a pts jump larger than this (or backwards) is a discontinuity, not elapsed time
_FALLBACK_RATE = Fraction(30)
# Start soon: probe half a megabyte or a second of a stream, not FFmpeg's 5 s. (Not fflags=nobuffer: it discards
# the packets read while probing, a whole HLS segment.)
_STREAM_OPTIONS = {"probesize": "500000", "analyzeduration": "1000000"}
_UDP_OPTIONS = {"overrun_nonfatal": "1", "fifo_size": "50000"}


@dataclass(frozen=True)
class Captured:
    """A decoded frame as it arrived: not yet RGB (see `rgb()`), with its pts and the session clock."""

    frame: av.VideoFrame
    pts: int  # the source's presentation timestamp, in `time_base`
    time_base: Fraction
    t: float  # session seconds since the first frame (strictly increasing)
    arrived: float  # time.perf_counter() when it was decoded (or released by the pacer)
    discontinuity: bool  # the source's time jumped before this frame: temporal state must be dropped
    rotation: int

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) as displayed (rotation applied)."""
        h, w = self.frame.height, self.frame.width
        return (w, h) if self.rotation in (90, 270) else (h, w)

    def rgb(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W, 3) uint8 as displayed, read-only (later stages draw on copies, never on a shared frame).

        `size` (h, w) scales while converting from YUV, in one pass: what a whole-frame model needs costs a
        quarter of the full picture. At full size, 4:2:0 is converted by OpenCV (2-3x faster than swscale's rgb24).
        """
        frame = self.frame
        if size is not None:
            h, w = size if self.rotation in (0, 180) else size[::-1]
            rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()
        elif frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
            rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
        else:
            rgb = frame.to_ndarray(format="rgb24")
        rgb = apply_rotation(rgb, self.rotation)
        rgb.flags.writeable = False
        return rgb


def source_kind(source: str) -> str:
    """'camera', 'stream' or 'file'."""
    if source.startswith("/dev/video"):
        return "camera"
    scheme = urlsplit(source).scheme.lower()
    if scheme in STREAM_SCHEMES:
        return "stream"
    return "file"


def open_container(source: str, timeout_s: float) -> av.container.InputContainer:
    """Open `source` for reading, with `timeout_s` for opening and for every read of a network source.

    Raises:
        VideoError: one line saying why (no such file or device, refused, timed out, not a video).
    """
    kind = source_kind(source)
    if kind != "stream" and not Path(source).exists():
        raise VideoError(f"{source}: no such {'camera' if kind == 'camera' else 'file'}")
    options = dict(_STREAM_OPTIONS) if kind != "file" else {}
    if urlsplit(source).scheme.lower() == "udp":
        options.update(_UDP_OPTIONS)
    try:
        return av.open(source, "r", format="v4l2" if kind == "camera" else None, options=options,
                       timeout=None if kind == "file" else (timeout_s, timeout_s))
    except av.error.ExitError as exc:
        raise VideoError(f"{source}: nothing arrived within {timeout_s:g} s") from exc
    except av.error.FFmpegError as exc:
        raise VideoError(f"{source}: cannot open ({error_text(exc)})") from exc
    except (OSError, ValueError) as exc:
        raise VideoError(f"{source}: cannot open ({exc})") from exc


class _Clock:
    """Source pts -> session seconds, strictly increasing; jumps become one nominal frame and a discontinuity."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.last_time: float | None = None
        self.t = 0.0

    def advance(self, time_s: float) -> tuple[float, bool] | None:
        """(t, discontinuity) for a frame shown at source time `time_s`; None for a repeated timestamp."""
        if self.last_time is None:
            self.last_time = time_s
            return self.t, False
        dt = time_s - self.last_time
        if dt == 0:
            return None
        jump = not 0 < dt <= MAX_GAP_S
        self.t += self.step_s if jump else dt
        self.last_time = time_s
        return self.t, jump


def capture(source: str, *, realtime: bool = False, timeout_s: float = 5.0,
            should_stop: Callable[[], bool] = lambda: False) -> Iterator[Captured]:
    """Yield the frames of `source` as they arrive (see the module docstring).

    A file is read only with `realtime` (paced by its pts from the first frame; without it, it would be read as
    fast as it decodes, which is not live). The end of a stream (EOF) ends the iteration; a read that times out
    or fails is an error.

    Raises:
        VideoError: cannot open, no video stream, a file without `realtime`, or the stream stopped (timed out or
            failed) after it started.
    """
    if source_kind(source) == "file" and not realtime:
        raise VideoError(f"{source}: a file is live only with --realtime (paced at its own frame rate); "
                         "for offline work use danmask segment")
    with open_container(source, timeout_s) as container:
        if not container.streams.video:
            raise VideoError(f"{source}: has no video stream")
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
        rate = Fraction(stream.average_rate or stream.guessed_rate or _FALLBACK_RATE)
        clock = _Clock(float(1 / rate))
        rotation, last_pts, start_wall = None, None, None
        for frame in _frames(container, stream, source, timeout_s):
            if should_stop():
                return
            pts = frame.pts if frame.pts is not None else (last_pts or 0) + max(1, round(1 / (rate * time_base)))
            step = clock.advance(float(pts * time_base))
            if step is None:
                continue
            t, jump = step
            last_pts = pts
            if rotation is None:
                rotation = rotation_of(frame, stream)
            if realtime:
                start_wall = start_wall if start_wall is not None else time.perf_counter() - t
                time.sleep(max(0.0, start_wall + t - time.perf_counter()))
            yield Captured(frame, int(pts), time_base, t, time.perf_counter(), jump, rotation)


def _frames(container, stream, source: str, timeout_s: float) -> Iterator[av.VideoFrame]:
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue  # a corrupt packet (UDP loss): the decoder recovers at the next keyframe
    except av.error.ExitError as exc:
        raise VideoError(f"{source}: the stream stopped (nothing arrived for {timeout_s:g} s)") from exc
    except DEMUX_ERRORS as exc:
        raise VideoError(f"{source}: the stream stopped ({demux_error_text(exc)})") from exc
