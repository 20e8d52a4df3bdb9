"""BodyPix (MobileNetV1 x0.50, output stride 16; Apache-2.0, Google's TensorFlow.js model as converted to ONNX by
keijiro/BodyPixSentis) run by ONNX Runtime: a person mask and 24 body parts for every person in the frame.

Decoding follows BodyPix 2's own (tfjs-models body-pix `decodePartSegmentation`, read, not copied): the input is
RGB scaled to [-1, 1] at a side of 16k + 1, the person mask is sigmoid(segments) > threshold, and a person pixel's
part is the argmax of the 24 part heatmaps. Both maps come out at 1/16 of the input and are resized bilinearly
(logits, before the threshold and the argmax) so the part borders are smooth, not 16-pixel blocks.

BodyPix's 24 parts are mapped to six groups (`GROUPS`): head, torso, arms, hands, legs, feet. The model gives parts
for everyone but not who is who (that would need its pose decoder); `danmask fx pose` has the ids.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError

WEIGHTS = Path(__file__).resolve().parents[1] / "runtime" / "weights" / "bodypix-mobilenetv1-050-stride16.onnx"
STRIDE = 16
DEFAULT_BOX = (240, 320)  # (h, w) the input fits in by default: a 4:3 frame runs at 321x241
PERSON_THRESHOLD = 0.5

# BodyPix 2's 24 parts, in the model's channel order
PARTS = (
    "left_face", "right_face", "left_upper_arm_front", "left_upper_arm_back", "right_upper_arm_front",
    "right_upper_arm_back", "left_lower_arm_front", "left_lower_arm_back", "right_lower_arm_front",
    "right_lower_arm_back", "left_hand", "right_hand", "torso_front", "torso_back", "left_upper_leg_front",
    "left_upper_leg_back", "right_upper_leg_front", "right_upper_leg_back", "left_lower_leg_front",
    "left_lower_leg_back", "right_lower_leg_front", "right_lower_leg_back", "left_feet", "right_feet",
)
# The groups danmask exposes: 0 is background, 1.. are these, in this order
GROUPS = ("head", "torso", "arms", "hands", "legs", "feet")
PART_TO_GROUP = np.array([1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6], np.uint8)


def input_side(side: int) -> int:
    """The nearest valid input side at or above `side`: 16k + 1 (BodyPix's grid puts a cell on both edges)."""
    return max(1, -(-(side - 1) // STRIDE)) * STRIDE + 1


def fitted(frame: tuple[int, int], box: tuple[int, int]) -> tuple[float, float]:
    """(h, w) of a frame of (h, w) `frame` scaled, its aspect kept, to fit in `box` (whose long side goes along
    the frame's long side), before each network rounds the sides to its own grid."""
    (fh, fw), (bh, bw) = frame, box
    if (fh > fw) != (bh > bw):
        bh, bw = bw, bh
    scale = min(bh / fh, bw / fw)
    return fh * scale, fw * scale


def fit(frame: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) input for a frame of (h, w) `frame`: `fitted`, each side rounded up to 16k + 1.
    640x360 in 320x240 -> 321x193."""
    h, w = fitted(frame, box)
    return input_side(round(h)), input_side(round(w))


class BodyPix:
    """`parts(rgb)` -> uint8 (h, w) group map (0 background, 1..6 = GROUPS), at the frame's own size."""

    def __init__(self, *, input_size: tuple[int, int] = DEFAULT_BOX, threads: int = 1, device: str = "cpu",
                 threshold: float = PERSON_THRESHOLD, path: str | Path = WEIGHTS) -> None:
        from ..runtime.onnx_backend import session

        self.session = session(str(path), threads, device)
        names = {o.name for o in self.session.get_outputs()}
        if not {"segments", "part_heatmaps"} <= names:
            raise ModelError(f"{path}: not a BodyPix graph (outputs {sorted(names)})")
        self.box = input_size  # (h, w) the input must fit in (turned for portrait frames)
        self.input_size = (input_side(input_size[0]), input_side(input_size[1]))  # of the last frame
        self.threshold = threshold
        self.model_ms = 0.0  # the last call's session time

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(person logit (gh, gw), part logits (gh, gw, 24)) on BodyPix's 1/16 grid of the resized frame
        (`fit`: aspect kept)."""
        import time

        h, w = self.input_size = fit(rgb.shape[:2], self.box)
        x = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = x * np.float32(2 / 255) - np.float32(1)
        t0 = time.perf_counter()
        segments, parts = self.session.run(["segments", "part_heatmaps"], {"input": x[None]})
        self.model_ms = (time.perf_counter() - t0) * 1000
        return segments[0, :, :, 0], parts[0]

    def parts(self, rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Group map (uint8, 0 background, 1..6 = GROUPS) at (h, w) `size` (default the frame's).

        The part argmax is taken at the model's input size (logits resized there bilinearly), then the labels are
        scaled to `size` by nearest neighbour; the person mask is thresholded at `size` itself.
        """
        fh, fw = size or rgb.shape[:2]
        seg, parts = self.raw(rgb)
        ih, iw = self.input_size
        person = cv2.resize(seg, (fw, fh), interpolation=cv2.INTER_LINEAR) > _logit(self.threshold)
        part = _resize_channels(parts, (iw, ih)).argmax(axis=2).astype(np.uint8)
        groups = PART_TO_GROUP[cv2.resize(part, (fw, fh), interpolation=cv2.INTER_NEAREST)]
        return np.where(person, groups, np.uint8(0))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _resize_channels(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (h, w, C) float maps to (w, h) `size` (OpenCV takes up to 512 channels in one call)."""
    return cv2.resize(np.ascontiguousarray(x), size, interpolation=cv2.INTER_LINEAR)
