"""Video object segmentation scores as DAVIS defines them: J (region), F (boundary), their statistics, J&F.

Written from the definitions of the DAVIS benchmark (Perazzi et al. 2016; Pont-Tuset et al. 2017) and checked
against the conventions of its public evaluation code (`davis2017-evaluation`: `metrics.py`, `utils.py`,
`evaluation.py`), not copied from it. Per frame and per object:

- J = |pred & truth| / |pred | truth|, and 1 when both are empty.
- F: both masks become one-pixel boundary maps (`metrics.boundary_map`, DAVIS's seg2bmap); each map is dilated with
  a disk of radius ceil(0.008 x image diagonal) pixels (8 at 854x480); precision = share of predicted boundary
  pixels inside the truth's band, recall = share of true boundary pixels inside the prediction's band,
  F = 2PR / (P + R), 0 when P + R = 0. Empty boundaries: none on both sides P = R = 1 (F = 1); none predicted
  but some true P = 1, R = 0 (F = 0); some predicted but none true P = 0, R = 1 (F = 0).

Per object over a sequence (semi-supervised task), DAVIS scores every frame but the first (given) and the last,
and reports, for J and for F alike: the mean, the recall (share of those frames scoring > 0.5) and the decay
(mean of the first quarter of the frames minus the mean of the last quarter; the quarters are the official
overlapping bins). J&F = (mean J + mean F) / 2. A dataset's figures are means over objects, as DAVIS's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .metrics import boundary_map, disk

BOUND_TH = 0.008  # fraction of the image diagonal (DAVIS); values >= 1 are pixels


def j_measure(pred: np.ndarray, truth: np.ndarray) -> float:
    """Region similarity J of two bool (H, W) masks; 1.0 when both are empty."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction is {pred.shape} but the truth is {truth.shape}")
    union = np.count_nonzero(pred | truth)
    return 1.0 if union == 0 else np.count_nonzero(pred & truth) / union


def bound_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Radius of the matching disk: ceil(bound_th x diagonal), or bound_th itself when it is >= 1."""
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(*shape)))


def boundary_pr(pred: np.ndarray, truth: np.ndarray, bound_th: float = BOUND_TH) -> tuple[float, float]:
    """(precision, recall) of the predicted boundary against the true one (conventions: module docstring)."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction is {pred.shape} but the truth is {truth.shape}")
    pred_b, true_b = boundary_map(pred), boundary_map(truth)
    n_pred, n_true = np.count_nonzero(pred_b), np.count_nonzero(true_b)
    if n_pred == 0 or n_true == 0:
        return (1.0 if n_pred == 0 else 0.0), (1.0 if n_true == 0 else 0.0)
    kernel = disk(bound_pixels(truth.shape, bound_th))
    pred_band = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    true_band = cv2.dilate(true_b.astype(np.uint8), kernel).astype(bool)
    return np.count_nonzero(pred_b & true_band) / n_pred, np.count_nonzero(true_b & pred_band) / n_true


def f_measure(pred: np.ndarray, truth: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Contour accuracy F of two bool (H, W) masks."""
    p, r = boundary_pr(pred, truth, bound_th)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@dataclass(frozen=True)
class Stats:
    """DAVIS's statistics of one measure over one object's scored frames."""

    mean: float
    recall: float  # share of frames > 0.5
    decay: float  # first quarter's mean - last quarter's mean


def statistics(values: list[float] | np.ndarray) -> Stats:
    """Mean, recall and decay of per-frame values (mean and decay skip NaN, as DAVIS; all NaN for no frames).

    The four quarters are DAVIS's bins: edges round(linspace(1, n, 5)) - 1, bin i = values[e_i : e_(i+1) + 1],
    so neighbouring bins share a frame. (The official code casts the edges to uint8, which wraps past 255
    frames; here they stay integers, identical below 256 frames.)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or np.all(np.isnan(v)):
        nan = float("nan")
        return Stats(nan, nan, nan)
    edges = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(int)
    first, last = v[edges[0]:edges[1] + 1], v[edges[3]:edges[4] + 1]
    recall = float(np.mean(v > 0.5))  # as DAVIS: a NaN frame counts as not recalled
    return Stats(float(np.nanmean(v)), recall, float(_nanmean(first) - _nanmean(last)))


def _nanmean(v: np.ndarray) -> float:
    kept = v[~np.isnan(v)]
    return float(kept.mean()) if kept.size else float("nan")


@dataclass
class ObjectScore:
    """One object of one sequence: per-frame J and F on the scored frames (first and last excluded)."""

    sequence: str
    object_id: int
    frames: list[str]  # frame ids scored
    j: list[float]
    f: list[float]

    @property
    def j_stats(self) -> Stats:
        return statistics(self.j)

    @property
    def f_stats(self) -> Stats:
        return statistics(self.f)

    @property
    def jf(self) -> float:
        return (self.j_stats.mean + self.f_stats.mean) / 2

    def summary(self) -> dict:
        js, fs = self.j_stats, self.f_stats
        return {"J": js.mean, "J_recall": js.recall, "J_decay": js.decay, "F": fs.mean, "F_recall": fs.recall,
                "F_decay": fs.decay, "JF": self.jf, "frames": len(self.j)}


def davis_frames(n: int) -> slice:
    """Which of a sequence's n annotated frames DAVIS scores in the semi-supervised task: all but first and last."""
    return slice(1, max(1, n - 1))


def mean_summary(objects: list[ObjectScore]) -> dict:
    """Means over objects of each figure of `ObjectScore.summary` (DAVIS's dataset-level numbers)."""
    rows = [o.summary() for o in objects]
    if not rows:
        return {}
    keys = [k for k in rows[0] if k != "frames"]
    out = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    out["objects"] = len(rows)
    out["frames"] = sum(r["frames"] for r in rows)
    return out
