"""Follow every person in a video: detect, frame each person in a crop aligned by their own body, carry the crop
from frame to frame by their landmarks, and keep ids stable.

Per frame (`PersonTracker.step`):
1. every tracked person is run through the pose model in the crop predicted from the last frame (one batch);
   a person whose presence drops, whose box jumps away from where they were, whose colours change, or whose crop
   now looks more like someone lost on that spot within the last second than like them, is lost;
2. two tracks that landed on the same person are merged into the one that was already there (the other person's
   id is retired, never handed over: a person who comes back gets a new id, but two people never swap);
3. the detector runs when nobody is tracked, when someone was just lost, on every frame for `search_s` seconds
   after the last protected person was lost (until someone as salient is followed again), every `detect_every_s` seconds
   (for newcomers) and after `reset()` (a scene cut); unmatched people become new tracks, most salient first, up to
   `max_people` (at the cap a newcomer twice as salient as the least salient person takes their place); a new
   person's crop is tried upright and turned by 90, 180 and 270 degrees, and at the turn of anyone just lost on
   that spot, and the pose model's presence picks the turn (a breakdancer on their head is still a person);
4. salience (danmask.people.salience) marks the people to protect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .assign import assign
from .detector import Detection, PersonDetector
from .landmarks import CROP_SIDE, PoseLandmarker, PoseResult
from .roi import Roi, box_iou, paste
from .salience import SalienceRule, decide, frame_score, smooth

TURNS = (0.0, math.pi / 2, -math.pi / 2, math.pi)
EVICT_MARGIN = 2.0  # at the cap, a newcomer must be this many times as salient as the person whose place it takes
OVERLAP_SCALE = 4  # masks are compared at a quarter of the frame's size: enough to tell one person from two
APPEARANCE_MEMORY = 0.95  # per frame: a person's look is learnt slowly, so a gradual takeover still shows
MAX_TURN = math.radians(30)  # a new person's aligned crop must confirm its turn within this
MIN_PROBE = 0.02  # a detector box whose best turn has less presence than this gets no aligned pass (docs/people.md)
MAX_ROI_PER_BOX = 1.8  # a crop's side is at most this many times the long side of the person's mask box
IMPOSTOR_FLOOR = 0.25  # a crop this far from its person's look, and nearer a lost neighbour's, shows the neighbour
GONE_MEMORY_S = 1.0  # a lost person's spot and look are remembered this long, to tell them in a neighbour's crop


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
    colours: np.ndarray | None = field(default=None, repr=False)  # slow running colour histogram inside the mask
    likeness: float = 0.0  # this frame's histogram distance from `colours` (0 = same look)


@dataclass(frozen=True)
class Gone:
    """A person lost a moment ago: when, where, and how they looked."""

    t: float  # seconds
    box: tuple[float, float, float, float]
    colours: np.ndarray


@dataclass(frozen=True)
class TrackerConfig:
    """Switches of the person tracker (defaults as measured in docs/people.md)."""

    max_people: int = 4  # people tracked at once, most salient first: cost grows with each one
    detect_every_s: float = 0.5  # look for newcomers this often even when everyone is tracked
    min_presence: float = 0.5  # pose-model presence below this: the person is lost
    min_continuity: float = 0.3  # box IoU with the last frame below this: the crop jumped to someone else
    max_appearance_change: float = 0.5  # colour-histogram distance above this: it is someone else now
    duplicate_overlap: float = 0.5  # two tracks whose masks share this much of the smaller one are one person
    match_iou: float = 0.3  # a detection overlapping a track this much is that track's person
    search_s: float = 0.5  # when the last protected person is lost, the detector runs on every frame this long
    mirrored_people: int = 2  # with a mirroring landmarker, only this many most salient people get the second pass
    salience: SalienceRule = SalienceRule()

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if self.detect_every_s < 0 or self.search_s < 0:
            raise ValueError(f"detect_every_s and search_s must be >= 0, got {self.detect_every_s}, {self.search_s}")


def colour_histogram(rgb: np.ndarray, result: PoseResult) -> np.ndarray | None:
    """Hue-saturation histogram of the person's pixels (in their crop): who they look like, cheaply."""
    from .roi import crop

    inside = result.mask >= 0.5
    if inside.sum() < 64:
        return None
    hsv = cv2.cvtColor(crop(rgb, result.roi, CROP_SIDE), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], inside.astype(np.uint8), [16, 8], [0, 180, 0, 256])
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def _turn(angle: float) -> float:
    """Absolute difference of two angles folded into [0, pi]."""
    return abs((angle + math.pi) % (2 * math.pi) - math.pi)


def _covered(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller of two masks that lies inside the other."""
    smaller = min(int(a.sum()), int(b.sum()))
    return int((a & b).sum()) / smaller if smaller else 0.0


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
                 config: TrackerConfig | None = None, prober: PoseLandmarker | None = None) -> None:
        """`prober`: the same pose graph without its mask branch, for the four turns a newcomer's crop is tried
        at, where only presence and landmarks count (a third of the cost of a masked, mirrored pass); without
        it the landmarker tries them."""
        self.detector, self.landmarker, self.prober = detector, landmarker, prober
        self.config = config or TrackerConfig()
        self.people: list[Person] = []
        self._next_id = 1
        self._last_detect: float | None = None
        self._last_t: float | None = None
        self._lost: list[Person] = []  # lost this frame: a detection on their spot starts at their turn
        self._search_until: float | None = None  # a protected person was lost: the detector runs every frame till then
        self._gone: dict[int, Gone] = {}  # people lost within GONE_MEMORY_S, by id
        self.detections = 0  # detector runs, for the cost figures

    def reset(self) -> None:
        """Forget everyone (a scene cut or a seek): the next step detects afresh. Ids keep counting up."""
        self.people, self._last_detect, self._last_t, self._lost, self._search_until = [], None, None, [], None
        self._gone = {}

    def step(self, rgb: np.ndarray, t: float) -> list[Person]:
        """The people in this frame, in id order."""
        dt = t - self._last_t if self._last_t is not None else 0.0
        self._last_t = t
        size = rgb.shape[:2]
        people, lost = self._follow(rgb, t)
        people = self._merge_duplicates(people, size)
        if any(p.salient for p in self._lost) and not any(p.salient for p in people):
            self._search_until = t + self.config.search_s  # everyone protected is gone: look for them every frame
        searching = self._search_until is not None and t < self._search_until
        due = (not people or lost or searching or self._last_detect is None
               or t - self._last_detect >= self.config.detect_every_s)
        if due:
            bar = min((p.score for p in self.people if p.salient), default=0.0)
            known = {p.id for p in people}
            people = self._newcomers(rgb, t, people)
            if any(p.id not in known and p.score >= bar for p in people):
                self._search_until = None  # someone as salient as the protected people is followed again
        for p in people:
            p.score = smooth(p.score if p.first_seen < t else None, frame_score(p.box, size), dt,
                             self.config.salience.half_life_s)
        salient = decide({p.id: p.score for p in people}, {p.id for p in self.people if p.salient},
                         self.config.salience)
        for p in people:
            p.salient = p.id in salient
            p.next_roi = self._next_roi(p.result, p.box, size)
        self.people = sorted(people, key=lambda p: p.id)
        return self.people

    def _follow(self, rgb: np.ndarray, t: float) -> tuple[list[Person], bool]:
        """Run everyone tracked in their predicted crop; (those still there, whether anyone was lost)."""
        tracked = sorted(self.people, key=lambda p: -p.score)  # most salient first: they get the mirrored pass
        results = self.landmarker.run(rgb, [p.next_roi for p in tracked], self.config.mirrored_people)
        self._gone = {i: g for i, g in self._gone.items() if t - g.t <= GONE_MEMORY_S}
        kept = [p for p, r in zip(tracked, results) if self._accept(p, rgb, r)]
        self._lost = [p for p in tracked if p not in kept]
        self._gone |= {p.id: Gone(t, p.box, p.colours) for p in self._lost}
        return kept, bool(self._lost)

    def _accept(self, p: Person, rgb: np.ndarray, r: PoseResult) -> bool:
        """Take `r` as this frame's view of `p` if it is still a person, near where they were, looking like them
        and not more like someone just lost on that spot."""
        box = mask_box(r) if r.presence >= self.config.min_presence else None
        if box is None or box_iou(box, p.box) < self.config.min_continuity:
            return False
        colours = colour_histogram(rgb, r)
        if colours is None:
            return False
        p.likeness = cv2.compareHist(p.colours, colours, cv2.HISTCMP_BHATTACHARYYA)
        if p.likeness > self.config.max_appearance_change:
            return False  # the crop now shows someone else: an occluder or a neighbour took the track over
        if p.likeness > IMPOSTOR_FLOOR and any(
                box_iou(g.box, box) >= self.config.match_iou
                and cv2.compareHist(g.colours, colours, cv2.HISTCMP_BHATTACHARYYA) < p.likeness
                for g in self._gone.values()):
            # an occluder passing in front loses its own track as it crosses, then takes this one over, its
            # colours moving in frame by frame too slowly for the bar above: the crop now looks more like them
            return False
        p.result, p.box = r, box
        p.colours = APPEARANCE_MEMORY * p.colours + (1 - APPEARANCE_MEMORY) * colours
        return True

    def _merge_duplicates(self, people: list[Person], size: tuple[int, int]) -> list[Person]:
        """Of two tracks on one person, keep the one that looks most like what it has followed so far: when an
        occluder slides over someone, their track drifts onto the occluder gradually, but its colours do not
        match the occluder's own track. One person = most of the smaller mask lies inside the other."""
        order = sorted(people, key=lambda p: (p.likeness, p.id))
        small = (max(1, size[0] // OVERLAP_SCALE), max(1, size[1] // OVERLAP_SCALE))
        masks = {p.id: paste(p.result.mask, p.result.roi, size, small) >= 0.5 for p in order}
        kept: list[Person] = []
        for p in order:
            if all(_covered(masks[p.id], masks[q.id]) < self.config.duplicate_overlap for q in kept):
                kept.append(p)
        return kept

    def _newcomers(self, rgb: np.ndarray, t: float, people: list[Person]) -> list[Person]:
        """`people` with the detector's newcomers added, most salient first. At the cap a newcomer more salient
        than the least salient tracked person takes that person's place (their id retires): the cap must never
        keep a crowd in and the main person out."""
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
        people = list(people)
        for score, det in scored:
            if not self.config.salience.everyone and score < self.config.salience.leave * top:
                break  # far smaller than the main people: not worth a track
            weakest = min(people, key=lambda p: p.score) if len(people) >= self.config.max_people else None
            if weakest is not None and score < EVICT_MARGIN * weakest.score:
                break  # at the cap, and no newcomer clearly matters more than everyone tracked
            # a newcomer's first pass is mirrored only while fewer than `mirrored_people` are followed: it is
            # then one of them; in a crowd, where people are lost and found every frame, it would double the work
            person = self._start(rgb, det, t, int(len(people) < self.config.mirrored_people))
            if person is None or any(box_iou(person.box, q.box) >= self.config.match_iou for q in people):
                continue
            if weakest is not None:
                people.remove(weakest)
            person.score = score  # ranked with the others from now on (smoothed from the next frame)
            people.append(person)
        return people

    def _start(self, rgb: np.ndarray, det: Detection, t: float, mirrored: int) -> Person | None:
        """A new track from a detector box. The box's crop is tried upright and turned by 90, 180 and 270 degrees
        (a breakdancer on their head is still a person); the most person-like turn, then upright (else the next
        likeliest), place a body-aligned crop, and the first whose aligned crop still holds a person starts the
        track. A close-up can look like a person at several turns, but only the right one aligns. The box's own
        crop can miss the person the aligned one finds (a crouching skier: presence 0.04 in the box's crop, 0.99
        aligned; a man filmed from the waist up: 0.00 upright, 0.70 aligned upright), so both are aligned even
        when neither holds a person, unless no turn has any presence at all (a false detection). Where someone
        was lost this frame, their crop's turn is tried first: a body turning away from upright (a rolling camera,
        an acrobat) is found again at its turn, not aligned from an upright crop that agrees with itself while
        tens of degrees off."""
        base = Roi.from_box(*det.box)
        size = rgb.shape[:2]
        memory = [p.result.roi.angle for p in self._lost if box_iou(p.box, det.box) >= self.config.match_iou][:1]
        prober = self.prober or self.landmarker

        def probe(angles: list[float]) -> list[PoseResult]:
            return prober.run(rgb, [Roi(base.cx, base.cy, base.size, a) for a in angles])

        # the remembered turn and upright first: when either holds a person it leads, and the other turns are
        # only probed if its aligned crop fails (a crowd's re-found people then cost two probes, not five)
        tries = probe([*memory, 0.0])
        remembered, upright = (tries[0] if memory else None), tries[-1]
        others = [a for a in TURNS if a != 0.0]

        def rank(r: PoseResult) -> tuple[bool, bool, float]:
            # among the turns that hold a person: the turn of someone just lost on this spot (bodies turn
            # smoothly), then upright (the alignment then corrects a lean); else the likeliest turn
            holds = r.presence >= self.config.min_presence
            return not (holds and r is remembered), not (holds and r is upright), -r.presence

        order = sorted(tries, key=rank)
        if order[0].presence < self.config.min_presence:
            tries += probe(others)
            order = sorted(tries, key=rank)
        if order[0].presence < MIN_PROBE:
            return None  # no person at any turn: a false detection (a car, a dog), not worth an aligned pass
        for k in range(2):
            if k == 1 and order[0] is upright and len(tries) < len(memory) + len(TURNS):
                tries += probe(others)  # upright led and failed to align: the likeliest other turn is next
                order = sorted(tries, key=rank)
            turned = order[0] if k == 0 else (upright if order[0] is not upright else order[1])
            aligned = self._next_roi(turned, det.box, size)
            result = self.landmarker.run(rgb, [aligned], mirrored)[0]
            box = mask_box(result) if result.presence >= self.config.min_presence else None
            if box is None or _turn(self._next_roi(result, box, size).angle - aligned.angle) > MAX_TURN:
                continue  # the aligned crop does not confirm the turn: the next frame would lose the person
            person = Person(self._next_id, result, box, t, colours=colour_histogram(rgb, result))
            if person.colours is not None:
                self._next_id += 1
                return person
        return self._start_unaligned(rgb, order[0], t, mirrored)

    def _start_unaligned(self, rgb: np.ndarray, best: PoseResult, t: float, mirrored: int) -> Person | None:
        """No turn aligned (a body the landmarks cannot follow: mid-spin, upside down): start from the detector's
        crop at its most person-like turn. The track may be lost again next frame, which only costs a detection;
        leaving the person out costs the viewer the main person."""
        if best.presence < self.config.min_presence:
            return None
        if self.prober is not None:
            # the prober's mask is a silhouette: segment the crop for real
            best = self.landmarker.run(rgb, [best.roi], mirrored)[0]
        box = mask_box(best) if best.presence >= self.config.min_presence else None
        colours = colour_histogram(rgb, best) if box is not None else None
        if colours is None:
            return None
        self._next_id += 1
        return Person(self._next_id - 1, best, box, t, colours=colours)

    @staticmethod
    def _next_roi(result: PoseResult, box: tuple[float, float, float, float], frame: tuple[int, int]) -> Roi:
        """The body-aligned crop for the next pass. In a close-up the hips, and so MediaPipe's crop centre, are out
        of the frame and the alignment is extrapolated: the crop then frames the person's visible box instead
        (keeping the body's turn), else it grows frame after frame until the person is a speck in it."""
        roi = result.next_roi()
        h, w = frame
        longest = max(box[2] - box[0], box[3] - box[1])
        if -0.1 * w <= roi.cx <= 1.1 * w and -0.1 * h <= roi.cy <= 1.1 * h:
            return Roi(roi.cx, roi.cy, min(roi.size, MAX_ROI_PER_BOX * longest), roi.angle)
        fit = Roi.from_box(*box)
        return Roi(fit.cx, fit.cy, fit.size, roi.angle)
