"""The parse student (`danmask fx parse --model student`): danmask's own small UNet-style network, distilled from
BodyPix (+ a sleeve rule from a skin/clothes/hair segmenter), channel-pruned and int8, run by ONNX Runtime.

Same interface as `fx.bodypix.BodyPix`: `parts(rgb, size)` -> uint8 group map (0 background, 1..6 = GROUPS) and
`model_ms`. The frame is resized with its aspect kept to fit the input box (default 320x240, turned for portrait
frames), each side rounded to a multiple of 16; the graph takes RGB 0..255 (normalisation inside) and gives 7
logits at half the input size, resized bilinearly to the input size before the argmax. Training:
`src/danmask/train/parse_student.py`; card: docs/models/parse-student.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from .bodypix import fitted

WEIGHTS = Path(__file__).resolve().parent / "weights" / "parse-student-int8.onnx"
DEFAULT_BOX = (240, 320)  # (h, w)
MULTIPLE = 16


def fit16(frame: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """(h, w) input for a frame of (h, w) `frame`: aspect kept inside `box` (turned for portrait frames), each
    side rounded to the nearest multiple of 16 (at least 16). 640x360 in 320x240 -> 176x320."""
    h, w = fitted(frame, box)
    return max(MULTIPLE, int(round(h / MULTIPLE)) * MULTIPLE), max(MULTIPLE, int(round(w / MULTIPLE)) * MULTIPLE)


class ParseStudent:
    """`parts(rgb)` -> uint8 (h, w) group map (0 background, 1..6 = GROUPS), at the frame's own size."""

    def __init__(self, *, input_size: tuple[int, int] = DEFAULT_BOX, threads: int = 1, device: str = "cpu",
                 path: str | Path = WEIGHTS) -> None:
        from ..runtime.onnx_backend import session

        self.session = session(str(path), threads, device)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != ["src"] or outputs != ["logits"]:
            raise ModelError(f"{path}: not a parse-student graph (inputs {inputs}, outputs {outputs})")
        self.box = input_size
        self.input_size = fit16(input_size, input_size)  # of the last frame
        self.model_ms = 0.0  # the last call's session time

    def logits(self, rgb: np.ndarray) -> np.ndarray:
        """(h/2, w/2, 7) float logits of the frame resized to `fit16` (aspect kept)."""
        h, w = self.input_size = fit16(rgb.shape[:2], self.box)
        x = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32).transpose(2, 0, 1)[None]
        t0 = time.perf_counter()
        (out,) = self.session.run(["logits"], {"src": x})
        self.model_ms = (time.perf_counter() - t0) * 1000
        return out[0].transpose(1, 2, 0)

    def parts(self, rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Group map (uint8, 0 background, 1..6 = GROUPS) at (h, w) `size` (default the frame's): the logits
        resized bilinearly to the input size, the argmax there, the labels nearest-neighbour to `size` (as
        `BodyPix.parts`)."""
        fh, fw = size or rgb.shape[:2]
        logits = self.logits(rgb)
        ih, iw = self.input_size
        labels = cv2.resize(np.ascontiguousarray(logits), (iw, ih), interpolation=cv2.INTER_LINEAR).argmax(axis=2)
        return cv2.resize(labels.astype(np.uint8), (fw, fh), interpolation=cv2.INTER_NEAREST)
