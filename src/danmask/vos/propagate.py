"""Semi-supervised propagation at run time (onnxruntime + numpy, no torch): given the masks of some objects on
one frame, segment them in the frames that follow.

Memory is bounded, never growing with the video: the reference frames (given masks; kept), every `every`-th
propagated frame (the oldest dropped beyond `slots`), and the previous frame. Keys are computed once per frame and
shared by all objects; values are per object. Objects are decoded in chunks (the affinity of one object is
memory x frame positions) and combined by STM's soft aggregation, so that two objects never claim one pixel.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from .prior import spatial_prior

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "runtime" / "weights" / "vos"
WEIGHTS_ENV = "DANMASK_VOS_WEIGHTS"  # a folder with another exported network (vos.json + graphs), e.g. to evaluate it
CHUNK = 6  # objects decoded at once


@dataclass
class Slot:
    """One memory frame: its key (K, hw) and, per object id, value (V, hw) and mask (hw) at 1/8."""

    key: np.ndarray
    values: dict[int, np.ndarray]
    fg: dict[int, np.ndarray]
    kept: bool = False  # a reference frame: never dropped


@dataclass
class PropagatedFrame:
    masks: dict[int, np.ndarray]  # object id -> float32 (h, w) at the network's input size, after aggregation
    probabilities: dict[int, np.ndarray] = field(default_factory=dict)  # before aggregation


def soft_aggregate(probs: np.ndarray) -> np.ndarray:
    """(N, h, w) independent object probabilities -> (N, h, w) that, with the background, sum to one (STM)."""
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    bg = np.prod(1 - p, axis=0, keepdims=True)
    logits = np.log(np.concatenate([bg, p]) / (1 - np.concatenate([bg, p])))
    logits -= logits.max(axis=0, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=0, keepdims=True))[1:].astype(np.float32)


class MemoryPropagator:
    """Run the exported memory network (`danmask.vos.export`) from the folder `weights` (default: $DANMASK_VOS_WEIGHTS,
    else the shipped one)."""

    def __init__(self, weights: str | Path | None = None, threads: int = 1, slots: int = 4, every: int = 5) -> None:
        from ..runtime.onnx_backend import session

        folder = Path(weights or os.environ.get(WEIGHTS_ENV) or WEIGHTS_DIR)
        spec_path = folder / "vos.json"
        if not spec_path.is_file():
            raise ModelError(f"{folder}: no memory network here (vos.json missing)")
        self.spec = json.loads(spec_path.read_text())
        self.size = tuple(self.spec["input_size"])
        self.sigma = float(self.spec["sigma"])
        self.encoder, self.memorizer, self.decoder = (session(str(folder / g), threads, "cpu")
                                                      for g in self.spec["graphs"])
        self.slots, self.every = slots, every
        self.reset()

    def reset(self) -> None:
        self.memory: list[Slot] = []
        self.previous: Slot | None = None
        self.prev_small: dict[int, np.ndarray] = {}
        self.count = 0

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """A frame at the network's input size, float32 [0, 1] HWC."""
        h, w = self.size
        interp = cv2.INTER_AREA if rgb.shape[0] > h else cv2.INTER_LINEAR
        return cv2.resize(rgb, (w, h), interpolation=interp).astype(np.float32) / 255.0

    def fit(self, mask: np.ndarray) -> np.ndarray:
        """A mask (bool, uint8 0/255 or float) at the network's input size, float32 in [0, 1]."""
        m = mask.astype(np.float32)
        if m.max() > 1:
            m /= 255.0
        h, w = self.size
        return cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA if m.shape[0] > h else cv2.INTER_LINEAR)

    def _encode(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(self.prepare(rgb).transpose(2, 0, 1)[None])
        key, match, f4, f2 = self.encoder.run(None, {"src": x})
        return {"key": key, "match": match, "f4": f4, "f2": f2}

    def _slot(self, feats: dict[str, np.ndarray], masks: dict[int, np.ndarray], kept: bool = False) -> Slot:
        ids = list(masks)
        values, fg = {}, {}
        hw = feats["key"].shape[-2:]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            stack = np.stack([masks[i] for i in chunk])[:, None].astype(np.float32)
            match = np.repeat(feats["match"], len(chunk), axis=0)
            (value,) = self.memorizer.run(None, {"match": match, "mask": stack})
            for i, obj in enumerate(chunk):
                values[obj] = value[i].reshape(value.shape[1], -1)
                fg[obj] = cv2.resize(masks[obj], hw[::-1], interpolation=cv2.INTER_AREA).ravel()
        return Slot(feats["key"][0].reshape(feats["key"].shape[1], -1), values, fg, kept)

    def add_reference(self, rgb: np.ndarray, masks: dict[int, np.ndarray]) -> None:
        """Given masks on a frame (ids of new objects are added; known ids are corrected from here on)."""
        feats = self._encode(rgb)
        fitted = {obj: self.fit(m) for obj, m in masks.items()}
        self.memory.append(self._slot(feats, fitted, kept=True))
        hw = feats["key"].shape[-2:]
        for obj, m in fitted.items():
            self.prev_small[obj] = cv2.resize(m, hw[::-1], interpolation=cv2.INTER_AREA)
        self.previous = None

    @property
    def objects(self) -> list[int]:
        return sorted(self.prev_small)

    def step(self, rgb: np.ndarray) -> PropagatedFrame:
        """Segment every known object in the next frame."""
        if not self.memory:
            raise ModelError("no reference masks given yet (add_reference first)")
        feats = self._encode(rgb)
        slots = self.memory + ([self.previous] if self.previous is not None else [])
        key = feats["key"]
        hw = key.shape[-2:]
        objects = self.objects
        probs = []
        for start in range(0, len(objects), CHUNK):
            chunk = objects[start:start + CHUNK]
            n = len(chunk)
            mem_key = np.concatenate([s.key for s in slots], axis=1)[None].repeat(n, 0)
            mem_value = np.stack([np.concatenate([s.values.get(o, np.zeros_like(next(iter(s.values.values()))))
                                                  for s in slots], axis=1) for o in chunk])
            mem_fg = np.stack([np.concatenate([s.fg.get(o, np.zeros(s.key.shape[1], np.float32)) for s in slots])
                               for o in chunk])[:, None]
            prev = np.stack([self.prev_small[o] for o in chunk])[:, None].astype(np.float32)
            prior = np.stack([spatial_prior(p[0], self.sigma) for p in prev])[:, None]
            feeds = {name: np.repeat(feats[name], n, axis=0) for name in ("key", "match", "f4", "f2")}
            feeds.update(mem_key=mem_key.astype(np.float32), mem_value=mem_value.astype(np.float32),
                         mem_fg=mem_fg.astype(np.float32), prior=prior, prev=prev)
            (logits,) = self.decoder.run(None, feeds)
            h, w = self.size
            for row in logits[:, 0]:
                probs.append(1 / (1 + np.exp(-cv2.resize(row, (w, h), interpolation=cv2.INTER_LINEAR))))
        raw = np.stack(probs) if probs else np.zeros((0, *self.size), np.float32)
        masks = soft_aggregate(raw) if len(raw) else raw
        frame = PropagatedFrame(dict(zip(objects, masks)), dict(zip(objects, raw)))
        slot = self._slot(feats, frame.masks)
        self.count += 1
        if self.count % self.every == 0:
            self.memory.append(slot)
            dropped = [i for i, s in enumerate(self.memory) if not s.kept]
            if len(self.memory) > self.slots and dropped:
                del self.memory[dropped[0]]
        self.previous = slot
        self.prev_small = {o: cv2.resize(m, hw[::-1], interpolation=cv2.INTER_AREA) for o, m in frame.masks.items()}
        return frame

    def propagate(self, frames: Iterable[np.ndarray], first: dict[int, np.ndarray]) -> Iterator[PropagatedFrame]:
        """The given masks on the first frame (as they are), then each next frame propagated."""
        self.reset()
        it = iter(frames)
        rgb = next(it)
        self.add_reference(rgb, first)
        yield PropagatedFrame({o: self.fit(m) for o, m in first.items()})
        for rgb in it:
            yield self.step(rgb)
