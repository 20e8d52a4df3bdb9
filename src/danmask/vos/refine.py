"""`danmask segment --refine`: the per-frame path's masks, re-propagated by the memory network from the frames
where they are most trustworthy, in one or more passes (the unsupervised half of the seeds' VOS: key frames of
good quality as memory for a bidirectional propagation, iterated).

A pass:
1. **Key frames.** In each window of `every` frames, the frame whose mask agrees best with its two neighbours'
   (mean IoU) is the key frame, unless its mask is empty. A mask that flickers or jumps is not trusted.
2. **Propagation.** The memory network carries the key frames' masks forward and backward
   (`keyframes.propagate_frames`, blended between two key frames).
3. **Fusion.** Key frames keep their mask. A frame whose mask lost most of the person (area under `drop` x the
   smaller of its two key frames' areas: a few frames where the per-frame path stumbled) takes the propagated
   mask, if the two key frames are at most two windows apart (someone there just before and just after: never a
   false detection spread over frames without anyone). Every other frame keeps its mask (`fuse="fill"`, the
   default) or takes the mean of its mask and the propagated one (`fuse="mean"`, the seeds' full re-propagation:
   measured worse with today's network, see docs/models/memory-net.md).

The next pass starts from the fused masks. Everything streams in display order: memory holds the frames between
two key frames at the network's input size, never the video. The refined mask is the track's combined mask; the
person layers stay those of the per-frame path. What it gains, pass by pass, on labelled video:
`python -m danmask.vos.refine_eval`.
"""
from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..eval.metrics import iou
from ..runtime import SegModel
from ..video import VideoFrame
from .keyframes import propagate_frames

Fuse = Literal["fill", "mean"]
DROP = 0.5  # under this share of the key frames' area, a frame's mask lost the person: the propagated one replaces it
EVERY_S = 1.0  # one key frame per second


@dataclass(frozen=True)
class Key:
    index: int
    area: int  # mask pixels >= 128


@dataclass
class PassReport:
    """What one pass did: how many key frames, frames averaged and frames filled, and how much of the mask moved."""

    keys: int = 0
    averaged: int = 0
    filled: int = 0
    changed: float = 0.0  # share of frames x pixels that changed side of 128 against the pass's input
    frames: int = 0
    _changed_pixels: int = field(default=0, repr=False)
    _pixels: int = field(default=0, repr=False)

    def count(self, before: np.ndarray, after: np.ndarray, how: str) -> None:
        self.frames += 1
        if how == "mean":
            self.averaged += 1
        elif how == "filled":
            self.filled += 1
        self._changed_pixels += int(np.count_nonzero((before >= 128) != (after >= 128)))
        self._pixels += before.size
        self.changed = self._changed_pixels / max(1, self._pixels)

    def line(self, number: int) -> str:
        averaged = f", {self.averaged} averaged" if self.averaged else ""
        return (f"refine pass {number}: {self.keys} key frames, {self.filled} frames filled where the person was "
                f"lost{averaged}, {100 * self.changed:.2f} % of mask pixels changed")


def choose_keyframes(masks: Iterable[np.ndarray], every: int) -> list[Key]:
    """The key frames of uint8 masks in display order: per window of `every` frames, the non-empty mask with the
    highest mean IoU against its neighbours' (the first and last frames have one neighbour)."""
    every = max(1, every)
    keys: list[Key] = []
    best: tuple[float, Key] | None = None

    def consider(index: int, mask: np.ndarray, scores: list[float]) -> None:
        nonlocal best
        if best is not None and best[1].index // every != index // every:
            keys.append(best[1])
            best = None
        area = int(np.count_nonzero(mask))
        score = sum(scores) / len(scores) if scores else 0.0
        if area and (best is None or score > best[0]):
            best = (score, Key(index, area))

    index, current, back = -1, None, None  # back: IoU of the current mask with the one before
    for mask in masks:
        binary = mask >= 128
        if current is not None:
            ahead = iou(current, binary)
            consider(index, current, [s for s in (back, ahead) if s is not None])
            back = ahead
        index, current = index + 1, binary
    if current is not None:
        consider(index, current, [back] if back is not None else [])
    if best is not None:
        keys.append(best[1])
    return keys


def refine_pass(frames: Iterable[VideoFrame], masks: Iterable[np.ndarray], keys: list[Key], *, max_gap: int,
                fuse: Fuse = "fill", drop: float = DROP, weights: str | Path | None = None, threads: int = 1
                ) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """(input mask, refined uint8 mask, "key" | "filled" | "mean" | "kept") for every frame, in display order;
    `frames` and `masks` are the same frames in the same order. Only a frame between two key frames at most
    `max_gap` frames apart is filled: a person seen just before and just after. Without key frames every mask is
    kept."""
    if not keys:
        for mask in masks:
            yield mask, mask, "kept"
        return
    at = {k.index: k for k in keys}
    held: dict[int, np.ndarray] = {}  # index -> input mask, from its frame's arrival to its output
    arrived = -1

    def paired() -> Iterator[VideoFrame]:
        nonlocal arrived
        for frame, mask in zip(frames, masks):
            arrived += 1
            held[arrived] = mask
            yield frame

    def key_for(frame: VideoFrame) -> dict[int, np.ndarray] | None:
        return {1: held[arrived].astype(np.float32) / 255.0} if arrived in at else None

    last = keys[-1].index
    before, later = None, iter(keys)
    after: Key | None = next(later)
    propagated = propagate_frames(paired(), key_for, lambda: arrived < last, weights=weights, threads=threads)
    for index, (_, masks_out) in enumerate(propagated):
        mask = held.pop(index)
        while after is not None and after.index <= index:
            before, after = after, next(later, None)
        if index in at:
            yield mask, mask, "key"
            continue
        h, w = mask.shape
        p = cv2.resize(masks_out[1], (w, h), interpolation=cv2.INTER_LINEAR)
        if (before is not None and after is not None and after.index - before.index <= max_gap
                and np.count_nonzero(mask >= 128) < drop * min(before.area, after.area)):
            yield mask, _uint8(p), "filled"
        elif fuse == "mean":
            yield mask, _uint8((mask.astype(np.float32) / 255.0 + p) / 2), "mean"
        else:
            yield mask, mask, "kept"


def _uint8(mask: np.ndarray) -> np.ndarray:
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)


def refine_video(path: str | Path, *, output: str | Path, model: SegModel | str = "person-track",
                 passes: int = 1, fuse: Fuse = "fill", every_s: float = EVERY_S, weights: str | Path | None = None,
                 threads: int = 1, device: str = "auto", config=None, mask_size: tuple[int, int] | None = None,
                 progress: bool | Callable[[int, int | None], object] = False, stats=None,
                 reports: list[PassReport] | None = None):
    """`segment_video` with `model` (and `threads`, `device`, `config`, `mask_size`, `progress`, `stats`), then
    `refine_track`'s passes, into the `.dmask` at `output`; returns its TrackReader.

    Raises:
        DanmaskError: as `segment_video`, or fewer than one pass; OutputError before any work when `output`
            cannot be written.
    """
    from ..errors import DanmaskError
    from ..outputs import check_file
    from ..pipeline import segment_to_scratch

    if passes < 1:
        raise DanmaskError(f"--refine needs at least one pass, got {passes}")
    check_file(output)
    with tempfile.TemporaryDirectory(prefix="danmask-refine-") as scratch:
        with segment_to_scratch(path, model, Path(scratch) / "per-frame.dmask", threads=threads, device=device,
                                config=config, mask_size=mask_size, progress=progress, stats=stats) as base:
            return refine_track(path, base, output=output, passes=passes, fuse=fuse, every_s=every_s,
                                weights=weights, threads=threads, reports=reports)


def refine_track(path: str | Path, base, *, output: str | Path, passes: int = 1, fuse: Fuse = "fill",
                 every_s: float = EVERY_S,
                 weights: str | Path | None = None, threads: int = 1, reports: list[PassReport] | None = None):
    """`passes` refinement passes over `base` (a TrackReader of the video at `path`, every displayed frame) into the
    `.dmask` at `output`, with `base`'s person layers; returns its TrackReader. `reports`, when given, gets one
    PassReport per pass."""
    from ..trackreader import TrackReader
    from ..trackwriter import TrackWriter
    from ..video import iter_frames, probe

    info = probe(path)
    every = max(1, round(every_s * float(info.avg_fps or 25)))
    with tempfile.TemporaryDirectory(prefix="danmask-refine-") as scratch:
        current = base
        for number in range(1, passes + 1):
            report = PassReport()
            keys = choose_keyframes((m for _, m in current.items()), every)
            report.keys = len(keys)
            target = Path(output) if number == passes else Path(scratch) / f"pass-{number}.dmask"
            final = number == passes and base.has_people  # person layers are decoded for the output only
            stamps: deque[tuple[int, list | None]] = deque()  # (pts, person layers) of frames on their way

            def masks() -> Iterator[np.ndarray]:
                layers = (people for _, _, people in base.records()) if final else repeat(None)
                for (pts, mask), people in zip(current.items(), layers):
                    stamps.append((pts, people))
                    yield mask

            with TrackWriter(target, current.mask_size, current.source_size, current.time_base) as writer:
                for before, after, how in refine_pass(iter_frames(path), masks(), keys, max_gap=2 * every,
                                                      fuse=fuse, weights=weights, threads=threads):
                    pts, people = stamps.popleft()
                    report.count(before, after, how)
                    writer.append(pts, after, None if people is None else [(p.id, p.salient, p.mask) for p in people])
            if reports is not None:
                reports.append(report)
            if current is not base:
                current.close()
            current = TrackReader(target)
        return current
