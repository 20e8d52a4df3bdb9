"""The pieces of MediaPipe's detectors that `danmask fx` needs, in numpy: TFLite files run by ai-edge-litert (the
`mediapipe` extra; the mediapipe package itself is never imported, only its wheel's .tflite files are read), SSD
anchors and the decoding of BlazePalm / BlazeFace outputs (MediaPipe's SsdAnchorsCalculator and
TensorsToDetectionsCalculator conventions, read not copied), letterboxing and non-maximum suppression.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError


class TfLite:
    """One .tflite graph with float inputs: `run(*arrays)` -> its outputs in the graph's order."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError("this effect needs ai-edge-litert: pip install 'danmask[mediapipe]'") from exc
        try:
            with _quiet_stderr():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate": not for our users
                self.interp = Interpreter(model_path=str(path), num_threads=max(1, int(threads)))
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: cannot load TFLite model ({exc})") from exc
        self.path = Path(path)
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def input_shape(self, i: int = 0) -> tuple[int, ...]:
        return tuple(int(v) for v in self.inputs[i]["shape"])

    def resize(self, i: int, shape: tuple[int, ...]) -> None:
        """Give input `i` another shape (fully convolutional graphs) and reallocate."""
        if tuple(shape) != self.input_shape(i):
            self.interp.resize_tensor_input(self.inputs[i]["index"], list(shape))
            self.interp.allocate_tensors()
            self.inputs = self.interp.get_input_details()
            self.outputs = self.interp.get_output_details()

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        for detail, a in zip(self.inputs, arrays):
            self.interp.set_tensor(detail["index"], np.ascontiguousarray(a, dtype=np.float32))
        self.interp.invoke()
        return [self.interp.get_tensor(o["index"]) for o in self.outputs]


class _quiet_stderr:
    """File descriptor 2 sent to /dev/null for a moment (C++ logging that Python cannot filter)."""

    def __enter__(self) -> None:
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc_info) -> None:
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)


def wheel_file(module: str, name: str) -> Path:
    """A .tflite file of the installed mediapipe==0.10.14 wheel, found without importing mediapipe."""
    from ..runtime.litert_backend import mediapipe_file

    return mediapipe_file(module, name)


def ssd_anchors(side: int, strides: tuple[int, ...] = (8, 16, 16, 16), per_layer: int = 2) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] for a side x side input; layers of one stride share their grid, as in
    MediaPipe's calculator with fixed anchor sizes (BlazePalm 192: 2016 anchors, BlazeFace 128: 896)."""
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = side // strides[i]
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_layer * (j - i), axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """A box (x0, y0, x1, y1) and keypoints (K, 2) in frame pixels, with a score."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float


def letterbox(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, float, float]:
    """`rgb` fitted into side x side with its aspect kept, black bars centred: (image, scale, pad_x, pad_y); a
    frame pixel p maps to p * scale + pad."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    px, py = (side - nw) // 2, (side - nh) // 2
    out = np.zeros((side, side, 3), np.uint8)
    out[py:py + nh, px:px + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, scale, px, py


def decode(raw: np.ndarray, scores: np.ndarray, anchors: np.ndarray, side: int, keypoints: int,
           threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSD outputs -> (boxes (N, 4) x0 y0 x1 y1, keypoints (N, K, 2), scores (N,)) in input pixels."""
    s = 1 / (1 + np.exp(-np.clip(scores.reshape(-1).astype(np.float64), -50, 50)))
    keep = s >= threshold
    raw, a, s = raw.reshape(len(anchors), -1)[keep], anchors[keep] * side, s[keep]
    cx, cy, w, h = raw[:, 0] + a[:, 0], raw[:, 1] + a[:, 1], raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    kps = raw[:, 4:4 + 2 * keypoints].reshape(-1, keypoints, 2) + a[:, None, :]
    return boxes, kps, s


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.3) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = np.array(order, int)
        if not len(rest):
            break
        b, r = boxes[i], boxes[rest]
        iw = np.clip(np.minimum(b[2], r[:, 2]) - np.maximum(b[0], r[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[3], r[:, 3]) - np.maximum(b[1], r[:, 1]), 0, None)
        inter = iw * ih
        union = (b[2] - b[0]) * (b[3] - b[1]) + (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1]) - inter
        order = [int(j) for j, o in zip(rest, inter / np.maximum(union, 1e-9)) if o < iou]
    return keep


class SsdDetector:
    """BlazePalm / BlazeFace: a frame -> detections in frame pixels (best first)."""

    def __init__(self, path: Path, *, keypoints: int, unit_range: bool, threshold: float, threads: int = 1,
                 max_found: int = 4, strides: tuple[int, ...] = (8, 16, 16, 16), per_layer: int = 2) -> None:
        self.model = TfLite(path, threads)
        self.side = self.model.input_shape()[1]
        self.anchors = ssd_anchors(self.side, strides, per_layer)
        self.keypoints, self.unit_range, self.threshold, self.max_found = keypoints, unit_range, threshold, max_found

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        img, scale, px, py = letterbox(rgb, self.side)
        x = img.astype(np.float32) / 255.0
        if not self.unit_range:
            x = x * 2 - 1
        outs = self.model.run(x[None])
        raw, scores = (outs[0], outs[1]) if outs[0].shape[-1] > 1 else (outs[1], outs[0])
        boxes, kps, s = decode(raw, scores, self.anchors, self.side, self.keypoints, self.threshold)
        found = []
        for i in nms(boxes, s)[:self.max_found]:
            b = (boxes[i] - [px, py, px, py]) / scale
            found.append(Detection(tuple(float(v) for v in b), (kps[i] - [px, py]) / scale, float(s[i])))
        return found
