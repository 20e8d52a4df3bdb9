"""The contract every segmentation backend honours, so the pipeline, eval and bench treat ours and peers alike."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class ModelSpec:
    """Preprocessing metadata that travels with the weights (cf. timm's PretrainedCfg).

    Normalisation lives inside our ONNX graphs, so every runtime feeds plain RGB in [0, 1].
    """

    name: str
    input_size: tuple[int, int]  # (height, width) the network sees
    takes_prior: bool = False  # previous mask as 4th input channel
    output: str = "probability"  # "probability" (sigmoid in graph) or "logit"
    backend: str = "onnx"  # "onnx" or "litert"
    path: str = ""  # file of the weights; empty for backends that locate their own
    licence: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)


class SegModel(Protocol):
    """A loaded model: RGB frame (+ optional previous mask) -> soft person mask at model resolution."""

    spec: ModelSpec

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """rgb: HxWx3 uint8 at any size; prior: float32 mask in [0,1] at any size or None.

        Returns float32 (h, w) in [0, 1] at the model's input size.
        """
        ...


def shrink(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A frame more than 4x larger than (h, w) on both sides, bilinear-resized to twice (h, w); else as it is.

    An area filter straight from 720p to a model's 256x144 costs about 2 ms on one core, more than the model;
    bilinear to 512x288 first (reads few pixels), then the area filter, costs a third of that and looks the same.
    """
    h, w = size
    if rgb.shape[0] > 4 * h and rgb.shape[1] > 4 * w:
        return cv2.resize(rgb, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    return rgb


def to_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 uint8 frame to (h, w) and scale to float32 [0,1] HWC."""
    h, w = size
    rgb = shrink(rgb, size)
    if rgb.shape[:2] != (h, w):
        interp = cv2.INTER_AREA if rgb.shape[0] > h else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (w, h), interpolation=interp)
    return rgb.astype(np.float32) * (1.0 / 255.0)


def prior_input(prior: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """The previous mask at (h, w) float32; zeros when there is none (first frame, after a cut)."""
    h, w = size
    if prior is None:
        return np.zeros((h, w), np.float32)
    prior = prior.astype(np.float32, copy=False)
    if prior.shape != (h, w):
        prior = cv2.resize(prior, (w, h), interpolation=cv2.INTER_LINEAR)
    return prior
