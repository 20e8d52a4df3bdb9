"""Body parts person by person: find people with person-track's detector (YOLOX-Nano), run BodyPix on each one's
box enlarged a little, and paste the parts back. BodyPix on the whole frame at 320x240 sees a person 60 pixels
tall as a few cells of its 1/16 grid and finds nothing; in their own crop the same person fills the input.

Cost: one detector pass per frame plus one BodyPix pass per person (each at most BodyPix's input box).
"""
from __future__ import annotations

import numpy as np

from .bodypix import BodyPix

MARGIN = 0.15  # each side of a detector box grows by this share of the box (hands and feet stick out)
MIN_SIDE = 24  # boxes smaller than this (pixels, either side) are skipped: nothing to parse


class PersonCrops:
    """`parts(rgb)` like `BodyPix.parts`, but person by person (the nearest wins where people overlap)."""

    def __init__(self, model: BodyPix, *, threads: int = 1, device: str = "cpu", max_people: int = 8) -> None:
        from ..people.detector import PersonDetector
        from ..runtime import resolve

        self.model, self.max_people = model, max_people
        self.detector = PersonDetector(resolve("person-track").extra["parts"]["detector"], threads, device)
        self.model_ms = 0.0  # detector + every BodyPix pass of the last frame
        self.people = 0  # people parsed in the last frame

    def parts(self, rgb: np.ndarray) -> np.ndarray:
        import time

        t0 = time.perf_counter()
        h, w = rgb.shape[:2]
        out = np.zeros((h, w), np.uint8)
        boxes = [d.box for d in self.detector(rgb)[:self.max_people]]
        model_ms = (time.perf_counter() - t0) * 1000
        self.people = 0
        # far (small) people first, so nearer ones are pasted over them where they overlap
        for x0, y0, x1, y1 in sorted(boxes, key=lambda b: (b[3] - b[1]) * (b[2] - b[0])):
            mx, my = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
            x0, y0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
            x1, y1 = int(min(w, x1 + mx + 1)), int(min(h, y1 + my + 1))
            if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
                continue
            groups = self.model.parts(rgb[y0:y1, x0:x1])
            model_ms += self.model.model_ms
            region = out[y0:y1, x0:x1]
            np.copyto(region, groups, where=groups > 0)
            self.people += 1
        self.model_ms = model_ms
        return out
