"""Fake SegModels for the core tests: they know the synthetic person's colours (danmask.synthetic)."""
from __future__ import annotations

import cv2
import numpy as np

from danmask.runtime import ModelSpec

PERSON_COLOURS = (np.array([220, 60, 40]), np.array([40, 200, 90]))  # before / after the cut


def colour_mask(rgb: np.ndarray) -> np.ndarray:
    """Exact person mask of a synthetic frame, from its flat person colours (codec noise tolerated)."""
    rgb = rgb.astype(np.int16)
    near = [np.abs(rgb - c).max(axis=2) < 40 for c in PERSON_COLOURS]
    return (near[0] | near[1]).astype(np.float32)


class ColourOracle:
    """Perfect model, optionally with per-frame noise on the soft edge; records what it was given."""

    def __init__(self, size=(90, 160), noise: float = 0.0, takes_prior: bool = False, seed: int = 0) -> None:
        self.spec = ModelSpec(name="colour-oracle", input_size=size, takes_prior=takes_prior)
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.calls: list[np.ndarray] = []  # rgb frames it ran on
        self.priors: list[np.ndarray | None] = []

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        self.calls.append(rgb)
        self.priors.append(prior)
        h, w = self.spec.input_size
        soft = cv2.resize(colour_mask(rgb), (w, h), interpolation=cv2.INTER_AREA)
        if self.noise:
            edge = (soft > 0.02) & (soft < 0.98)
            edge = cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            soft = soft + edge * self.rng.normal(0, self.noise, soft.shape).astype(np.float32)
        return np.clip(soft, 0, 1).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union
