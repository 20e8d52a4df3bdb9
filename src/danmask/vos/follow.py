"""`danmask segment --keyframe WHEN:MASK.png --follow people` (the default): the given masks carried through the
video by person-track's tracked people instead of by the memory network.

person-track segments every frame first (its person layers go to a scratch track). Then each given object takes,
frame by frame, the tracked person whose mask overlaps the object's previous mask best, one object per person
(`eval.vos_methods.pick_indices`: the person-track method of `danmask eval --vos`). This runs forward from each
key frame and backward from it; on a frame reached from both sides the nearer key frame decides, and a person
claimed by two objects goes to the nearer claim. An object that overlaps nobody is empty on that frame and is
looked for again with its last mask. Per frame only the chosen person ids are kept, never masks.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from ..eval.vos_methods import pick_indices
from ..runtime import SegModel
from .keyframes import Keyframe, check_keyframes, match_keyframe

Choice = dict[int, tuple[int, int]]  # object id -> (person id, 0 for nobody; frames from its key frame)


def _fit(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A given bool mask at the track's mask size (h, w), as bool."""
    h, w = size
    return cv2.resize(mask.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_AREA) >= 128


def walk(order: Iterable[int], people_at: Callable[[int], list], keys: dict[int, dict[int, np.ndarray]]
         ) -> dict[int, Choice]:
    """One direction through the frames in `order`: each object follows the person overlapping its last mask,
    starting again from the given mask at every key frame. Frames before the first key frame are not reached."""
    out: dict[int, Choice] = {}
    reference: dict[int, np.ndarray] = {}
    distance: dict[int, int] = {}
    for index in order:
        if index in keys:
            reference.update({obj: m.copy() for obj, m in keys[index].items()})
            distance.update(dict.fromkeys(keys[index], 0))
            continue
        if not reference:
            continue
        layers = people_at(index)
        masks = [layer.mask >= 128 for layer in layers]
        choice: Choice = {}
        for obj, col in pick_indices(masks, reference).items():
            distance[obj] += 1
            choice[obj] = (layers[col].id if col is not None else 0, distance[obj])
            if col is not None:
                reference[obj] = masks[col]
        out[index] = choice
    return out


def decide(forward: Choice, backward: Choice) -> dict[int, int]:
    """Object id -> person id (0: nobody) for one frame: per object the nearer key frame's choice, then each person
    to the object whose key frame is nearest."""
    best: dict[int, tuple[int, int]] = {}
    for side in (forward, backward):
        for obj, (pid, dist) in side.items():
            if obj not in best or dist < best[obj][1]:
                best[obj] = (pid, dist)
    taken: dict[int, int] = {}  # person id -> object id
    for obj, (pid, dist) in sorted(best.items(), key=lambda kv: kv[1][1]):
        if pid and pid not in taken:
            taken[pid] = obj
    return {obj: (pid if taken.get(pid) == obj else 0) for obj, (pid, _) in best.items()}


def follow_video(path: str | Path, keyframes: list[Keyframe], *, output: str | Path,
                 model: SegModel | str = "person-track", threads: int = 1, device: str = "auto", config=None,
                 mask_size: tuple[int, int] | None = None,
                 progress: bool | Callable[[int, int | None], object] = False):
    """The key frames' objects followed by `model`'s tracked people into a `.dmask` at `output` (person layers: the
    objects' ids); returns its TrackReader.

    Raises:
        DanmaskError: a key frame that matches no frame, a mask of another size than the video, a model that does
            not track people. OutputError: `output` cannot be written (before any work).
    """
    from ..outputs import check_file
    from ..pipeline import segment_to_scratch
    from ..trackreader import TrackReader
    from ..trackwriter import TrackWriter
    from ..video import probe

    info = probe(path)
    check_keyframes(info, keyframes)
    check_file(output)
    step = 1 / float(info.avg_fps or 25)
    with tempfile.TemporaryDirectory(prefix="danmask-follow-") as scratch:
        with segment_to_scratch(path, model, Path(scratch) / "people.dmask", threads=threads, device=device,
                                config=config, mask_size=mask_size, progress=progress) as base:
            if not base.has_people:
                name = model if isinstance(model, str) else model.spec.name
                raise DanmaskError(f"model {name} does not track people; --follow people needs one that does "
                                   "(person-track), or use --follow memory")
            size, used, keys = base.mask_size, set(), {}
            for index in range(len(base)):
                kf = match_keyframe(keyframes, index, float(base.pts_at(index) * base.time_base), step)
                if kf is not None:
                    keys[index] = {obj: _fit(m, size) for obj, m in kf.masks.items()}
                    used.add(id(kf))
            missing = [kf.source for kf in keyframes if id(kf) not in used]
            if missing:
                raise DanmaskError(f"key frame {missing[0]}: no frame of {path} at that frame number or time")
            for index, masks in keys.items():
                people = [layer.mask >= 128 for layer in base.people_at(index)]
                for obj, mask in masks.items():
                    if not any(np.count_nonzero(mask & p) for p in people):
                        print(f"danmask segment: warning: object {obj} on key frame {index} overlaps no tracked "
                              "person; it stays empty until someone covers its last mask (--follow memory follows "
                              "anything)", file=sys.stderr)
            forward = walk(range(len(base)), base.people_at, keys)
            backward = walk(range(len(base) - 1, -1, -1), base.people_at, keys)
            objects = sorted({obj for masks in keys.values() for obj in masks})
            empty = np.zeros(size, np.uint8)
            with TrackWriter(output, size, base.source_size, base.time_base) as writer:
                for index, (pts, _, people) in enumerate(base.records()):
                    layers = {layer.id: layer.mask for layer in people or ()}
                    chosen = decide(forward.get(index, {}), backward.get(index, {}))
                    given = keys.get(index, {})
                    masks = {obj: (given[obj].astype(np.uint8) * 255 if obj in given
                                   else layers.get(chosen.get(obj, 0), empty)) for obj in objects}
                    union = np.max(np.stack(list(masks.values())), axis=0)
                    writer.append(pts, union, [(obj, True, masks[obj]) for obj in objects])
    return TrackReader(output)
