"""The whole job in one call: video file -> mask track (the CLI's `segment` mirrors `segment_video`).

Three stages overlap (supervision's process_video pattern): decoding runs in a thread feeding a bounded queue,
the model runs on the caller's thread, and with an output file the track's blocks are encoded and written in the
TrackWriter's thread. Threads are always joined, and a decoding error reaches the caller only after every frame
decoded before it was segmented.
"""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .runtime import DEFAULT_MODEL, SegModel, load_model
from .runtime.base import shrink
from .segmenter import Segmenter, SegmenterStats, TemporalConfig
from .errors import VideoError
from .track import MaskTrack
from .trackreader import TrackReader
from .trackwriter import TrackWriter
from .video import VideoFrame, iter_frames, probe

if TYPE_CHECKING:
    from .people.model import PersonMask

MASK_LONG_SIDE = 320  # Bilibili's webmask resolution (320x180 for 16:9)
_QUEUE_FRAMES = 8
_END = object()


def default_mask_size(source_size: tuple[int, int], long_side: int = MASK_LONG_SIDE) -> tuple[int, int]:
    """(h, w) keeping the source aspect with the long side `long_side` (never above the source's)."""
    h, w = source_size
    scale = min(1.0, long_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


class _Decoder(threading.Thread):
    """Decode into a bounded queue; an exception is handed over, after the frames, in place of the end mark."""

    def __init__(self, frames: Iterable[VideoFrame]) -> None:
        super().__init__(name="danmask-decode", daemon=True)
        self.frames = frames
        self.queue: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
        self.stopping = threading.Event()

    def run(self) -> None:
        end: object = _END
        try:
            for frame in self.frames:
                if not self._put(frame):
                    return
        except Exception as exc:  # handed to the consumer thread, which raises it
            end = exc
        self._put(end)

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[VideoFrame]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def iter_masks(
    source: str | Path | Iterable[VideoFrame],
    model: SegModel | str = DEFAULT_MODEL,
    *,
    threads: int = 1,
    device: str = "auto",
    config: TemporalConfig | None = None,
    mask_size: tuple[int, int] | None = None,
    stats: SegmenterStats | None = None,
) -> Iterator[tuple[VideoFrame, np.ndarray]]:
    """Yield (frame, float32 soft mask) for live use: a file path (decoded in a thread) or any frame iterable.

    The mask size defaults to 320 px on the long side at the video's aspect (from the first frame).
    `stats`, when given, is the counter object the session updates (frames, skipped, cuts).
    """
    with closing(_segment_frames(source, model, threads=threads, device=device, config=config,
                                 mask_size=mask_size, stats=stats)) as frames:
        for frame, mask, _ in frames:
            yield frame, mask


def _segment_frames(
    source: str | Path | Iterable[VideoFrame],
    model: SegModel | str,
    *,
    threads: int,
    device: str,
    config: TemporalConfig | None,
    mask_size: tuple[int, int] | None,
    stats: SegmenterStats | None,
    keep_frames: bool = True,
) -> Iterator[tuple[VideoFrame, np.ndarray, list[PersonMask] | None]]:
    """iter_masks plus each frame's tracked people (None for whole-frame models), for the mask track.

    Without `keep_frames` (the caller wants masks only) the decode thread also does a whole-frame model's first,
    cheap downscale (`runtime.base.shrink`), so it overlaps the model instead of following it.
    """
    seg_model = load_model(model, threads=threads, device=device) if isinstance(model, str) else model
    frames = iter_frames(source) if isinstance(source, (str, Path)) else source
    if not keep_frames and not getattr(seg_model, "frame_input", False):
        size = tuple(seg_model.spec.input_size)
        frames = (replace(frame, rgb=shrink(frame.rgb, size)) for frame in frames)
    decoder = _Decoder(frames)
    decoder.start()
    try:
        segmenter = None
        for frame in decoder:
            if segmenter is None:
                size = mask_size or default_mask_size(frame.rgb.shape[:2])
                segmenter = Segmenter(seg_model, config, size)
                segmenter.stats = stats if stats is not None else segmenter.stats
            mask = segmenter.step(frame.rgb, frame.time)
            yield frame, mask, list(segmenter.people) if segmenter.tracks_people else None
    finally:
        decoder.stop()


def segment_video(
    path: str | Path,
    model: SegModel | str = DEFAULT_MODEL,
    *,
    output: str | Path | None = None,
    threads: int = 1,
    device: str = "auto",
    config: TemporalConfig | None = None,
    mask_size: tuple[int, int] | None = None,
    progress: bool | Callable[[int, int | None], object] = False,
    stats: SegmenterStats | None = None,
    start: int | None = None,
    end: int | None = None,
) -> MaskTrack | TrackReader:
    """Segment every displayed frame of a video into a mask track keyed by the frames' PTS.

    With a person-tracking model the track also gets person layers: every tracked person of every frame, with
    their id and whether they were salient (the union of the salient ones is the track's mask).

    Args:
        path: video file (anything FFmpeg reads).
        model: registry name, .onnx path, or a loaded SegModel.
        output: .dmask file to stream the track to as it is made (memory stays flat however long the video; a
            crash leaves only `OUTPUT.part`, see `TrackWriter`); the result is then a lazy `TrackReader` of it.
            Without it the track is collected in memory and returned as a `MaskTrack`.
        threads: inference threads.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        config: temporal stage switches (default: all on).
        mask_size: (h, w) of the stored masks; default 320 px on the long side at the video's aspect.
        progress: True shows a tqdm bar on stderr (when it is a terminal); a callable is called with (frames done,
            frames expected or None) after every frame.
        stats: counters to fill (frames, skipped, cuts), see `iter_masks`.
        start, end: segment only the frames with start <= pts < end (pts in the video's time base; decoding
            seeks to the keyframe at or before `start`): one part of a long video, as `danmask batch` does.

    Raises:
        VideoError: unreadable video. Raised after the good frames were segmented; the track of those frames
            (saved to `output` when given) rides on the exception as `partial_track`.
        OutputError: `output` cannot be written (checked before any work).
        ModelError: bad model.
    """
    from tqdm import tqdm

    info = probe(path)
    size = mask_size or default_mask_size((info.height, info.width))
    source = (info.height, info.width)
    sink = TrackWriter(output, size, source, info.time_base) if output else MaskTrack(size, source, info.time_base)
    bar = tqdm(total=info.frames, unit="frame", desc=Path(path).name, file=sys.stderr,
               disable=not (progress is True and sys.stderr.isatty()), leave=False)
    report = progress if callable(progress) else None
    count = 0
    try:
        frames = iter_frames(path, start, end) if start is not None or end is not None else path
        for frame, mask, people in _segment_frames(frames, model, threads=threads, device=device, config=config,
                                                   mask_size=size, stats=stats, keep_frames=False):
            sink.append(frame.pts, to_uint8(mask),
                        None if people is None else [(p.id, p.salient, to_uint8(p.mask)) for p in people])
            count += 1
            bar.update(1)
            if report:
                report(count, info.frames)
    except VideoError as exc:
        exc.partial_track = _finish(sink) if count else _abandon(sink)
        raise
    except BaseException:
        _abandon(sink)
        raise
    finally:
        bar.close()
    return _finish(sink)


def segment_to_scratch(path: str | Path, model: SegModel | str, scratch: str | Path, **options) -> TrackReader:
    """`segment_video` into a scratch `.dmask` that a second pass reads (--refine, --keyframe). On a damaged video
    the frames before the damage are not the caller's output, so the VideoError carries no partial track."""
    try:
        return segment_video(path, model, output=scratch, **options)
    except VideoError as exc:
        partial = getattr(exc, "partial_track", None)
        if partial is not None:
            partial.close()
        exc.partial_track = None
        raise


def _finish(sink: MaskTrack | TrackWriter) -> MaskTrack | TrackReader:
    if isinstance(sink, MaskTrack):
        return sink
    sink.close()
    return TrackReader(sink.path)


def _abandon(sink: MaskTrack | TrackWriter) -> None:
    if isinstance(sink, TrackWriter):
        sink.abort()


def to_uint8(mask: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0..255 (the MaskTrack's in-memory form)."""
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
