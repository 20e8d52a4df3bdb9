"""The frame loop every `danmask fx` effect shares: read a source, let the effect draw on each frame, write a video.

Sources: a video file (every frame, in order, as fast as the effect goes), a camera (/dev/videoN) or stream URL,
or a file with `realtime` (paced at its own frame rate). Live sources go through `danmask live`'s capture thread:
the newest frame wins and the ones the effect had no time for are dropped, so lag never builds up.

The output is the burn-in's writer (`danmaku.render.VideoWriter`): H.264, each frame at its own timestamp
(variable frame rate survives), the source's audio copied when a file has any. A live source is stamped with the
session clock at 1/90000 s, as `danmask live -o` does.

Three stages overlap, as in `pipeline.py`: a file is decoded in a thread (a live source has its capture thread),
the effect runs on the caller's thread, and the encoder in a third, each handing over through a small bounded
queue; errors cross over after the frames before them, and every thread is joined.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import OutputError, VideoError
from ..video import VideoFrame, VideoInfo

LIVE_TIME_BASE = Fraction(1, 90000)
LIVE_RATE = Fraction(30)  # the encoder's rate hint only: every frame's time is in its pts
CRF = 20


class Effect(Protocol):
    """What the loop drives: `apply(rgb, frame)` returns the picture to write (it may draw on `rgb`, a copy)."""

    def apply(self, rgb: np.ndarray, frame: VideoFrame) -> np.ndarray: ...


@dataclass
class FxResult:
    """What an effect run did, for the CLI summary and for tests."""

    output: Path | None
    frames: int  # frames written (a live source may have delivered more: see `dropped`)
    seconds: float  # wall time of the whole run
    effect_ms: list[float] = field(default_factory=list, repr=False)  # time in the effect, per frame
    audio: str = "none"  # "copied", "re-encoded to aac ..." or "none"
    dropped: int = 0  # live sources: frames the effect had no time for
    stopped_at: float = float("inf")  # source time where the run was stopped early (--stop-after, Ctrl-C)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def ms_per_frame(self) -> float:
        """Median time in the effect per frame (decode and encode excluded)."""
        return float(np.median(self.effect_ms)) if self.effect_ms else 0.0


def is_live(source: str, realtime: bool) -> bool:
    from ..live.source import source_kind

    return realtime or source_kind(str(source)) != "file"


def check_paths(source: str | Path, output: str | Path | None) -> Path | None:
    """Fail before any work: an output that cannot be written, or one that would overwrite the source.

    Raises:
        OutputError: as `outputs.check_file`, or the output is the source.
    """
    from ..outputs import check_file

    if output is None:
        return None
    output = Path(output)
    if Path(str(source)).exists() and output.resolve() == Path(str(source)).resolve():
        raise OutputError(f"{output}: output would overwrite the input video")
    check_file(output)
    return output


def run_effect(effect: Effect, source: str | Path, output: str | Path | None, *, realtime: bool = False,
               timeout: float = 5.0, stop_after: float | None = None, stop: threading.Event | None = None,
               crf: int = CRF, progress: bool = False, desc: str = "fx") -> FxResult:
    """Drive `effect` over every frame of `source` and write the result to `output` (None: write nothing).

    `stop`: set it (from another thread, or a signal handler: the CLI's Ctrl-C) to end the run cleanly after the
    current frame; the output is then a complete, playable file of the frames so far.

    Raises:
        VideoError: the source cannot be opened or read (frames before the damage are written first).
        OutputError: the output cannot be written (checked before the work, and while writing).
    """
    source = str(source)
    output = check_paths(source, output)
    live = is_live(source, realtime)
    if live:
        frames, info, counter = _live_frames(source, realtime, timeout)
    else:
        frames, info, counter = _file_frames(source)
    result = FxResult(output, 0, 0.0)
    if stop_after is not None:
        frames = _until(frames, stop_after, result)
    started = time.perf_counter()
    bar = _bar(info.frames if not live else None, f"{desc} {Path(source).name}", progress)
    drawn = _drawn(effect, frames, result, bar, stop or threading.Event())
    try:
        if output is None:
            for _ in drawn:
                pass
        else:
            with _writer(Path(source), output, info, crf, result) as writer:
                result.audio = writer.audio_mode
                _write_in_thread(writer, drawn)
    finally:
        bar.close()
        counter.close()
    result.seconds = time.perf_counter() - started
    result.dropped = counter.dropped()
    return result


def _until(frames: Iterator[VideoFrame], stop_after: float, result: FxResult) -> Iterator[VideoFrame]:
    for f in frames:
        if f.time >= stop_after:
            result.stopped_at = f.time
            return
        yield f


def _writer(source: Path, output: Path, info: VideoInfo, crf: int, result: FxResult):
    """The burn-in's VideoWriter, whose audio ends with the video when the run stopped early (--stop-after,
    Ctrl-C) instead of running on to the end of the source."""
    from ..danmaku.render import VideoWriter

    class Writer(VideoWriter):
        def _finish(self, audio_until: float = float("inf")) -> None:
            super()._finish(min(audio_until, result.stopped_at))

    return Writer(source, output, info, crf)


def _drawn(effect: Effect, frames: Iterator[VideoFrame], result: FxResult, bar,
           stop: threading.Event) -> Iterator[tuple[VideoFrame, None]]:
    """(frame with the effect drawn, None) pairs for VideoWriter.write_all, timing the effect alone."""
    for frame in frames:
        if stop.is_set():
            result.stopped_at = frame.time
            return
        rgb = frame.rgb if frame.rgb.flags.writeable else frame.rgb.copy()
        t0 = time.perf_counter()
        out = effect.apply(rgb, frame)
        result.effect_ms.append((time.perf_counter() - t0) * 1000)
        result.frames += 1
        bar.update(1)
        yield replace(frame, rgb=np.ascontiguousarray(out)), None


def _bar(total: int | None, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, disable=not (progress and sys.stderr.isatty()),
                leave=False)


_END = object()
_QUEUE = 4  # frames waiting between two stages


def _write_in_thread(writer, drawn: Iterator[tuple[VideoFrame, None]]) -> None:
    """`writer.write_all(drawn)` with the encoding in a thread of its own, so that it overlaps the effect's next
    frame. An error of the frames (a damaged source) reaches the writer after the frames before it, so it keeps
    them, as `danmask render` does; an error of the writer (a full disk) stops the effect."""
    handover: queue.Queue = queue.Queue(maxsize=_QUEUE)
    failed: list[BaseException] = []

    def items() -> Iterator[tuple[VideoFrame, None]]:
        while (item := handover.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def encode() -> None:
        try:
            writer.write_all(items(), None, progress=False)
        except BaseException as exc:  # raised on the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=encode, name="danmask-fx-encode", daemon=True)
    thread.start()

    def put(item: object) -> bool:
        while thread.is_alive():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    end: object = _END
    try:
        for item in drawn:
            if not put(item):
                break  # the writer stopped: its error is raised below
    except BaseException as exc:  # handed to the writer after the frames before it
        end = exc
    put(end)
    thread.join()
    if failed:
        raise failed[0]
    if isinstance(end, BaseException):
        raise end


class _FileCounter:
    """The decoding thread of a file."""

    def __init__(self, source: str) -> None:
        from ..pipeline import _Decoder
        from ..video import iter_frames

        self.decoder = _Decoder(iter_frames(source))
        self.decoder.start()

    def close(self) -> None:
        self.decoder.stop()

    def dropped(self) -> int:
        return 0


def _file_frames(source: str) -> tuple[Iterator[VideoFrame], VideoInfo, _FileCounter]:
    from ..video import probe

    info = probe(source)
    counter = _FileCounter(source)
    return iter(counter.decoder), info, counter


class _LiveCounter:
    """The capture thread of a live source, with how many frames it delivered that the effect never saw."""

    def __init__(self, source: str, realtime: bool, timeout: float) -> None:
        from ..live.capture import Capture

        self.capture = Capture(source, realtime=realtime, timeout_s=timeout)
        self.taken = 0

    def frames(self) -> Iterator[VideoFrame]:
        self.capture.start()
        while True:
            item = self.capture.take()
            if item is None:
                if self.capture.ended:
                    item = self.capture.take(0)  # re-raises what stopped the source, if anything did
                    if item is None:
                        return
                else:
                    continue
            self.taken += 1
            yield VideoFrame(rgb=item.rgb(), pts=round(item.t / LIVE_TIME_BASE), time_base=LIVE_TIME_BASE,
                             time=item.t, index=self.taken - 1)

    def close(self) -> None:
        self.capture.stop()

    def dropped(self) -> int:
        return max(0, self.capture.captured - self.taken)


def _live_frames(source: str, realtime: bool, timeout: float) -> tuple[Iterator[VideoFrame], VideoInfo, _LiveCounter]:
    """Frames of a camera, stream or paced file. The first frame is read before the writer opens (its size)."""
    counter = _LiveCounter(source, realtime, timeout)
    frames = counter.frames()
    try:
        first = next(frames)
    except StopIteration:
        counter.close()
        raise VideoError(f"{source}: no video frame arrived") from None
    except BaseException:
        counter.close()
        raise
    h, w = first.rgb.shape[:2]
    has_audio = False
    if Path(source).is_file():  # a file played in real time keeps its audio (its clock starts at its first frame)
        from ..video import probe

        has_audio = probe(source).has_audio
    info = VideoInfo(path=Path(source), width=w, height=h, rotation=0, avg_fps=LIVE_RATE, duration_s=None,
                     frames=None, time_base=LIVE_TIME_BASE, codec="h264", has_audio=has_audio)

    def chained() -> Iterator[VideoFrame]:
        yield first
        yield from frames

    return chained(), info, counter
