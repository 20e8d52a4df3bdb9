"""The person-track model: `PersonTracker` + paste-back, behind the same registry and Segmenter as every model.

Unlike a whole-frame model it needs the frame's time (the detection schedule and salience are in seconds) and
returns masks at the size the caller asks for, pasted straight from each person's crop. Besides the union of
the salient people it keeps every tracked person's own mask, with their id, for the mask track.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.base import ModelSpec
from .detector import PersonDetector
from .landmarks import PoseLandmarker
from .roi import paste
from .tracker import PersonTracker, TrackerConfig


@dataclass
class PersonMask:
    """One tracked person's soft mask at the output size."""

    id: int
    salient: bool
    mask: np.ndarray  # float32 (h, w) in [0, 1]


class PersonTrackModel:
    """Detector + pose landmarker + tracker; `track(rgb, t, size)` -> union of the protected people."""

    tracks_people = True
    frame_input = True  # whole frames in, masks pasted at the asked size (Segmenter)

    def __init__(self, spec: ModelSpec, threads: int = 1, device: str = "cpu",
                 config: TrackerConfig | None = None) -> None:
        self.spec = spec
        parts = spec.extra["parts"]
        self.tracker = PersonTracker(PersonDetector(parts["detector"], threads, device),
                                     PoseLandmarker(parts["landmarker"], threads, device,
                                                    flip=bool(spec.extra.get("flip", False))), config,
                                     prober=PoseLandmarker(parts["keypoints"], threads, device))
        self.people: list[PersonMask] = []

    def reset(self) -> None:
        self.tracker.reset()
        self.people = []

    def track(self, rgb: np.ndarray, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
        """Union of the salient people (float32 (h, w), default the frame's size); `self.people` gets everyone."""
        size = tuple(size or rgb.shape[:2])
        union = np.zeros(size, np.float32)
        self.people = []
        for person in self.tracker.step(rgb, t):
            mask = paste(person.result.mask, person.result.roi, rgb.shape[:2], size)
            self.people.append(PersonMask(person.id, person.salient, mask))
            if person.salient:
                np.maximum(union, mask, out=union)
        return union

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """A still image: a fresh tracker, one step (the SegModel contract for latency and single frames)."""
        self.reset()
        return self.track(rgb, 0.0)
