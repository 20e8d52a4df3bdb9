"""Find people in a frame: YOLOX-Nano (Apache-2.0, COCO) run by ONNX Runtime, person class only.

The shipped graph (`danmask train convert detector`) takes RGB in [0, 1] and decodes its own boxes, so all that
is left here is the letterbox and non-maximum suppression. The detector only starts tracks (a new person, a
lost track, a scene cut, every few frames for newcomers); the pose model follows people between detections.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError

INPUT_SIDE = 416
STRIDES = (8, 16, 32)
PAD_VALUE = 114 / 255  # YOLOX's letterbox grey


@dataclass(frozen=True)
class Detection:
    """A person box in frame pixels (x0, y0, x1, y1) with its confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


class PersonDetector:
    """Letterboxed RGB in, person boxes out, most confident first (NMS applied)."""

    def __init__(self, path: str | Path, threads: int = 1, device: str = "cpu", score_threshold: float = 0.35,
                 nms_iou: float = 0.45) -> None:
        from ..runtime.onnx_backend import session

        self.session = session(str(path), threads, device)
        if {o.name for o in self.session.get_outputs()} != {"boxes", "scores"}:
            raise ModelError(f"{path}: not a danmask person detector (needs outputs 'boxes' and 'scores')")
        self.score_threshold, self.nms_iou = score_threshold, nms_iou

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        scale = min(INPUT_SIDE / h, INPUT_SIDE / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        canvas = np.full((INPUT_SIDE, INPUT_SIDE, 3), PAD_VALUE, np.float32)
        canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) * np.float32(1 / 255)
        boxes, scores = self.session.run(["boxes", "scores"], {"src": canvas.transpose(2, 0, 1)[None]})
        keep = scores[0] >= self.score_threshold
        if not keep.any():
            return []
        boxes, scores = boxes[0][keep] / scale, scores[0][keep]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
        order = cv2.dnn.NMSBoxes(xywh, scores.tolist(), self.score_threshold, self.nms_iou)
        return [Detection(*map(float, boxes[i]), float(scores[i])) for i in np.asarray(order).ravel()]
