"""`danmask segment VIDEO --keyframe WHEN:MASK.png`: masks given on some frames, propagated to every other frame,
forward and backward, with the memory network; written as a `.dmask` track whose person layers are the objects.

Frames after the last key frame are propagated forward as they are decoded (memory stays flat however long the
video). Frames before the first key frame are propagated backward from it, and frames between two key frames get
both directions, blended by how close each key frame is; those frames are held at the network's input size
(about 0.2 MB each) until the next key frame arrives.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from ..video import VideoFrame, VideoInfo, iter_frames, probe
from .propagate import MemoryPropagator


@dataclass(frozen=True)
class Keyframe:
    """Where (a frame index in display order, or a time in seconds) and the objects' masks (id -> bool mask)."""

    frame: int | None
    time: float | None
    masks: dict[int, np.ndarray]
    source: str


def parse_keyframe(spec: str) -> Keyframe:
    """`WHEN:MASK.png`: WHEN is a frame number (`0`, `120`) or a time (`2.5s`, `1.04`); the PNG's non-zero values
    are object ids (a DAVIS palette PNG gives several objects, a black-and-white one gives object 1).

    Raises:
        DanmaskError: a malformed spec, an unreadable or empty mask.
    """
    when, sep, path = spec.partition(":")
    if not sep or not path:
        raise DanmaskError(f"--keyframe {spec!r}: expected WHEN:MASK.png (WHEN a frame number or seconds, e.g. 2.5s)")
    try:
        if when.endswith("s") or "." in when:
            frame, time = None, float(when.rstrip("s"))
        else:
            frame, time = int(when), None
    except ValueError:
        raise DanmaskError(f"--keyframe {spec!r}: {when!r} is neither a frame number nor seconds") from None
    if (frame is not None and frame < 0) or (time is not None and not time >= 0):
        raise DanmaskError(f"--keyframe {spec!r}: the frame or time must not be negative")
    image = _read_ids(Path(path))
    ids = [int(v) for v in np.unique(image) if v]
    if not ids:
        raise DanmaskError(f"{path}: the mask is empty (no object to follow)")
    return Keyframe(frame, time, {i: image == i for i in ids}, path)


def _read_ids(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                return np.asarray(im)
            grey = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DanmaskError(f"{path}: cannot read the mask ({exc})") from None
    return (grey > 127).astype(np.uint8)  # black and white: one object


def match_keyframe(keyframes: list[Keyframe], index: int, time: float, step: float) -> Keyframe | None:
    """The key frame given for the frame at display position `index` and `time` seconds (`step`: one frame's
    duration), if any."""
    for kf in keyframes:
        if kf.frame == index or (kf.time is not None and abs(time - kf.time) <= step / 2):
            return kf
    return None


def check_keyframes(info: VideoInfo, keyframes: list[Keyframe]) -> None:
    """Every key frame's mask has the size of the video `info` describes.

    Raises:
        DanmaskError: a mask of another size than the video.
    """
    for kf in keyframes:
        shape = next(iter(kf.masks.values())).shape
        if shape != (info.height, info.width):
            raise DanmaskError(f"{kf.source}: the mask is {shape[1]}x{shape[0]}, the video {info.width}x{info.height}")


Masks = dict[int, np.ndarray]


def propagate_frames(frames: Iterable[VideoFrame], key_for: Callable[[VideoFrame], Masks | None],
                     more_keys: Callable[[], bool], *, weights: str | Path | None = None, threads: int = 1
                     ) -> Iterator[tuple[int, Masks]]:
    """(pts, object id -> float32 mask) for every frame, in display order: the masks `key_for` gives for a frame
    (as given, at their own size), else the memory network's (at its input size), forward from the last key frame
    and backward from the next, blended where both exist. `more_keys()` says whether a key frame is still to
    come: frames after the last one are yielded as soon as they are propagated."""
    forward = MemoryPropagator(weights, threads=threads)
    pending: list[tuple[int, np.ndarray, Masks | None]] = []  # (pts, small rgb, forward masks)
    seen_key = False
    for frame in frames:
        small = (forward.prepare(frame.rgb) * 255).astype(np.uint8)
        key = key_for(frame)
        if key is None:
            if not seen_key:
                pending.append((frame.pts, small, None))  # before the first key frame: backward later
                continue
            masks = forward.step(small).masks
            if more_keys():  # a later key frame may still blend with these
                pending.append((frame.pts, small, masks))
            else:
                yield frame.pts, masks
            continue
        fitted = {obj: forward.fit(m.astype(np.float32)) for obj, m in key.items()}
        yield from _blend(pending, small, fitted, weights, threads)
        pending = []
        forward.add_reference(small, fitted)
        yield frame.pts, {obj: m.astype(np.float32) for obj, m in key.items()}
        seen_key = True
    for pts, _, masks in pending:
        if masks is not None:
            yield pts, masks


def propagate_video(path: str | Path, keyframes: list[Keyframe], *, output: str | Path, weights: str | Path | None = None,
                    threads: int = 1, mask_size: tuple[int, int] | None = None,
                    progress: bool | Callable[[int, int | None], object] = False):
    """Propagate the key frames' objects through the video into a `.dmask` at `output`; returns its TrackReader.

    Raises:
        DanmaskError: a key frame that matches no frame of the video, or a mask of another size than the video.
    """
    from tqdm import tqdm

    from ..pipeline import default_mask_size, to_uint8
    from ..trackreader import TrackReader
    from ..trackwriter import TrackWriter

    info = probe(path)
    check_keyframes(info, keyframes)
    size = mask_size or default_mask_size((info.height, info.width))
    step = 1 / float(info.avg_fps or 25)
    writer = TrackWriter(output, size, (info.height, info.width), info.time_base)
    bar = tqdm(total=info.frames, unit="frame", desc=Path(path).name, file=sys.stderr,
               disable=not (progress is True and sys.stderr.isatty()), leave=False)
    used: set[int] = set()

    def key_for(frame: VideoFrame) -> Masks | None:
        key = match_keyframe(keyframes, frame.index, frame.time, step)
        if key is None:
            return None
        used.add(id(key))
        return key.masks

    try:
        for pts, masks in propagate_frames(iter_frames(path), key_for, lambda: len(keyframes) > len(used),
                                           weights=weights, threads=threads):
            h, w = size
            people = [(obj, True, to_uint8(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR))) for obj, m in
                      sorted(masks.items())]
            union = np.max([p[2] for p in people], axis=0) if people else np.zeros(size, np.uint8)
            writer.append(pts, union, people)
            bar.update(1)
            if callable(progress):
                progress(bar.n, info.frames)
        missing = [kf.source for kf in keyframes if id(kf) not in used]
        if missing:
            raise DanmaskError(f"key frame {missing[0]}: no frame of {path} at that frame number or time")
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    return TrackReader(writer.path)


def _blend(pending, key_rgb: np.ndarray, key_masks: dict[int, np.ndarray], weights, threads: int
           ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
    """Propagate backward from the key frame over the held frames and blend with their forward masks (if any)."""
    if not pending:
        return
    backward = MemoryPropagator(weights, threads=threads)
    results = list(backward.propagate([key_rgb] + [rgb for _, rgb, _ in reversed(pending)], key_masks))[1:]
    results.reverse()
    n = len(pending)
    for i, ((pts, _, fwd), back) in enumerate(zip(pending, results)):
        if fwd is None:
            yield pts, back.masks
            continue
        w = (i + 1) / (n + 1)  # closer to the next key frame: trust the backward pass more
        none = np.zeros(key_rgb.shape[:2], np.float32)
        yield pts, {o: (1 - w) * fwd.get(o, none) + w * back.masks.get(o, none) for o in set(fwd) | set(back.masks)}
