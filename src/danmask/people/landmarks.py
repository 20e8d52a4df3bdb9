"""Pose landmarks and a person mask from a crop around one person: MediaPipe's pose_landmark graph
(BlazePose, Apache-2.0), replayed in PyTorch by danmask and exported to ONNX; run here by ONNX Runtime.

One pass gives what the tracker needs (39 landmarks: the 33 body points and the two alignment points that
place the next frame's crop; a presence score) and what the product needs (the person's mask in the crop).
The same graph cut before its mask branch (`person-pose-landmarks.onnx`, half the cost) serves effects that want
keypoints only: the tracker then gets a silhouette drawn from the landmarks as the person's mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from .roi import Roi, crop

CROP_SIDE = 256
LANDMARKS = 39
BODY = slice(0, 33)  # the body landmarks; 33 and 34 are the alignment points
HIPS_CENTRE, BODY_TOP = 33, 34


@dataclass
class PoseResult:
    """What one pass says about the crop of `roi`."""

    roi: Roi
    presence: float  # probability that the crop holds a person
    landmarks: np.ndarray  # (39, 2) frame pixels
    visibility: np.ndarray  # (39,) probability that each landmark is visible
    mask: np.ndarray  # (256, 256) float32 person probability in crop pixels

    def next_roi(self) -> Roi:
        """Where the person will be framed in the next frame (MediaPipe Pose's own rule)."""
        return Roi.from_alignment(self.landmarks[HIPS_CENTRE], self.landmarks[BODY_TOP])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class PoseLandmarker:
    """ONNX graph: `src` (N, 3, 256, 256) RGB in [0, 1] -> `landmarks` (N, 39, 5), `presence` (N, 1),
    `mask` (N, 1, 256, 256) probability (absent from a keypoints-only graph)."""

    def __init__(self, path: str | Path, threads: int = 1, device: str = "cpu", flip: bool = False) -> None:
        from ..runtime.onnx_backend import session

        self.session = session(str(path), threads, device)
        names = {o.name for o in self.session.get_outputs()}
        if not {"landmarks", "presence"} <= names:
            raise ModelError(f"{path}: not a pose-landmark graph (outputs {sorted(names)})")
        self.masks = "mask" in names  # False: a keypoints-only graph, masks are silhouettes of the landmarks
        self.flip = flip and self.masks  # also segment each crop mirrored, average the masks (+0.005 IoU, 2x cost)

    def __call__(self, rgb: np.ndarray, roi: Roi) -> PoseResult:
        return self.run(rgb, [roi])[0]

    def run(self, rgb: np.ndarray, rois: list[Roi], mirrored: int | None = None) -> list[PoseResult]:
        """All ROIs of a frame in one batch (one session call, less overhead per person). With `flip`, the first
        `mirrored` crops (default all) are also segmented mirrored: the caller puts those that matter first."""
        if not rois:
            return []
        batch = np.stack([crop(rgb, r, CROP_SIDE) for r in rois]).astype(np.float32)
        batch = batch.transpose(0, 3, 1, 2) * np.float32(1.0 / 255.0)
        n = len(rois)
        mirror = (n if mirrored is None else min(n, max(mirrored, 0))) if self.flip else 0
        if mirror:
            batch = np.concatenate([batch, batch[:mirror, :, :, ::-1]])
        if self.masks:
            lms, pres, masks = self.session.run(["landmarks", "presence", "mask"], {"src": batch})
            masks = masks[:, 0]
        else:
            lms, pres = self.session.run(["landmarks", "presence"], {"src": batch})
            masks = [silhouette(lm[BODY, :2], _sigmoid(lm[BODY, 3])) for lm in lms]
        if mirror:
            masks = np.concatenate([(masks[:mirror] + masks[n:, :, ::-1]) * np.float32(0.5), masks[mirror:n]])
            lms, pres = lms[:n], pres[:n]
        out = []
        for roi, lm, p, m in zip(rois, lms, pres, masks):
            out.append(PoseResult(roi, float(p[0]), roi.to_frame(lm[:, :2].astype(np.float64), CROP_SIDE),
                                  _sigmoid(lm[:, 3]), m))
        return out


# Limbs of the silhouette (pairs of body landmark indices): arms, legs, feet
LIMBS = ((11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28), (27, 31), (28, 32))
TORSO = (11, 12, 24, 23)


def silhouette(points: np.ndarray, visibility: np.ndarray, min_visibility: float = 0.3) -> np.ndarray:
    """A rough person mask (float32 (256, 256) in {0, 1}) drawn from the 33 body landmarks in crop pixels: the
    torso's quadrilateral, a disc for the head, thick limbs. Only for keeping track of who is where (box,
    overlap, colours) when the graph has no mask branch; never shown as a segmentation."""
    out = np.zeros((CROP_SIDE, CROP_SIDE), np.uint8)
    pts = np.round(points).astype(np.int32)
    shoulders = float(np.linalg.norm(points[11] - points[12]))
    torso = float(np.linalg.norm((points[11] + points[12]) / 2 - (points[23] + points[24]) / 2))
    width = max(2, round(0.25 * max(shoulders, 0.5 * torso)))
    cv2.fillConvexPoly(out, pts[list(TORSO)], 1)
    head = float(np.linalg.norm(points[7] - points[8])) if min(visibility[7], visibility[8]) >= min_visibility \
        else 0.6 * shoulders
    cv2.circle(out, tuple(pts[0]), max(2, round(0.6 * head)), 1, -1)
    for a, b in LIMBS:
        if visibility[a] >= min_visibility and visibility[b] >= min_visibility:
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), 1, width)
    return out.astype(np.float32)
