"""Burn-in: decode a video, draw the scheduled danmaku behind the people, encode, and copy the audio.

Every frame keeps its source PTS and time base (variable frame rate survives), and the mask used is the one of
the frame's own timestamp (`MaskTrack.mask_at(frame.time)`), or the one the segmenter computes for that very
frame when no track is given. Audio packets are copied unchanged when the output container can hold them.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import OutputError, TrackError, VideoError
from ..outputs import check_file
from ..runtime import SegModel
from ..segmenter import TemporalConfig
from ..track import MaskTrack
from ..trackreader import TrackReader
from ..video import DEMUX_ERRORS, VideoFrame, VideoInfo, error_text, iter_frames, probe
from .comments import Comment
from .layout import LayoutConfig, Schedule, layout
from .sprites import DanmakuCompositor

Painter = Callable[[np.ndarray, "np.ndarray | None", float], object]  # (rgb in place, mask, time)
# Video the browser's <video> plays as it is (anything else is re-encoded for the web player)
BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_SUFFIXES = {".mp4", ".m4v", ".webm"}
BROWSER_PIX_FMTS = {"yuv420p", "yuvj420p"}
# Audio codecs an MP4/MOV file can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}
MP4_SUFFIXES = {".mp4", ".m4v", ".mov"}


@dataclass
class RenderResult:
    """What a render did, for the CLI summary and for tests."""

    output: Path
    frames: int
    seconds: float
    schedule: Schedule
    audio: str  # "copied", "re-encoded to aac" or "none"
    mask_source: str  # "track" or the model name

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def render_video(
    video: str | Path,
    comments: list[Comment],
    output: str | Path,
    *,
    track: MaskTrack | TrackReader | str | Path | None = None,
    model: SegModel | str | None = None,
    config: LayoutConfig | None = None,
    font: str | Path | None = None,
    threads: int = 1,
    device: str = "auto",
    temporal: TemporalConfig | None = None,
    mask_size: tuple[int, int] | None = None,
    crf: int = 18,
    progress: bool = False,
) -> RenderResult:
    """Write `output` = `video` with `comments` flying behind the people.

    Args:
        track: a MaskTrack, TrackReader or .dmask file for this video (a file is read a block at a time); None
            segments on the fly with `model`.
        model: segmentation model name/path used when there is no track (default: the runtime's default).
        config: layout settings (speed, area, density, opacity, ...).
        font: font file; default: the CJK font found by `font.find_font`.
        threads, device, temporal, mask_size: how masks are computed on the fly (see `pipeline.iter_masks`).
        crf: x264 quality (lower is better, 18 is visually lossless).

    Raises:
        VideoError: unreadable input (after the good frames were written).
        OutputError: the output cannot be written (checked before any work, and while writing).
        TrackError: the track belongs to a video of another size.
        FontError, ModelError, LayoutError: as their modules say.
    """
    video, output = Path(video), Path(output)
    if output.resolve() == video.resolve():
        raise OutputError(f"{output}: output would overwrite the input video")
    check_file(output)
    info = probe(video)
    config = config or LayoutConfig()
    schedule = layout(comments, (info.height, info.width), config, font)
    with ExitStack() as stack:
        if isinstance(track, (str, Path)):  # read block by block; the burn-in protects the stored union
            track = stack.enter_context(TrackReader(track, people=False))
        if track is not None:
            check_track(track, info)
        frames = _frames_with_masks(video, track, model, threads=threads, device=device, config=temporal,
                                    mask_size=mask_size)
        compositor = DanmakuCompositor(schedule.font_file, config.opacity)
        window = schedule.active()
        started = time.perf_counter()
        with VideoWriter(video, output, info, crf) as writer:
            count = writer.write_all(frames, lambda rgb, mask, t: compositor.composite(rgb, mask, window.at(t), t),
                                     progress)
    return RenderResult(output, count, time.perf_counter() - started, schedule, writer.audio_mode,
                        _mask_source(track, model))


def browser_incompatibility(video: str | Path) -> str | None:
    """Why Chromium's <video> would not play this file as it is (None: it plays)."""
    video = Path(video)
    info = probe(video)
    with av.open(str(video)) as container:
        pix_fmt = container.streams.video[0].codec_context.pix_fmt
    if video.suffix.lower() not in BROWSER_SUFFIXES:
        return f"container {video.suffix or '(none)'}"
    if info.codec not in BROWSER_CODECS:
        return f"codec {info.codec}"
    if pix_fmt not in BROWSER_PIX_FMTS:
        return f"pixel format {pix_fmt}"
    if info.rotation:
        return "rotation metadata"  # upright copy: the page's canvas and the masks are in displayed orientation
    return None


def reencode_for_browser(video: str | Path, output: str | Path, progress: bool = False) -> VideoInfo:
    """H.264 4:2:0 MP4 copy of `video` with the same timestamps and audio (odd sizes lose their last row/column).

    Returns the info of the copy.
    """
    video, output = Path(video), Path(output)
    info = probe(video)
    even = replace(info, width=info.width - info.width % 2, height=info.height - info.height % 2)
    with VideoWriter(video, output, even, crf=20) as writer:
        writer.write_all(((frame, None) for frame in iter_frames(video)), None, progress)
    return probe(output)


def _mask_source(track: MaskTrack | TrackReader | None, model: SegModel | str | None) -> str:
    if track is not None:
        return "track"
    if model is None:
        return "default model"
    return model if isinstance(model, str) else model.spec.name


def check_track(track: MaskTrack | TrackReader, info: VideoInfo) -> None:
    """Refuse a track made for another video (its masks would be cut out in the wrong places)."""
    if tuple(track.source_size) != (info.height, info.width):
        th, tw = track.source_size
        raise TrackError(f"mask track was made for a {tw}x{th} video, but {info.path.name} is "
                         f"{info.width}x{info.height}")
    if len(track) == 0:
        raise TrackError("mask track is empty")


def _frames_with_masks(video: Path, track: MaskTrack | TrackReader | None, model: SegModel | str | None,
                       **segmentation) -> Iterator[tuple[VideoFrame, np.ndarray]]:
    """(frame, uint8 mask) pairs: the track's mask for the frame's own time, or one computed now with `model`
    and `segmentation` (the keywords of `pipeline.iter_masks`)."""
    if track is not None:
        return ((frame, track.mask_at(frame.time)) for frame in iter_frames(video))
    from ..pipeline import iter_masks, to_uint8
    from ..runtime import DEFAULT_MODEL

    return ((frame, to_uint8(mask)) for frame, mask in iter_masks(video, model or DEFAULT_MODEL, **segmentation))


class VideoWriter:
    """The output container: an H.264 stream with the source timestamps plus the source audio (`danmask render`,
    the browser copy of `danmask play`, and `danmask live -o`, which has no audio)."""

    def __init__(self, source: Path, output: Path, info: VideoInfo, crf: int, *,
                 muxer_options: dict[str, str] | None = None, keyframe_every: int | None = None) -> None:
        """`muxer_options` go to the container (e.g. an HLS playlist's segment length); `keyframe_every` frames
        at most between keyframes (where such a muxer can cut), else x264's default."""
        self.source, self.output, self.info, self.crf = source, output, info, crf
        self.muxer_options, self.keyframe_every = muxer_options or {}, keyframe_every
        self.audio_mode = "none"

    def __enter__(self) -> "VideoWriter":
        try:
            self.container = av.open(str(self.output), "w", options=self.muxer_options)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(f"{self.output}: cannot create output ({error_text(exc)})") from exc
        info = self.info
        stream = self.container.add_stream("libx264", rate=info.avg_fps or Fraction(30))
        stream.width, stream.height = info.width, info.height
        # browsers and most players need 4:2:0, which needs even sizes; odd sizes fall back to 4:4:4
        stream.pix_fmt = "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.options = {"crf": str(self.crf), "preset": "veryfast",
                          **({"g": str(self.keyframe_every)} if self.keyframe_every else {})}
        self.video_stream = stream
        self.audio = _AudioCopier(self.source, self.container, self.output) if info.has_audio else None
        self.audio_mode = self.audio.mode if self.audio else "none"
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.container.close()  # flushes the muxer: a full disk can show here first
        except (av.error.FFmpegError, OSError) as exc:
            if exc_info[0] is None:
                raise OutputError(f"{self.output}: cannot write ({error_text(exc)})") from exc

    def write_all(self, frames: Iterator[tuple[VideoFrame, np.ndarray | None]], paint: Painter | None,
                  progress: bool) -> int:
        """Encode every frame after `paint(rgb, mask, time)` drew on it (in place); returns the frame count."""
        from tqdm import tqdm

        bar = tqdm(total=self.info.frames, unit="frame", desc=f"render {self.output.name}", file=sys.stderr,
                   disable=not (progress and sys.stderr.isatty()), leave=False)
        count, last_time = 0, 0.0
        try:
            for frame, mask in frames:
                rgb = frame.rgb[:self.info.height, :self.info.width]
                if paint is not None:
                    rgb = rgb if rgb.flags.writeable else rgb.copy()
                    paint(rgb, mask, frame.time)
                self._encode(rgb, frame.pts)
                count, last_time = count + 1, frame.time
                bar.update(1)
                if self.audio:
                    self.audio.copy_until(frame.time)
        except VideoError as exc:  # damaged input: keep a playable file of the frames before the damage
            self._finish(audio_until=last_time)
            raise VideoError(f"{exc}; the {count} frames before it were written to {self.output}") from exc
        finally:
            bar.close()
        self._finish()
        return count

    def _finish(self, audio_until: float = float("inf")) -> None:
        self._mux(self.video_stream.encode())
        if self.audio:
            self.audio.finish(audio_until)

    def _encode(self, rgb: np.ndarray, pts: int) -> None:
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        out.pts, out.time_base = pts, self.info.time_base
        self._mux(self.video_stream.encode(out))

    def _mux(self, packets: list[av.Packet]) -> None:
        mux(self.container, packets, self.output)


def mux(container: av.container.OutputContainer, packets: av.Packet | list[av.Packet], output: Path) -> None:
    """Mux into `output`; a failed write (full disk, say) is an OutputError."""
    try:
        container.mux(packets)
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{output}: cannot write ({error_text(exc)})") from exc


class _AudioCopier:
    """Moves the source's first audio stream into the output, interleaved with the video by time."""

    def __init__(self, source: Path, container: av.container.OutputContainer, output: Path) -> None:
        self.input = av.open(str(source), "r")
        in_stream = self.input.streams.audio[0]
        codec = in_stream.codec_context.name
        if output.suffix.lower() in MP4_SUFFIXES and codec not in MP4_AUDIO:
            self.mode = f"re-encoded to aac (source {codec})"
            self.out_stream = container.add_stream("aac", rate=in_stream.codec_context.sample_rate)
            self.transcode = True
        else:
            self.mode = "copied"
            self.out_stream = container.add_stream_from_template(in_stream)
            self.transcode = False
        self.in_stream = in_stream
        self.container, self.output = container, output
        self.packets = self.input.demux(in_stream)
        self.pending: av.Packet | None = None
        self.done = False

    def copy_until(self, t: float) -> None:
        """Write every audio packet that starts at or before video time `t`."""
        while not self.done:
            packet = self.pending or self._next()
            if packet is None:
                return
            if packet.pts is not None and float(packet.pts * packet.time_base) > t:
                self.pending = packet
                return
            self.pending = None
            self._write(packet)

    def finish(self, until: float = float("inf")) -> None:
        """Copy the rest of the audio (up to `until` seconds) and flush the encoder if re-encoding."""
        self.copy_until(until)
        if self.transcode:
            mux(self.container, self.out_stream.encode(None), self.output)
        self.input.close()

    def _next(self) -> av.Packet | None:
        try:
            packet = next(self.packets)
        except StopIteration:
            packet = None
        except DEMUX_ERRORS:
            packet = None  # damaged audio: keep what was copied; the video reader reports damage itself
        if packet is None or packet.dts is None and packet.size == 0:
            self.done = True
            return None
        return packet

    def _write(self, packet: av.Packet) -> None:
        if self.transcode:
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                return  # one undecodable audio packet becomes a short silence, not a failed render
            for frame in frames:
                frame.pts = None
                mux(self.container, self.out_stream.encode(frame), self.output)
            return
        if packet.dts is None:
            return
        packet.stream = self.out_stream
        mux(self.container, packet, self.output)
