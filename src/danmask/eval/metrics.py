"""Per-frame mask metrics, written from their definitions so any model is scored the same way.

All functions take boolean (H, W) masks at the ground truth's resolution. Conventions follow the DAVIS
toolkit where one exists (J = IoU with empty/empty = 1; F = boundary F-measure with a tolerance band of
ceil(0.008 * image diagonal) pixels); the temporal measures are the GT-relative dtSSD of video matting
(Erofeev et al. 2015) applied to binary masks, and raw flicker = 1 - IoU of consecutive predictions.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # DAVIS: fraction of the image diagonal


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J. Two empty masks agree perfectly (1.0), as in the DAVIS toolkit."""
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-thin boundary: a pixel whose right, lower or lower-right neighbour differs (DAVIS seg2bmap).

    The last row/column compare only along the image edge, so a mask touching the border has no boundary
    drawn along that border, exactly as in the toolkit.
    """
    m = mask.astype(bool)
    east = np.zeros_like(m)
    south = np.zeros_like(m)
    south_east = np.zeros_like(m)
    east[:, :-1] = m[:, 1:]
    south[:-1, :] = m[1:, :]
    south_east[:-1, :-1] = m[1:, 1:]
    b = (m ^ east) | (m ^ south) | (m ^ south_east)
    b[-1, :] = m[-1, :] ^ east[-1, :]
    b[:, -1] = m[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def tolerance_pixels(shape: tuple[int, int], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Radius of the matching band: ceil(tolerance * diagonal); values >= 1 are taken as pixels."""
    if tolerance >= 1:
        return int(tolerance)
    return int(math.ceil(tolerance * math.hypot(*shape)))


def disk(radius: int) -> np.ndarray:
    """Disk structuring element: all offsets (dy, dx) with dy^2 + dx^2 <= radius^2."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """Contour accuracy F: precision/recall of boundary pixels matched within the tolerance band."""
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # one side has no boundary: precision or recall is 0, so F is 0
    kernel = disk(tolerance_pixels(gt.shape, tolerance))
    pred_band = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    gt_band = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred_b & gt_band) / n_pred
    recall = np.count_nonzero(gt_b & pred_band) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def temporal_error(pred_prev: np.ndarray, pred: np.ndarray, gt_prev: np.ndarray, gt: np.ndarray) -> float:
    """GT-relative temporal error (dtSSD on binary masks): RMS over pixels of the change of the prediction
    minus the change of the truth between two consecutive frames. 0 when the prediction moves exactly as
    the person does; a static mask that flips one pixel in N gives sqrt(1/N)."""
    d_pred = pred.astype(np.int8) - pred_prev.astype(np.int8)
    d_gt = gt.astype(np.int8) - gt_prev.astype(np.int8)
    diff = (d_pred - d_gt).astype(np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def flicker(pred_prev: np.ndarray, pred: np.ndarray) -> float:
    """Raw flicker: 1 - IoU of two consecutive predictions (0 when both are empty)."""
    return 1.0 - iou(pred_prev, pred)


def fp_fraction(pred: np.ndarray) -> float:
    """Share of pixels predicted as person on a frame that has no person."""
    return np.count_nonzero(pred) / pred.size


def identity_swaps(truth: list[dict[int, np.ndarray]], pred: list[dict[int, np.ndarray]],
                   min_iou: float = 0.5) -> dict[str, int]:
    """How often tracked ids changed hands, frame by frame (masks at the same size in both).

    In each frame every predicted person is matched to the true person it overlaps best (IoU >= `min_iou`).
    - `swaps`: predicted ids that were matched to one true person and later to another (two people's ids
      exchanged, or one id jumping to someone else): what must never happen;
    - `new_ids`: times a true person's matched id changed to a never-seen-for-them id (lost and found again
      under a new id: allowed, but counted);
    - `matched` / `truth`: person-frames matched, and present in the truth.
    """
    owner: dict[int, int] = {}  # predicted id -> the true person it belongs to
    last: dict[int, int] = {}  # true id -> predicted id matched most recently
    swapped: set[int] = set()
    counts = {"swaps": 0, "new_ids": 0, "matched": 0, "truth": sum(len(f) for f in truth)}
    for true_masks, pred_masks in zip(truth, pred):
        for pid, pm in pred_masks.items():
            best = max(((iou(pm, tm), tid) for tid, tm in true_masks.items()), default=(0.0, None))
            if best[0] < min_iou:
                continue
            tid = best[1]
            counts["matched"] += 1
            if owner.setdefault(pid, tid) != tid and pid not in swapped:
                swapped.add(pid)
                counts["swaps"] += 1
            if last.get(tid, pid) != pid:
                counts["new_ids"] += 1
            last[tid] = pid
    return counts
