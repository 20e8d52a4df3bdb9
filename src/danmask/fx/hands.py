"""Hand landmarks: MediaPipe Hands (Apache-2.0, the mediapipe==0.10.14 wheel's palm_detection_lite.tflite and
hand_landmark_lite.tflite) run by ai-edge-litert, tracked as MediaPipe's own graph does: the palm detector finds
hands, then each hand's next crop comes from its own landmarks, and the detector runs again only when a hand is
lost (or, while fewer than `max_hands` are followed, every `redetect_s` seconds).

Crop rules (MediaPipe's hand_landmark_tracking graph, read not copied): from a palm, a square 2.6x the palm box,
shifted half a box towards the fingers, turned so that wrist -> middle-finger knuckle points up; from landmarks,
2.0x the box of the palm and knuckle landmarks, shifted 0.1 up, turned by wrist -> knuckles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..people.roi import Roi, box_iou, crop
from .tflite import SsdDetector, TfLite, wheel_file

CROP = 224
PRESENCE = 0.5  # below: the hand is lost
WRIST, MIDDLE_MCP = 0, 9
_RECT_POINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
# the bones of the 21 landmarks, for drawing
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))


@dataclass
class Hand:
    """One hand in one frame: 21 landmarks (x, y in frame pixels, z in the same scale, relative to the wrist)."""

    id: int
    landmarks: np.ndarray  # (21, 3)
    presence: float
    right: float  # the model's probability that it is a right hand (as seen in the picture)
    roi: Roi

    def box(self) -> tuple[float, float, float, float]:
        p = self.landmarks[:, :2]
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Radians that turn a -> b to point up (MediaPipe's rotation with a 90 degree target)."""
    return (math.pi / 2 - math.atan2(-(b[1] - a[1]), b[0] - a[0]) + math.pi) % (2 * math.pi) - math.pi


def _rect(centre: np.ndarray, w: float, h: float, angle: float, scale: float, shift_y: float) -> Roi:
    """MediaPipe's RectTransformation: shift by shift_y heights along the rect's up axis, scale, square long."""
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = centre[0] - h * shift_y * s, centre[1] + h * shift_y * c
    return Roi(float(cx), float(cy), max(w, h) * scale, angle)


def roi_from_palm(box: tuple[float, float, float, float], kps: np.ndarray) -> Roi:
    angle = _angle(kps[0], kps[2])
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    return _rect(centre, box[2] - box[0], box[3] - box[1], angle, 2.6, -0.5)


def roi_from_landmarks(lm: np.ndarray) -> Roi:
    p = lm[:, :2]
    knuckles = ((p[5] + p[13]) / 2 + p[MIDDLE_MCP]) / 2
    angle = _angle(p[WRIST], knuckles)
    pts = p[list(_RECT_POINTS)]
    c, s = math.cos(-angle), math.sin(-angle)  # into the hand's own upright frame
    rot = np.array([[c, -s], [s, c]])
    q = pts @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = ((lo + hi) / 2) @ rot  # back to the frame
    return _rect(centre, hi[0] - lo[0], hi[1] - lo[1], angle, 2.0, -0.1)


class HandTracker:
    """`step(rgb, t)` -> the hands in this frame, with ids kept while a hand is followed."""

    def __init__(self, *, max_hands: int = 2, threads: int = 1, redetect_s: float = 0.5,
                 full: bool = False) -> None:
        variant = "full" if full else "lite"
        self.palms = SsdDetector(wheel_file("palm_detection", f"palm_detection_{variant}.tflite"), keypoints=7,
                                 unit_range=True, threshold=0.5, threads=threads, max_found=max_hands)
        self.model = TfLite(wheel_file("hand_landmark", f"hand_landmark_{variant}.tflite"), threads)
        self.max_hands, self.redetect_s = max_hands, redetect_s
        self.hands: list[Hand] = []
        self.next_id, self.last_detect = 1, -math.inf
        self.detections = 0  # how many times the palm detector ran

    def reset(self) -> None:
        self.hands, self.last_detect = [], -math.inf

    def step(self, rgb: np.ndarray, t: float) -> list[Hand]:
        rois = [roi_from_landmarks(h.landmarks) for h in self.hands]
        ids = [h.id for h in self.hands]
        if len(rois) < self.max_hands and (not rois or t - self.last_detect >= self.redetect_s):
            self.last_detect = t
            self.detections += 1
            for d in self.palms(rgb):
                roi = roi_from_palm(d.box, d.keypoints)
                if all(_overlap(roi, r) < 0.5 for r in rois) and len(rois) < self.max_hands:
                    rois.append(roi)
                    ids.append(0)
        hands = []
        for roi, hid in zip(rois, ids):
            lm, presence, right = self.landmarks(rgb, roi)
            if presence < PRESENCE:
                continue
            if hid == 0:
                hid, self.next_id = self.next_id, self.next_id + 1
            hands.append(Hand(hid, lm, presence, right, roi))
        self.hands = _dedupe(hands)
        return self.hands

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float, float]:
        """One crop: (21, 3) frame landmarks, presence, right-hand probability."""
        x = crop(rgb, roi, CROP).astype(np.float32) / 255.0
        outs = self.model.run(x[None])
        pts, flags = [o for o in outs if o.size == 63], [float(o.reshape(-1)[0]) for o in outs if o.size == 1]
        raw = pts[0].reshape(21, 3)  # the first 63-wide output: image landmarks (the second: world landmarks)
        xy = roi.to_frame(raw[:, :2].astype(np.float64), CROP)
        z = raw[:, 2:3] * roi.size / CROP
        presence, right = flags[0], flags[1]
        return np.concatenate([xy, z], 1).astype(np.float32), presence, right


def _overlap(a: Roi, b: Roi) -> float:
    return box_iou(a.box(), b.box())


def _dedupe(hands: list[Hand]) -> list[Hand]:
    """Two crops that converged on one hand: keep the older id."""
    kept: list[Hand] = []
    for h in sorted(hands, key=lambda h: h.id):
        if all(box_iou(h.box(), k.box()) < 0.5 for k in kept):
            kept.append(h)
    return kept
