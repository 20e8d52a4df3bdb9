"""Face landmarks: MediaPipe's face detector (BlazeFace full range) and face mesh (468 landmarks), Apache-2.0,
from the mediapipe==0.10.14 wheel, run by ai-edge-litert (the mediapipe package is never imported), followed frame
to frame as MediaPipe's face-mesh graph does: the detector finds faces, then each face's next crop comes from its
own landmarks (eyes level, 1.5x the landmarks' box), the detector running again only for newcomers.

Landmarks are smoothed over time per face with a One Euro filter (Casiez et al. 2012): still faces do not
jitter, moving faces do not lag.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..people.roi import Roi, box_iou, crop
from .tflite import SsdDetector, TfLite, wheel_file

CROP = 192
PRESENCE = 0.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


@dataclass
class Face:
    id: int
    landmarks: np.ndarray  # (468, 3) frame pixels (x, y) and depth (z, same scale; smaller is nearer)
    presence: float
    roi: Roi

    def box(self) -> tuple[float, float, float, float]:
        p = self.landmarks[:, :2]
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _level(a: np.ndarray, b: np.ndarray) -> float:
    """Radians that turn a -> b to point right (MediaPipe's rotation with a 0 target)."""
    return (-math.atan2(-(b[1] - a[1]), b[0] - a[0]) + math.pi) % (2 * math.pi) - math.pi


def roi_from_detection(box: tuple[float, float, float, float], kps: np.ndarray) -> Roi:
    angle = _level(kps[0], kps[1])  # right eye -> left eye (as seen)
    return Roi((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], box[3] - box[1]) * 1.5, angle)


def roi_from_landmarks(lm: np.ndarray) -> Roi:
    angle = _level(lm[RIGHT_EYE_OUTER], lm[LEFT_EYE_OUTER])
    c, s = math.cos(-angle), math.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    q = lm[:, :2] @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = ((lo + hi) / 2) @ rot
    return Roi(float(centre[0]), float(centre[1]), float(max(hi - lo)) * 1.5, angle)


class OneEuro:
    """One Euro filter over arrays, on the source's clock."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        if self.x is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        # the cutoff grows with the speed of the face as a whole (one speed per face, not per landmark)
        speed = float(np.linalg.norm(self.dx[:, :2], axis=1).mean())
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)
        self.x, self.t = self.x + a * (x - self.x), t
        return self.x


class FaceTracker:
    """`step(rgb, t)` -> the faces in this frame with ids; `smooth`: landmarks through a One Euro filter."""

    def __init__(self, *, max_faces: int = 2, threads: int = 1, redetect_s: float = 0.5, smooth: bool = True
                 ) -> None:
        # the full-range detector (192x192, one anchor per 4x4 cell): faces from selfie size down to ~30 pixels
        self.detector = SsdDetector(wheel_file("face_detection", "face_detection_full_range_sparse.tflite"),
                                    keypoints=6, unit_range=False, threshold=0.5, threads=threads,
                                    max_found=max_faces, strides=(4,), per_layer=1)
        self.model = TfLite(wheel_file("face_landmark", "face_landmark.tflite"), threads)
        self.max_faces, self.redetect_s, self.smooth = max_faces, redetect_s, smooth
        self.faces: list[Face] = []
        self.filters: dict[int, OneEuro] = {}
        self.raw: dict[int, np.ndarray] = {}  # unsmoothed landmarks: the next crop follows the face, not the filter
        self.next_id, self.last_detect = 1, -math.inf

    def reset(self) -> None:
        """Forget every face (a new picture or a cut): the next step detects afresh. Ids keep counting up."""
        self.faces, self.filters, self.raw, self.last_detect = [], {}, {}, -math.inf

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        x = crop(rgb, roi, CROP).astype(np.float32) / 255.0
        outs = self.model.run(x[None])
        pts = next(o for o in outs if o.size == 468 * 3).reshape(468, 3)
        logit = float(next(o for o in outs if o.size == 1).reshape(-1)[0])
        xy = roi.to_frame(pts[:, :2].astype(np.float64), CROP)
        z = pts[:, 2:3] * roi.size / CROP
        return np.concatenate([xy, z], 1).astype(np.float32), 1 / (1 + math.exp(-max(-50.0, min(50.0, logit))))

    def step(self, rgb: np.ndarray, t: float) -> list[Face]:
        rois = [roi_from_landmarks(self.raw[f.id]) for f in self.faces]
        ids = [f.id for f in self.faces]
        if len(rois) < self.max_faces and (not rois or t - self.last_detect >= self.redetect_s):
            self.last_detect = t
            for d in self.detector(rgb):
                roi = roi_from_detection(d.box, d.keypoints)
                if len(rois) < self.max_faces and all(box_iou(roi.box(), r.box()) < 0.3 for r in rois):
                    rois.append(roi)
                    ids.append(0)
        faces = []
        for roi, fid in zip(rois, ids):
            lm, presence = self.landmarks(rgb, roi)
            if presence < PRESENCE:
                continue
            if fid == 0:
                fid, self.next_id = self.next_id, self.next_id + 1
            self.raw[fid] = lm
            if self.smooth:
                lm = self.filters.setdefault(fid, OneEuro())(lm, t)
            faces.append(Face(fid, lm, presence, roi))
        kept: list[Face] = []
        for f in sorted(faces, key=lambda f: f.id):
            if all(box_iou(f.box(), k.box()) < 0.5 for k in kept):
                kept.append(f)
        self.faces = kept
        alive = {f.id for f in kept}
        self.filters = {i: v for i, v in self.filters.items() if i in alive}
        self.raw = {i: v for i, v in self.raw.items() if i in alive}
        return kept
