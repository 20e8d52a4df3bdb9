"""Fake models for the core tests: they know the true masks of a synthetic video (danmask.synthetic)."""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from danmask.runtime import ModelSpec
from danmask.video import iter_frames

_KEY = (32, 18)  # frames are recognised by their tiny thumbnail


def _key(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, _KEY, interpolation=cv2.INTER_AREA).astype(np.float32)


class TruthOracle:
    """Perfect model for one synthetic video, optionally with noise on the soft edge; records its inputs.

    It recognises which frame it is given (nearest thumbnail) and returns that frame's true mask, so it
    works with any order of calls, including skipped frames.
    """

    def __init__(self, video, size=(90, 160), noise: float = 0.0, takes_prior: bool = False, seed: int = 0):
        self.spec = ModelSpec(name="truth-oracle", input_size=size, takes_prior=takes_prior)
        self.keys = np.stack([_key(f.rgb) for f in iter_frames(video.path)])
        self.truth = video.masks
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.calls: list[int] = []  # frame numbers it ran on
        self.priors: list[np.ndarray | None] = []

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        index = int(np.argmin(np.abs(self.keys - _key(rgb)).reshape(len(self.keys), -1).sum(1)))
        self.calls.append(index)
        self.priors.append(prior)
        h, w = self.spec.input_size
        soft = cv2.resize(self.truth[index].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        if self.noise:
            edge = cv2.dilate(((soft > 0.02) & (soft < 0.98)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            soft = soft + edge * self.rng.normal(0, self.noise, soft.shape).astype(np.float32)
        return np.clip(soft, 0, 1).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


class TrackedPerson(NamedTuple):
    """What a person-tracking model lists per frame (the fields of danmask.people.model.PersonMask)."""

    id: int
    salient: bool
    mask: np.ndarray


class PeopleOracle(TruthOracle):
    """Fake person-tracking model: the video's true person is salient person 1, and a still bystander (a box at
    the left edge) is person 2, never salient. Like PersonTrackModel, `track` returns the salient union at the
    size asked for and leaves everyone in `people`."""

    tracks_people = True
    frame_input = True

    def __init__(self, video, **kwargs) -> None:
        super().__init__(video, **kwargs)
        self.people: list[TrackedPerson] = []

    def reset(self) -> None:
        self.people = []

    def track(self, rgb: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        person = cv2.resize(self.predict(rgb), (w, h), interpolation=cv2.INTER_LINEAR)
        bystander = np.zeros((h, w), np.float32)
        bystander[h // 4: h // 2, : w // 8] = 1.0
        self.people = [TrackedPerson(1, True, person), TrackedPerson(2, False, bystander)]
        return person
