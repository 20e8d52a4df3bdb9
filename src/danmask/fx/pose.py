"""`danmask fx pose`: 2D keypoints of every person, with ids, drawn as a skeleton.

Nothing new runs here: the people, their ids and their 33 MediaPipe Pose landmarks are the person-track model's own
(`danmask.people`: YOLOX-Nano finds people, the pose landmarker follows each in a body-aligned crop; see
docs/people.md). The tracker is set to keep everyone it finds (no salience cut), up to `max_people`, and runs the
pose graph without its mask branch (same landmarks, half the cost). Accuracy: `python -m danmask.fx.pose_eval`.

Keypoints are in frame pixels with MediaPipe's per-landmark visibility. `--keypoints FILE.json` writes them per
frame with the frame's pts, streamed to disk as the video goes.
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from ..errors import VideoError
from ..video import VideoFrame
from .loop import FxResult, run_effect

# MediaPipe Pose's 33 body landmarks, in the model's order
KEYPOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
# The skeleton's bones (pairs of KEYPOINTS indices), MediaPipe's topology
BONES = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)
MIN_VISIBILITY = 0.5  # keypoints less visible than this are not drawn (they are still in the JSON)


@dataclass(frozen=True)
class PersonPose:
    """One tracked person in one frame."""

    id: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels (around the person's mask)
    keypoints: np.ndarray  # (33, 2) frame pixels
    visibility: np.ndarray  # (33,) in [0, 1]

    def to_json(self) -> dict:
        kps = np.concatenate([self.keypoints, self.visibility[:, None]], axis=1)
        return {"id": self.id, "box": [round(v, 1) for v in self.box],
                "keypoints": [[round(float(x), 1), round(float(y), 1), round(float(v), 3)] for x, y, v in kps]}


def _colour(person_id: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per id (golden-angle hues)."""
    hue = int((person_id * 137.508) % 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def draw_pose(rgb: np.ndarray, person: PersonPose, min_visibility: float = MIN_VISIBILITY) -> None:
    """Draw `person`'s skeleton and id on `rgb` (in place)."""
    colour = _colour(person.id)
    scale = max(rgb.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    pts = np.round(person.keypoints).astype(np.int32)
    seen = person.visibility >= min_visibility
    for a, b in BONES:
        if seen[a] and seen[b]:
            cv2.line(rgb, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
    for i in np.nonzero(seen)[0]:
        cv2.circle(rgb, tuple(pts[i]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    top = person.keypoints[seen] if seen.any() else np.array([[person.box[0], person.box[1]]])
    label, font = f"#{person.id}", cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(label, font, 0.6 * scale, thick)
    # above the head (the top of the person's mask, or the highest visible keypoint), centred on that keypoint
    i = int(np.argmin(top[:, 1]))
    x0 = int(np.clip(top[i, 0] - tw / 2 - 2, 0, max(0, rgb.shape[1] - tw - 4)))
    y0 = int(np.clip(min(person.box[1], top[i, 1]) - 2, th + 4, rgb.shape[0]))
    cv2.rectangle(rgb, (x0, y0 - th - 4), (x0 + tw + 4, y0), colour, -1)
    cv2.putText(rgb, label, (x0 + 2, y0 - 3), font, 0.6 * scale, (0, 0, 0), thick, cv2.LINE_AA)


@dataclass
class PoseStats:
    """Cost of the tracker per frame. Frames where the detector ran (a newcomer check every 0.5 s, a lost person,
    the start) are kept apart: between them the cost is the pose model on each person's crop, one batch."""

    follow_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))  # by people in the frame
    detect_ms: list[float] = field(default_factory=list)

    def add(self, people: int, ms: float, detected: bool) -> None:
        (self.detect_ms if detected else self.follow_ms[people]).append(ms)

    def summary(self) -> dict:
        """{"follow": {people: {frames, ms}}, "detect": {frames, ms}, "ms_per_person"}; ms are medians."""
        follow = {str(n): {"frames": len(v), "ms": round(float(np.median(v)), 1)}
                  for n, v in sorted(self.follow_ms.items()) if n > 0}
        detect = {"frames": len(self.detect_ms),
                  "ms": round(float(np.median(self.detect_ms)), 1) if self.detect_ms else None}
        return {"follow": follow, "detect": detect, "ms_per_person": self.ms_per_person()}

    def ms_per_person(self) -> float | None:
        """Median over the frames without a detection (and with people) of ms / people in the frame."""
        per = [ms / n for n, v in self.follow_ms.items() if n > 0 for ms in v]
        return round(float(np.median(per)), 1) if per else None


class PoseEffect:
    """Per frame: the tracker's step, then the skeletons drawn; keypoints go to `sink` (an open JSON stream)."""

    def __init__(self, *, max_people: int = 6, threads: int = 1, device: str = "cpu",
                 sink: IO[str] | None = None, draw: bool = True) -> None:
        from ..people.tracker import TrackerConfig
        from ..people.salience import SalienceRule

        self.tracker = build_tracker(TrackerConfig(max_people=max_people, salience=SalienceRule(everyone=True)),
                                     threads=threads, device=device)
        self.sink, self.draw = sink, draw
        self.stats = PoseStats()
        self.frames_written = 0
        self.time_base: str | None = None  # of the pts in the JSON ("num/den"), from the first frame

    def people(self, rgb: np.ndarray, t: float) -> list[PersonPose]:
        """Everyone in this frame, in id order (the tracker's state moves on by one frame)."""
        t0, detections = time.perf_counter(), self.tracker.detections
        tracked = self.tracker.step(rgb, t)
        self.stats.add(len(tracked), (time.perf_counter() - t0) * 1000, self.tracker.detections != detections)
        return [PersonPose(p.id, p.box, p.result.landmarks[:33], p.result.visibility[:33]) for p in tracked]

    def apply(self, rgb: np.ndarray, frame: VideoFrame) -> np.ndarray:
        people = self.people(rgb, frame.time)
        if self.sink is not None:
            self.time_base = self.time_base or f"{frame.time_base.numerator}/{frame.time_base.denominator}"
            record = {"pts": frame.pts, "time": round(frame.time, 6), "people": [p.to_json() for p in people]}
            self.sink.write(("," if self.frames_written else "") + "\n" + json.dumps(record))
            self.frames_written += 1
        if self.draw:
            for person in people:
                draw_pose(rgb, person)
        return rgb


def build_tracker(config, *, threads: int = 1, device: str = "cpu", masks: bool = False):
    """The person-track model's detector + pose landmarker in a PersonTracker with `config`. Without `masks` the
    landmarker is the graph cut before its mask branch (same landmarks, half the cost per person)."""
    from ..people.detector import PersonDetector
    from ..people.landmarks import PoseLandmarker
    from ..people.tracker import PersonTracker
    from ..runtime import resolve

    spec = resolve("person-track")
    parts = spec.extra["parts"]
    return PersonTracker(PersonDetector(parts["detector"], threads, device),
                         PoseLandmarker(parts["landmarker" if masks else "keypoints"], threads, device), config)


@dataclass
class PoseResult(FxResult):
    """An effect run plus the tracker's cost by number of people."""

    stats: PoseStats = field(default_factory=PoseStats)
    keypoints: Path | None = None


def run_pose(source: str | Path, *, output: str | Path | None = None, keypoints: str | Path | None = None,
             max_people: int = 6, realtime: bool = False, timeout: float = 5.0, stop_after: float | None = None,
             stop: threading.Event | None = None, threads: int = 1, device: str = "cpu",
             progress: bool = False) -> PoseResult:
    """Keypoints of every person in `source`, tracked with ids; a skeleton overlay video and/or a JSON file.

    Args:
        source: a video file, a camera (/dev/videoN), a stream URL, or a file with `realtime`.
        output: the video with skeletons and ids drawn (None: none written).
        keypoints: keypoints per frame: {"source", "keypoints": names, "frames": [{"pts", "time", "people":
            [{"id", "box", "keypoints": [[x, y, visibility] x 33]}]}], "frames_count", "time_base": "num/den"
            of the pts}, streamed (it appears complete, or not at all).
        max_people: people followed at once (the cost grows with each).
        realtime, timeout, stop_after: live sources (see `danmask live`); stop after `stop_after` seconds.
        stop: set it to end the run cleanly (the outputs are complete files of the frames so far).

    Raises:
        VideoError, OutputError, ModelError: one-line reasons (the CLI exits with code 2).

    Example:
        >>> run_pose("clip.mp4", output="pose.mp4", keypoints="pose.json").ms_per_frame  # doctest: +SKIP
    """
    from ..outputs import check_file
    from .loop import check_paths

    check_paths(source, output)
    if keypoints is not None:
        check_file(keypoints)
    with _json_stream(keypoints, source) as sink:
        effect = PoseEffect(max_people=max_people, threads=threads, device=device, sink=sink,
                            draw=output is not None)
        try:
            base = run_effect(effect, source, output, realtime=realtime, timeout=timeout, stop_after=stop_after,
                              stop=stop, progress=progress, desc="pose")
        except VideoError as exc:  # a damaged source: the keypoints of the frames before the damage are kept too
            _close_json(sink, effect)
            kept = f"; their keypoints were written to {keypoints}" if sink is not None else ""
            raise VideoError(f"{exc}{kept}") from exc
        _close_json(sink, effect)
    return PoseResult(**vars(base), stats=effect.stats, keypoints=Path(keypoints) if keypoints else None)


def _close_json(sink: IO[str] | None, effect: PoseEffect) -> None:
    if sink is not None:
        tail = {"frames_count": effect.frames_written, "time_base": effect.time_base}
        sink.write("\n], " + json.dumps(tail)[1:] + "\n")


class _json_stream:
    """A text stream into an atomic file (appears only once complete), or None without a path."""

    def __init__(self, path: str | Path | None, source: str | Path) -> None:
        self.path, self.source = path, source

    def __enter__(self) -> IO[str] | None:
        if self.path is None:
            return None
        import io

        from ..outputs import atomic_file

        self._ctx = atomic_file(self.path)
        self._raw = self._ctx.__enter__()
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8")
        head = {"source": str(self.source), "keypoints": list(KEYPOINTS), "units": "frame pixels",
                "visibility": "MediaPipe Pose landmark visibility, 0..1"}
        self._text.write(json.dumps(head)[:-1] + ', "frames": [')
        return self._text

    def __exit__(self, *exc_info) -> bool:
        if self.path is None:
            return False
        self._text.flush()
        self._text.detach()
        if isinstance(exc_info[1], VideoError):  # closed by run_pose: complete, keep it; the error goes on
            self._ctx.__exit__(None, None, None)
            return False
        return bool(self._ctx.__exit__(*exc_info))
