"""Propagation methods scored by `danmask eval --vos`: given the objects' masks on the first frame, masks for every
frame. A method is anything with a `name` and `propagate(frames, first_masks)`; `make_method` builds one from a
name in `METHODS` or from `package.module:factory` (so a new method needs no change here).

Baselines (what a new method must beat):
- `first-mask`: the first frame's masks on every frame (how much the objects move);
- `flow-dis`: the previous frame's masks warped by OpenCV's DIS optical flow, computed backwards (from the new
  frame to the previous one) so every new pixel samples the previous masks; each pixel goes to the object whose
  warped mask is highest there, if that is >= 0.5, so objects never overlap;
- `person-track`: danmask's default person-track path (`Segmenter` with its temporal stage); in each frame each
  object takes the tracked person whose mask (>= 0.5) overlaps the object's previous mask best (first frame: the
  given mask), one object per person (greedy by IoU, so with many objects two never share a person). When no
  person overlaps, the object is empty in that frame, and the next frames are matched against its last
  non-empty mask, so it can be found again.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import ModelError

Frame = tuple[np.ndarray, float]  # (RGB uint8 (H, W, 3), display time in seconds)
Masks = dict[int, np.ndarray]  # object id -> bool (H, W) mask at the frame's size


@runtime_checkable
class Propagator(Protocol):
    """A semi-supervised video object segmentation method.

    `propagate` is called once per sequence with its frames in display order and the first frame's masks
    (object id -> bool (H, W), at the frames' size); it yields one dict per frame, the first frame included,
    with a bool (H, W) mask for every id of `first_masks` (empty when the object is not seen). It must not
    look at a frame before yielding the previous one's masks (frames are decoded lazily), and it resets its
    own state at the start of each call.
    """

    name: str

    def propagate(self, frames: Iterable[Frame], first_masks: Masks) -> Iterator[Masks]: ...


class FirstMask:
    """Baseline: the first frame's masks, unchanged, on every frame."""

    name = "first-mask"

    def propagate(self, frames: Iterable[Frame], first_masks: Masks) -> Iterator[Masks]:
        for _ in frames:
            yield {k: m.copy() for k, m in first_masks.items()}


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def exclusive(soft: dict[int, np.ndarray], threshold: float = 0.5) -> Masks:
    """Each pixel to the object with the highest soft value, if that is >= threshold (no overlaps)."""
    ids = list(soft)
    if not ids:
        return {}
    stack = np.stack([soft[k] for k in ids])
    best = stack.argmax(axis=0)
    keep = stack.max(axis=0) >= threshold
    return {k: keep & (best == i) for i, k in enumerate(ids)}


class FlowWarp:
    """Baseline: warp the previous masks into each new frame with DIS optical flow (see the module docstring)."""

    name = "flow-dis"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> None:
        self.preset = preset

    def propagate(self, frames: Iterable[Frame], first_masks: Masks) -> Iterator[Masks]:
        dis = cv2.DISOpticalFlow_create(self.preset)
        prev_grey, masks = None, {k: m.copy() for k, m in first_masks.items()}
        for rgb, _ in frames:
            grey = _grey(rgb)
            if prev_grey is not None:
                masks = warp(masks, dis.calc(grey, prev_grey, None))
            prev_grey = grey
            yield masks


def warp(masks: Masks, backward_flow: np.ndarray) -> Masks:
    """Masks of the previous frame sampled at (x, y) + flow(x, y) of the new frame (bilinear, then exclusive)."""
    h, w = backward_flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = gx + backward_flow[..., 0], gy + backward_flow[..., 1]
    soft = {k: cv2.remap(m.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0) for k, m in masks.items()}
    return exclusive(soft)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def pick_indices(people: list[np.ndarray], previous: Masks) -> dict[int, int | None]:
    """Object id -> the index of the person mask that overlaps its previous mask best, one object per person:
    pairs are taken greedily by IoU, highest first; None for an object left with no overlapping person."""
    out: dict[int, int | None] = dict.fromkeys(previous)
    ids = list(previous)
    if not people or not ids:
        return out
    scores = np.array([[_iou(p, previous[k]) for p in people] for k in ids])
    while scores.size and scores.max() > 0:
        row, col = np.unravel_index(int(scores.argmax()), scores.shape)
        out[ids[row]] = int(col)
        scores[row, :] = 0
        scores[:, col] = 0
    return out


def pick_people(people: list[np.ndarray], previous: Masks) -> Masks:
    """`pick_indices` as masks: each object's person mask, or an empty mask."""
    return {k: people[c].copy() if c is not None else np.zeros_like(previous[k])
            for k, c in pick_indices(people, previous).items()}


class PersonTrackPick:
    """Baseline: the person-track path with the best-overlapping tracked person per object (module docstring).

    `segmenter` is a ready `Segmenter` (tests pass one with a stand-in model); by default the registry model
    `model` is loaded on first use and kept for every sequence (reset at the start of each).
    """

    name = "person-track"

    def __init__(self, model: str = "person-track", threads: int = 1, device: str = "auto", segmenter=None) -> None:
        self.model, self.threads, self.device = model, threads, device
        self.segmenter = segmenter
        if model != "person-track":
            self.name = f"person-track:{model}"

    def _ready(self):
        if self.segmenter is None:
            from ..runtime import load_model
            from ..segmenter import Segmenter

            model = load_model(self.model, threads=self.threads, device=self.device)
            if not getattr(model, "tracks_people", False):
                raise ModelError(f"{self.model}: does not track people; the person-track baseline needs a model "
                                 "that does (e.g. person-track)")
            self.segmenter = Segmenter(model)
        self.segmenter.reset()
        return self.segmenter

    def propagate(self, frames: Iterable[Frame], first_masks: Masks) -> Iterator[Masks]:
        segmenter = self._ready()
        reference = {k: m.copy() for k, m in first_masks.items()}
        for i, (rgb, t) in enumerate(frames):
            segmenter.step(rgb, t)
            if i == 0:
                yield {k: m.copy() for k, m in first_masks.items()}
                continue
            people = [_at(p.mask, rgb.shape[:2]) >= 0.5 for p in segmenter.people]
            masks = pick_people(people, reference)
            reference.update({k: m for k, m in masks.items() if m.any()})
            yield masks


def _at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


METHODS: dict[str, Callable[..., Propagator]] = {
    "first-mask": lambda **_: FirstMask(),
    "flow-dis": lambda **_: FlowWarp(),
    "person-track": lambda threads=1, device="auto", **_: PersonTrackPick(threads=threads, device=device),
    "memory-net": lambda threads=1, **_: _memory_net(threads),
}
BASELINES = ("first-mask", "flow-dis", "person-track")


def _memory_net(threads: int) -> Propagator:
    """danmask's space-time memory network (danmask.vos), from the shipped weights or $DANMASK_VOS_WEIGHTS."""
    from ..vos.method import MemoryNetwork

    return MemoryNetwork(threads=threads)


def register(name: str, factory: Callable[..., Propagator]) -> None:
    """Make `name` a method of `--vos --model NAME`; `factory(threads=..., device=...)` returns a Propagator."""
    METHODS[name] = factory


def _accepted(factory: Callable, **kwargs) -> dict:
    """The keywords of `kwargs` that `factory` takes (all of them when it takes **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def make_method(ref: str, threads: int = 1, device: str = "auto") -> Propagator:
    """A method from a name in METHODS or from `package.module:factory` (a class or function, given the
    threads= and device= keywords it accepts). Raises ModelError naming the valid choices."""
    if ref in METHODS:
        method = METHODS[ref](threads=threads, device=device)
    elif ":" in ref:
        module_name, _, attr = ref.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"{ref}: cannot import the VOS method ({exc})") from exc
        method = factory(**_accepted(factory, threads=threads, device=device))
    else:
        raise ModelError(f"unknown VOS method {ref!r}; choose from {', '.join(METHODS)} or give package.module:factory")
    if not isinstance(method, Propagator):
        raise ModelError(f"{ref}: not a VOS method (needs .name and .propagate(frames, first_masks))")
    return method
