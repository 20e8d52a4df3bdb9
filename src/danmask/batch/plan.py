"""Cutting a long video into parts that workers segment independently, and that join back frame for frame.

Cuts fall on keyframes (a part decodes from its own keyframe; encoders also place keyframes at scene cuts), about
every `part_s` seconds. Each part but the first is segmented from a keyframe at least `overlap_s` earlier than
its cut: those warm-up frames rebuild the temporal state (jitter filter, still detection, prior mask, tracked
people) so that the part's own frames come out as in one uninterrupted run; the merge drops them.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from ..video import keyframes, probe


@dataclass(frozen=True)
class Part:
    """Frames with start <= pts < end (None: the video's start or end), segmented from pts `warm` on."""

    number: int
    warm: int | None
    start: int | None
    end: int | None


def plan_parts(video: str | Path, part_s: float, overlap_s: float) -> list[Part]:
    """The parts of `video`: one for a video shorter than 1.5 parts, else cuts at keyframes every ~`part_s`.

    Raises:
        VideoError: the video cannot be opened.
    """
    info = probe(video)
    if not info.duration_s or info.duration_s < 1.5 * part_s:
        return [Part(0, None, None, None)]
    keys = keyframes(video)
    cuts, due = [], float(keys[0] * info.time_base) + part_s if keys else part_s
    for key in keys[1:]:
        t = float(key * info.time_base)
        if t >= due and info.duration_s - t >= 0.5 * part_s:
            cuts.append(key)
            due = t + part_s
    bounds = [None, *cuts, None]
    parts = []
    for number, (start, end) in enumerate(zip(bounds, bounds[1:])):
        warm = None
        if start is not None:
            earliest = start - overlap_s / info.time_base
            warm = keys[max(0, bisect.bisect_right(keys, earliest) - 1)]
        parts.append(Part(number, warm, start, end))
    return parts
