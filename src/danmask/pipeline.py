"""The whole job in one call: video file -> MaskTrack (the CLI's `segment` mirrors `segment_video`).

Decoding runs in a thread feeding a bounded queue while the model runs on the caller's thread
(supervision's process_video pattern); the thread is always joined in `finally`, and a decoding error
reaches the caller only after every frame decoded before it was segmented.
"""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .runtime import DEFAULT_MODEL, SegModel, load_model
from .segmenter import Segmenter, SegmenterStats, TemporalConfig
from .errors import VideoError
from .track import MaskTrack
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
) -> Iterator[tuple[VideoFrame, np.ndarray, list[PersonMask] | None]]:
    """iter_masks plus each frame's tracked people (None for whole-frame models), for the mask track."""
    seg_model = load_model(model, threads=threads, device=device) if isinstance(model, str) else model
    decoder = _Decoder(iter_frames(source) if isinstance(source, (str, Path)) else source)
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
    threads: int = 1,
    device: str = "auto",
    config: TemporalConfig | None = None,
    mask_size: tuple[int, int] | None = None,
    progress: bool = False,
    stats: SegmenterStats | None = None,
) -> MaskTrack:
    """Segment every displayed frame of a video into a MaskTrack keyed by the frames' PTS.

    With a person-tracking model the track also gets person layers: every tracked person of every frame, with
    their id and whether they were salient (the union of the salient ones is the track's mask).

    Args:
        path: video file (anything FFmpeg reads).
        model: registry name, .onnx path, or a loaded SegModel.
        threads: inference threads.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        config: temporal stage switches (default: all on).
        mask_size: (h, w) of the stored masks; default 320 px on the long side at the video's aspect.
        progress: show a tqdm bar on stderr (only when stderr is a terminal).
        stats: counters to fill (frames, skipped, cuts), see `iter_masks`.

    Raises:
        VideoError: unreadable video. Raised after the good frames were segmented; the track of those
            frames rides on the exception as `partial_track` so the caller can still save it.
        ModelError: bad model.
    """
    from tqdm import tqdm

    info = probe(path)
    size = mask_size or default_mask_size((info.height, info.width))
    track = MaskTrack(mask_size=size, source_size=(info.height, info.width), time_base=info.time_base)
    bar = tqdm(total=info.frames, unit="frame", desc=Path(path).name, file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()), leave=False)
    try:
        for frame, mask, people in _segment_frames(path, model, threads=threads, device=device, config=config,
                                                   mask_size=size, stats=stats):
            track.append(frame.pts, to_uint8(mask),
                         None if people is None else [(p.id, p.salient, to_uint8(p.mask)) for p in people])
            bar.update(1)
    except VideoError as exc:
        exc.partial_track = track
        raise
    finally:
        bar.close()
    return track


def to_uint8(mask: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0..255 (the MaskTrack's in-memory form)."""
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
