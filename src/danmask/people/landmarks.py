"""Pose landmarks and a person mask from a crop around one person: MediaPipe's pose_landmark graph
(BlazePose, Apache-2.0), replayed in PyTorch by danmask and exported to ONNX; run here by ONNX Runtime.

One pass gives what the tracker needs (39 landmarks: the 33 body points and the two alignment points that
place the next frame's crop; a presence score) and what the product needs (the person's mask in the crop).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    `mask` (N, 1, 256, 256) probability."""

    def __init__(self, path: str | Path, threads: int = 1, device: str = "cpu", flip: bool = False) -> None:
        from ..runtime.onnx_backend import session

        self.session = session(str(path), threads, device)
        self.flip = flip  # also segment each crop mirrored and average the masks (+0.005 IoU, twice the cost)
        names = {o.name for o in self.session.get_outputs()}
        if not {"landmarks", "presence", "mask"} <= names:
            raise ModelError(f"{path}: not a pose-landmark graph (outputs {sorted(names)})")

    def __call__(self, rgb: np.ndarray, roi: Roi) -> PoseResult:
        return self.run(rgb, [roi])[0]

    def run(self, rgb: np.ndarray, rois: list[Roi]) -> list[PoseResult]:
        """All ROIs of a frame in one batch (one session call, less overhead per person)."""
        if not rois:
            return []
        batch = np.stack([crop(rgb, r, CROP_SIDE) for r in rois]).astype(np.float32)
        batch = batch.transpose(0, 3, 1, 2) * np.float32(1.0 / 255.0)
        n = len(rois)
        if self.flip:
            batch = np.concatenate([batch, batch[:, :, :, ::-1]])
        lms, pres, masks = self.session.run(["landmarks", "presence", "mask"], {"src": batch})
        if self.flip:
            lms, pres, masks = lms[:n], pres[:n], (masks[:n] + masks[n:, :, :, ::-1]) * np.float32(0.5)
        out = []
        for roi, lm, p, m in zip(rois, lms, pres, masks):
            out.append(PoseResult(roi, float(p[0]), roi.to_frame(lm[:, :2].astype(np.float64), CROP_SIDE),
                                  _sigmoid(lm[:, 3]), m[0]))
        return out
