"""Follow every person in a video: detect, frame each person in a crop aligned by their own body, carry the crop
from frame to frame by their landmarks, and keep ids stable.

Per frame (`PersonTracker.step`):
1. every tracked person is run through the pose model in the crop predicted from the last frame (one batch);
   a person whose presence drops, or whose box jumps away from where they were, is lost;
2. two tracks that landed on the same person are merged into the one that was already there (the other person's
   id is retired, never handed over: a person who comes back gets a new id, but two people never swap);
3. the detector runs when nobody is tracked, when someone was just lost, every `detect_every_s` seconds (for
   newcomers) and after `reset()` (a scene cut); unmatched people become new tracks, most salient first, up to
   `max_people`; a new person's crop is tried upright and turned by 90, 180 and 270 degrees and the pose model's
   presence picks the turn (a breakdancer on their head is still a person);
4. salience (danmask.people.salience) marks the people to protect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .assign import assign
from .detector import Detection, PersonDetector
from .landmarks import CROP_SIDE, PoseLandmarker, PoseResult
from .roi import Roi, box_iou
from .salience import SalienceRule, decide, frame_score, smooth

TURNS = (0.0, math.pi / 2, -math.pi / 2, math.pi)


@dataclass
class Person:
    """One tracked person in the current frame."""

    id: int
    result: PoseResult  # this frame's pose pass: crop, landmarks, mask in crop pixels
    box: tuple[float, float, float, float]  # frame pixels, around the mask
    first_seen: float  # seconds
    score: float = 0.0  # smoothed salience
    salient: bool = False
    next_roi: Roi | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TrackerConfig:
    """Switches of the person tracker (defaults as measured in docs/people.md)."""

    max_people: int = 4  # people tracked at once, most salient first: cost grows with each one
    detect_every_s: float = 0.5  # look for newcomers this often even when everyone is tracked
    min_presence: float = 0.5  # pose-model presence below this: the person is lost
    min_continuity: float = 0.1  # box IoU with the last frame below this: the crop jumped to someone else
    duplicate_iou: float = 0.6  # two tracks' boxes overlapping this much are one person
    match_iou: float = 0.3  # a detection overlapping a track this much is that track's person
    salience: SalienceRule = SalienceRule()

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if self.detect_every_s < 0:
            raise ValueError(f"detect_every_s must be >= 0, got {self.detect_every_s}")


def mask_box(result: PoseResult, threshold: float = 0.5) -> tuple[float, float, float, float] | None:
    """Frame-pixel box around the crop's mask (None when the mask is empty)."""
    rows = np.nonzero((result.mask >= threshold).any(axis=1))[0]
    cols = np.nonzero((result.mask >= threshold).any(axis=0))[0]
    if not len(rows):
        return None
    corners = np.array([[cols[0], rows[0]], [cols[-1] + 1, rows[0]], [cols[-1] + 1, rows[-1] + 1],
                        [cols[0], rows[-1] + 1]], np.float64)
    pts = result.roi.to_frame(corners, CROP_SIDE)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


class PersonTracker:
    """Stateful per video, like `Segmenter`: `step(rgb, t)` per displayed frame, `reset()` at cuts and seeks."""

    def __init__(self, detector: PersonDetector, landmarker: PoseLandmarker,
                 config: TrackerConfig | None = None) -> None:
        self.detector, self.landmarker = detector, landmarker
        self.config = config or TrackerConfig()
        self.people: list[Person] = []
        self._next_id = 1
        self._last_detect: float | None = None
        self._last_t: float | None = None
        self.detections = 0  # detector runs, for the cost figures

    def reset(self) -> None:
        """Forget everyone (a scene cut or a seek): the next step detects afresh. Ids keep counting up."""
        self.people, self._last_detect, self._last_t = [], None, None

    def step(self, rgb: np.ndarray, t: float) -> list[Person]:
        """The people in this frame, in id order."""
        dt = t - self._last_t if self._last_t is not None else 0.0
        self._last_t = t
        size = rgb.shape[:2]
        people, lost = self._follow(rgb)
        people = self._merge_duplicates(people)
        due = (not people or lost or self._last_detect is None
               or t - self._last_detect >= self.config.detect_every_s)
        if due:
            people += self._newcomers(rgb, t, people)
        for p in people:
            p.score = smooth(p.score if p.first_seen < t else None, frame_score(p.box, size), dt,
                             self.config.salience.half_life_s)
        salient = decide({p.id: p.score for p in people}, {p.id for p in self.people if p.salient},
                         self.config.salience)
        for p in people:
            p.salient = p.id in salient
            p.next_roi = p.result.next_roi()
        self.people = sorted(people, key=lambda p: p.id)
        return self.people

    def _follow(self, rgb: np.ndarray) -> tuple[list[Person], bool]:
        """Run everyone tracked in their predicted crop; (those still there, whether anyone was lost)."""
        tracked = self.people
        results = self.landmarker.run(rgb, [p.next_roi for p in tracked])
        kept = []
        for p, r in zip(tracked, results):
            box = mask_box(r) if r.presence >= self.config.min_presence else None
            if box is None or box_iou(box, p.box) < self.config.min_continuity:
                continue
            p.result, p.box = r, box
            kept.append(p)
        return kept, len(kept) < len(tracked)

    def _merge_duplicates(self, people: list[Person]) -> list[Person]:
        """Of two tracks on one person, keep the one whose last box fits best (it was there first)."""
        previous = {p.id: p.box for p in self.people}
        order = sorted(people, key=lambda p: (-box_iou(p.box, previous.get(p.id, p.box)), p.id))
        kept: list[Person] = []
        for p in order:
            if all(box_iou(p.box, q.box) < self.config.duplicate_iou for q in kept):
                kept.append(p)
        return kept

    def _newcomers(self, rgb: np.ndarray, t: float, people: list[Person]) -> list[Person]:
        self._last_detect = t
        self.detections += 1
        detections = self.detector(rgb)
        if people and detections:
            cost = np.array([[1.0 - box_iou(d.box, p.box) for p in people] for d in detections])
            matched = {r for r, _ in assign(cost, 1.0 - self.config.match_iou)}
            detections = [d for i, d in enumerate(detections) if i not in matched]
        size = rgb.shape[:2]
        scored = sorted(((frame_score(d.box, size), d) for d in detections), key=lambda x: -x[0])
        top = max([p.score for p in people] + [s for s, _ in scored[:1]] + [0.0])
        new: list[Person] = []
        for score, det in scored:
            if len(people) + len(new) >= self.config.max_people:
                break
            if not self.config.salience.everyone and score < self.config.salience.leave * top:
                break  # far smaller than the main people: not worth a track
            person = self._start(rgb, det, t)
            if person is not None and all(box_iou(person.box, q.box) < self.config.duplicate_iou
                                          for q in people + new):
                new.append(person)
        return new

    def _start(self, rgb: np.ndarray, det: Detection, t: float) -> Person | None:
        """A new track from a detector box: the best of four turns, then one pass in the body-aligned crop."""
        base = Roi.from_box(*det.box)
        tries = self.landmarker.run(rgb, [Roi(base.cx, base.cy, base.size, a) for a in TURNS])
        best = max(tries, key=lambda r: r.presence)
        if best.presence < self.config.min_presence:
            return None
        result = self.landmarker(rgb, best.next_roi())
        box = mask_box(result) if result.presence >= self.config.min_presence else None
        if box is None:
            return None
        person = Person(self._next_id, result, box, t)
        self._next_id += 1
        return person
