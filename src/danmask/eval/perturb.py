"""Is a score a property of the model, or a lucky draw? Re-score on copies of the dataset that no viewer could tell
apart from it.

A tracker's score on a hard clip can hinge on one frame: whether the person is re-found the moment they are lost
decides everything after it. Then a change nobody can see (every other frame, one grey level, a JPEG round trip)
moves the score far more than the change being measured. `danmask eval --stability` scores each model again on
these copies and reports, per sequence, the lowest and highest IoU: a difference between two models smaller than
that range says nothing.

Time stays the source's: at half frame rate each kept frame keeps its own display time, as a player dropping
frames would show it.

`danmask eval --camera` asks a different question with the same machinery: how a model copes with camera moves
that no rule was written for and that a viewer does see (`CAMERA_MOVES`: the camera rolls, zooms in and out, or
shows a third of the frames). The truth is moved with the image.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .datasets import EvalFrame, Sequence


@dataclass(frozen=True)
class Perturbation:
    """A change to a sequence a viewer would not notice."""

    name: str
    description: str
    keep: Callable[[int, int], bool]  # (frame index, sequence length) -> whether the frame is shown
    image: Callable[[np.ndarray], np.ndarray] | None = None  # RGB in, RGB out
    camera: Callable[[float, tuple[int, int]], np.ndarray] | None = None  # (time s, (h, w)) -> 2x3 affine, truth too


def _brighter(rgb: np.ndarray) -> np.ndarray:
    return cv2.add(rgb, np.full(rgb.shape, 6, np.uint8))


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a {rgb.shape} frame")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _always(i: int, n: int) -> bool:
    return True


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("even-frames", "every other frame, from the first (half the frame rate)",
                 lambda i, n: i % 2 == 0),
    Perturbation("odd-frames", "every other frame, from the second (a one-frame image keeps its frame)",
                 lambda i, n: i % 2 == 1 or n == 1),
    Perturbation("brighter", "every pixel 6 grey levels brighter (of 255)", _always, _brighter),
    Perturbation("jpeg70", "every frame through JPEG at quality 70", _always, _jpeg),
)}


ROLL_DEG_PER_S = 45.0  # a hand-held camera turned fast; bodies then turn in the frame as well
ZOOM_PERIOD_S = 2.0  # in to 2x and back out


def _rolling(t: float, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return cv2.getRotationMatrix2D((w / 2, h / 2), ROLL_DEG_PER_S * t, 1.0)


def _zooming(t: float, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.0 + math.sin(math.pi * t / ZOOM_PERIOD_S) ** 2)


CAMERA_MOVES: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("rolling", f"the camera rolls {ROLL_DEG_PER_S:g} degrees a second about the frame's centre "
                            "(corners grey)", _always, camera=_rolling),
    Perturbation("zooming", f"the camera zooms in to 2x and back out every {ZOOM_PERIOD_S:g} s, about the frame's "
                            "centre (people leave the frame's edges)", _always, camera=_zooming),
    Perturbation("every-3rd", "every third frame (people move three times as far from one frame to the next)",
                 lambda i, n: i % 3 == 0),
)}


def _move(frame: EvalFrame, camera: Callable[[float, tuple[int, int]], np.ndarray]) -> None:
    """The camera's move at the frame's time, applied to its image and, at the truth's own size, its truth."""
    h, w = frame.rgb.shape[:2]
    frame.rgb = cv2.warpAffine(frame.rgb, camera(frame.time, (h, w)), (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=(114, 114, 114))
    if frame.gt is not None:
        gh, gw = frame.gt.shape
        frame.gt = cv2.warpAffine(frame.gt.astype(np.uint8), camera(frame.time, (gh, gw)), (gw, gh),
                                  flags=cv2.INTER_NEAREST) > 0


def perturbed(seq: Sequence, perturbation: Perturbation) -> Sequence:
    """`seq` as the perturbation shows it: same name and truth, some frames left out or every image changed."""
    kept = sum(perturbation.keep(i, seq.length) for i in range(seq.length))

    def load() -> Iterator[EvalFrame]:
        for i, frame in enumerate(seq.load()):
            if not perturbation.keep(i, seq.length):
                continue
            if perturbation.image is not None:
                frame.rgb = perturbation.image(frame.rgb)
            if perturbation.camera is not None:
                _move(frame, perturbation.camera)
            yield frame

    return Sequence(seq.name, seq.has_person, kept, load)


def rescore(sequences: list[Sequence], model_ref: str, names: list[str] | None = None,
            perturbations: dict[str, Perturbation] = PERTURBATIONS, **evaluate) -> dict:
    """Score `model_ref` on every perturbed copy of `sequences` (`evaluate`: evaluate_model's keywords): the
    imperceptible PERTURBATIONS by default (--stability), or CAMERA_MOVES (--camera);
    {"perturbations": names, "mean_iou": {name: IoU}, "per_sequence": {sequence: {name: IoU}}}."""
    from .runner import evaluate_model

    names = list(names or perturbations)
    means: dict[str, float | None] = {}
    per_sequence: dict[str, dict[str, float]] = {}
    for name in names:
        copies = [perturbed(s, perturbations[name]) for s in sequences]
        result = evaluate_model(copies, model_ref, worst=0, **evaluate).summary()
        means[name] = result["mean_iou"]
        for seq, iou in result["per_sequence"].items():
            per_sequence.setdefault(seq, {})[name] = iou
    return {"perturbations": names, "mean_iou": means, "per_sequence": per_sequence}


def spread(measured: float | None, by_perturbation: dict[str, float | None]) -> tuple[float, float, float] | None:
    """(lowest, highest, mean) of the measured score and its perturbed copies' (None when nothing was scored):
    on a chaotic clip one run says little, and two versions are compared on the mean of all of them."""
    values = [v for v in [measured, *by_perturbation.values()] if v is not None]
    return (min(values), max(values), sum(values) / len(values)) if values else None
