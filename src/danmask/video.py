"""Video input with PyAV: displayed frames (rotation applied) keyed by their container PTS.

Time is carried as integer `pts` + `time_base` from the container, never as frame index x fps, so variable
frame rate clips keep their true timing. Damage never loses the good part: `iter_frames` yields every frame
decoded before the damage and only then raises `VideoError`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import VideoError

# A decoded stream that ends this much earlier than the container says is reported as truncated.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_FRACTION = 0.05


@dataclass(frozen=True)
class VideoFrame:
    """One displayed frame: RGB pixels after rotation, and when it is shown."""

    rgb: np.ndarray  # (H, W, 3) uint8, rotation applied
    pts: int  # presentation timestamp in `time_base` units
    time_base: Fraction
    time: float  # pts * time_base, seconds
    index: int  # position in display order (for naming only; never for timing)

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise VideoError(f"frame {self.index}: expected (H, W, 3) uint8 RGB, got {self.rgb.shape} {self.rgb.dtype}")


@dataclass(frozen=True)
class VideoInfo:
    """What a player needs to know about a video before decoding it."""

    path: Path
    width: int  # displayed width (after rotation)
    height: int  # displayed height (after rotation)
    rotation: int  # degrees counter-clockwise applied to decoded frames to display them (0, 90, 180, 270)
    avg_fps: Fraction | None
    duration_s: float | None
    frames: int | None  # container's count, or duration x avg_fps as an estimate; None when unknown
    time_base: Fraction
    codec: str
    has_audio: bool


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video file")
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot open as a video ({error_text(exc)})") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{path}: cannot open ({exc})") from exc


def error_text(exc: Exception) -> str:
    """FFmpeg messages carry errno and file name; keep only the human part."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoError(f"{path}: has no video stream (found: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if not stream.codec_context or stream.codec_context.name is None:
        raise VideoError(f"{path}: video stream has an unknown codec")
    return stream


def _normalise_rotation(degrees: float) -> int:
    """Any angle -> one of 0/90/180/270 counter-clockwise (display matrices only encode right angles in practice)."""
    return int(round(degrees / 90.0)) % 4 * 90


def rotation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Display-matrix rotation of the frame, falling back to the legacy `rotate` tag (clockwise degrees)."""
    try:
        rotation = frame.rotation
    except (AttributeError, ValueError):
        rotation = 0
    if not rotation and "rotate" in stream.metadata:
        try:
            rotation = -float(stream.metadata["rotate"])
        except ValueError:
            rotation = 0
    return _normalise_rotation(rotation)


def apply_rotation(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Decoded pixels -> displayed ones: `rotation` degrees counter-clockwise (from `rotation_of`)."""
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def probe(path: str | Path) -> VideoInfo:
    """Read the header and decode the first frame (its rotation and the proof the stream decodes).

    Raises:
        VideoError: missing file, not a media file, no video stream (audio-only), or no decodable frame.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        first = _first_frame(container, stream, path)
        rotation = rotation_of(first, stream)
        w, h = (first.width, first.height) if rotation in (0, 180) else (first.height, first.width)
        fps = Fraction(stream.average_rate) if stream.average_rate else None
        duration = _duration_s(container, stream)
        frames = stream.frames or (int(round(duration * fps)) if duration and fps else None)
        return VideoInfo(
            path=path, width=w, height=h, rotation=rotation, avg_fps=fps, duration_s=duration, frames=frames,
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000),
            codec=stream.codec_context.name, has_audio=bool(container.streams.audio),
        )


def _first_frame(container, stream, path: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: no decodable video frame ({error_text(exc)})") from exc
    raise VideoError(f"{path}: video stream contains no frames")


def iter_frames(path: str | Path, start: int | None = None, end: int | None = None) -> Iterator[VideoFrame]:
    """Yield every displayed frame in presentation order with its container PTS.

    Frames without a PTS (rare, some AVI) get the previous PTS plus one nominal frame duration.
    Frames whose PTS does not increase are dropped, so time is strictly increasing.

    `start` and `end` (pts in the stream's time base) limit the frames to start <= pts < end: decoding begins at
    the keyframe at or before `start` (a seek), so a part of a long video costs about its own length. A part that
    ends before the stream does is not checked for truncation.

    Raises:
        VideoError: as `probe`, or after the good frames when packets fail to decode, the demuxer hits
            damage, or the stream ends before the header says it should (truncated file).
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
        step = _nominal_step(stream, time_base)
        if start is not None:
            _seek(container, stream, start, path)
        decoded = _DecodeLog()
        index, last_pts, rotation = 0, None, None
        for frame in _decode(container, stream, decoded):
            pts = frame.pts if frame.pts is not None else (last_pts + step if last_pts is not None else 0)
            if (last_pts is not None and pts <= last_pts) or (start is not None and pts < start):
                continue
            if end is not None and pts >= end:
                return
            if rotation is None:
                rotation = rotation_of(frame, stream)
            rgb = apply_rotation(frame.to_ndarray(format="rgb24"), rotation)
            yield VideoFrame(rgb=rgb, pts=int(pts), time_base=time_base, time=float(pts * time_base), index=index)
            index, last_pts = index + 1, pts
        where = f"after frame {index}" if index else "before the first frame"
        if decoded.demux_error:
            raise VideoError(f"{path}: damaged, reading stopped {where} ({decoded.demux_error})")
        if index == 0:
            detail = f" ({decoded.first_error})" if decoded.first_error else ""
            raise VideoError(f"{path}: video stream contains no decodable frames{detail}")
        if decoded.bad_packets:
            raise VideoError(
                f"{path}: damaged: {decoded.bad_packets} packet(s) could not be decoded ({decoded.first_error})"
            )
        _check_complete(container, stream, path, None if start is not None else index,
                        float((last_pts + step) * time_base))


def _seek(container, stream, pts: int, path: Path) -> None:
    try:
        container.seek(int(pts), stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot seek to pts {pts} ({error_text(exc)})") from exc


def keyframes(path: str | Path) -> list[int]:
    """PTS of every keyframe of the video stream, in order, read from the packets without decoding: where a
    long video can be cut into parts that decode independently.

    Raises:
        VideoError: as `probe`.
    """
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            found = {int(p.pts) for p in container.demux(stream) if p.is_keyframe and p.pts is not None}
        except DEMUX_ERRORS as exc:
            raise VideoError(f"{path}: damaged, cannot list keyframes ({demux_error_text(exc)})") from exc
    return sorted(found)


# PyAV raises IndexError when a damaged file announces a stream mid-way that the container never opened (FLV)
DEMUX_ERRORS = (av.error.FFmpegError, IndexError)


def demux_error_text(exc: Exception) -> str:
    return error_text(exc) if isinstance(exc, av.error.FFmpegError) else "a packet names a stream the file lacks"


@dataclass
class _DecodeLog:
    bad_packets: int = 0
    first_error: str = ""
    demux_error: str = ""


def _decode(container, stream, log: _DecodeLog) -> Iterator[av.VideoFrame]:
    """Demux and decode separately: a bad packet is skipped and counted, a demuxer failure flushes the frames
    the decoder still holds (frame threading buffers several) before stopping."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.FFmpegError as exc:
                log.bad_packets += 1
                log.first_error = log.first_error or error_text(exc)
    except DEMUX_ERRORS as exc:
        log.demux_error = demux_error_text(exc)
        try:
            yield from stream.codec_context.decode(None)
        except av.error.FFmpegError:
            pass  # the decoder is as broken as the file; the frames it gave are kept


def _nominal_step(stream, time_base: Fraction) -> int:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        return 1
    return max(1, int(round(1 / (Fraction(rate) * time_base))))


def _check_complete(container, stream, path: Path, frames: int | None, decoded_end_s: float) -> None:
    """Demuxers stop quietly at a truncated end; compare what decoded (`frames`: None for a part that started
    after the beginning) with what the header promised."""
    expected = stream.frames
    if expected and frames is not None and frames < expected * (1 - _TRUNCATION_SLACK_FRACTION):
        raise VideoError(f"{path}: truncated or damaged: decoded {frames} of {expected} frames")
    duration = _duration_s(container, stream)
    if duration is None:
        return
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    missing = start + duration - decoded_end_s
    if missing > max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_FRACTION * duration):
        raise VideoError(
            f"{path}: truncated or damaged: video stops at {decoded_end_s:.2f} s of {start + duration:.2f} s"
        )
