"""Regions of interest around people: a rotated square in frame pixels, and the affine maps to and from a crop.

MediaPipe Pose's convention (Apache-2.0, read not copied): the ROI is centred on the hips' midpoint, rotated so
that the hips-to-body-centre vector points up, and 1.25x the body's extent. Everything here is plain numpy /
OpenCV so the runtime never needs torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = 1.25  # the crop is this much larger than the body it frames


@dataclass(frozen=True)
class Roi:
    """A rotated square: centre (cx, cy) and side `size` in frame pixels; `angle` in radians, clockwise as seen
    on screen (MediaPipe's convention): the crop's "up" points along (sin angle, -cos angle) in the frame."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    @classmethod
    def from_box(cls, x0: float, y0: float, x1: float, y1: float, scale: float = ROI_SCALE) -> Roi:
        """An upright square around a detector box (long side x scale): the first guess for a new person."""
        return cls((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale, 0.0)

    @classmethod
    def from_alignment(cls, centre: np.ndarray, top: np.ndarray, scale: float = ROI_SCALE) -> Roi:
        """From two alignment points (MediaPipe's auxiliary landmarks): the hips' midpoint and a point whose
        distance from it is the radius of a circle around the whole body, above the head when upright."""
        dx, dy = float(top[0] - centre[0]), float(top[1] - centre[1])
        radius = math.hypot(dx, dy)
        angle = _wrap(math.pi / 2 - math.atan2(-dy, dx))
        return cls(float(centre[0]), float(centre[1]), 2 * radius * scale, angle)

    def crop_matrix(self, side: int) -> np.ndarray:
        """2x3 affine: frame pixels -> crop pixels of a side x side crop (for cv2.warpAffine)."""
        return cv2.invertAffineTransform(self.frame_matrix(side))

    def frame_matrix(self, side: int) -> np.ndarray:
        """2x3 affine: crop pixels -> frame pixels."""
        s = self.size / side
        c, n = math.cos(self.angle) * s, math.sin(self.angle) * s
        # crop (u, v) centred at side/2 -> rotate clockwise on screen (y down) -> frame
        half = side / 2
        return np.array([[c, -n, self.cx - c * half + n * half],
                         [n, c, self.cy - n * half - c * half]], np.float64)

    def to_frame(self, points: np.ndarray, side: int) -> np.ndarray:
        """(N, 2) crop pixel coordinates -> frame pixels."""
        m = self.frame_matrix(side)
        return points @ m[:, :2].T + m[:, 2]

    def corners(self) -> np.ndarray:
        """(4, 2) frame-pixel corners, for drawing and for the box a person occupies."""
        return self.to_frame(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64), 1)

    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x0, y0, x1, y1) around the rotated square."""
        c = self.corners()
        return float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max())


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def crop(rgb: np.ndarray, roi: Roi, side: int) -> np.ndarray:
    """The ROI resampled to side x side, black outside the frame. MediaPipe's own crop replicates the frame's edge
    instead; measured on 2026-12-07, replicating lost a little on COCO people (0.459 against 0.466 IoU) and on the
    zooming-camera copies of the DAVIS person sequences (0.608 against 0.620), so black stays."""
    return cv2.warpAffine(rgb, roi.crop_matrix(side), (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def paste(mask: np.ndarray, roi: Roi, frame_size: tuple[int, int], out_size: tuple[int, int] | None = None
          ) -> np.ndarray:
    """A crop-space float mask back into the frame of (h, w) `frame_size`, drawn at `out_size` (default the
    frame's own); zero outside the ROI."""
    (fh, fw), (h, w) = frame_size, out_size or frame_size
    m = np.diag([w / fw, h / fh]) @ roi.frame_matrix(mask.shape[0])
    return cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
