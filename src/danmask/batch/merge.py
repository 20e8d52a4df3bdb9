"""Joining the parts of a video (each a track of its warm-up and its own frames) into one track by pts.

Each part keeps only its own frames (start <= pts < end), so the result has exactly the frames of one
uninterrupted run. Person ids are per part (every tracker starts afresh), so a part's ids are matched to the
previous part's over the warm-up frames they share (mean mask IoU, best pairs first): the same person keeps one
id across a cut, and a newcomer gets an id never used before.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..trackreader import TrackReader
from ..trackwriter import TrackWriter
from ..webmask import write_webmask
from .plan import Part

MIN_MATCH_IOU = 0.3


def merge_parts(parts: Sequence[Part], tracks: Sequence[Path], output: Path, webmask: Path | None = None) -> int:
    """Write the joined track to `output` (and its .webmask to `webmask`); returns its frame count.

    Raises:
        TrackError: a part's track is damaged. OutputError: the outputs cannot be written.
    """
    readers = [TrackReader(path) for path in tracks]
    try:
        first = readers[0]
        with TrackWriter(output, first.mask_size, first.source_size, first.time_base) as writer:
            ids = _IdMap()
            overlap: dict[int, dict[int, np.ndarray]] = {}  # pts -> global id -> mask, the next part's warm-up
            for k, (part, reader) in enumerate(zip(parts, readers)):
                nxt = parts[k + 1] if k + 1 < len(parts) else None
                local: dict[int, dict[int, np.ndarray]] = {}
                for pts, mask, people in reader.records():
                    if part.start is not None and pts < part.start:
                        if people is not None:
                            local[pts] = {p.id: p.mask >= 128 for p in people}
                        continue
                    if local is not None and people is not None:
                        ids.match(local, overlap)
                        local = None
                    people = None if people is None else [(ids.get(p.id), p.salient, p.mask) for p in people]
                    writer.append(pts, mask, people)
                    if nxt is not None and people is not None and pts >= nxt.warm:
                        overlap[pts] = {pid: m >= 128 for pid, _, m in people}
                overlap = {p: v for p, v in overlap.items() if nxt is not None and p >= nxt.warm}
                ids.next_part()
        frames = writer.frames
    finally:
        for reader in readers:
            reader.close()
    if webmask is not None:
        with TrackReader(output) as merged:
            write_webmask(merged, webmask)
    return frames


class _IdMap:
    """Part-local person id -> id in the joined track."""

    def __init__(self) -> None:
        self.current: dict[int, int] = {}
        self.next_id = 1

    def match(self, local: dict[int, dict[int, np.ndarray]], previous: dict[int, dict[int, np.ndarray]]) -> None:
        """Give this part's people the ids of the previous part's people they overlap in the shared frames."""
        scores: dict[tuple[int, int], list[float]] = {}
        for pts, people in local.items():
            for lid, mask in people.items():
                for gid, other in previous.get(pts, {}).items():
                    union = np.count_nonzero(mask | other)
                    iou = np.count_nonzero(mask & other) / union if union else 0.0
                    scores.setdefault((lid, gid), []).append(iou)
        taken_local, taken_global = set(), set()
        for (lid, gid), ious in sorted(scores.items(), key=lambda kv: -np.mean(kv[1])):
            if np.mean(ious) >= MIN_MATCH_IOU and lid not in taken_local and gid not in taken_global:
                self.current[lid] = gid
                taken_local.add(lid)
                taken_global.add(gid)

    def get(self, local_id: int) -> int:
        if local_id not in self.current:
            self.current[local_id] = self.next_id
        self.next_id = max(self.next_id, self.current[local_id] + 1)
        return self.current[local_id]

    def next_part(self) -> None:
        self.current = {}
