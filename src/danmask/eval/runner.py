"""Score one model on a dataset through the production pipeline (Segmenter with its temporal stage).

Every model, ours or a peer, sees the sequences' frames in order through the same `Segmenter` (default
TemporalConfig unless told otherwise), reset between sequences. Predicted soft masks are upsampled bilinearly
to the annotation's resolution and thresholded at 0.5, then scored per frame; a sequence's score is the mean of
its frames, and an overall score is the mean over sequences (not frames), so long clips do not dominate.

Which frames count where:
- person frames (a person sequence, non-empty truth): IoU and boundary F;
- no-person frames (a no-person sequence, or an empty truth in a person sequence): false-positive fraction;
- temporal error and flicker: consecutive segmented frames that both have a truth, in person sequences.
"""
from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import metrics
from .datasets import Sequence
from .latency import interleaved_latency_ms
from .models import load_eval_model
from .recurrent_peer import DEFAULT_INPUT_SIZE

SNAPSHOT_HEIGHT = 160  # pixels; worst-frame thumbnails for the report


@dataclass
class SequenceScore:
    """Means over one sequence's frames; None where the sequence has no frame of that kind."""

    name: str
    has_person: bool
    frames: int  # segmented
    scored: int  # with a ground truth
    iou: float | None = None
    boundary_f: float | None = None
    temporal_error: float | None = None
    flicker: float | None = None
    fp_frac: float | None = None


@dataclass
class Snapshot:
    """A downscaled frame with its truth and prediction, kept only for the worst frames of a run."""

    sequence: str
    frame_id: str
    score_name: str  # "IoU" or "FP"
    score: float
    rgb: np.ndarray
    gt: np.ndarray
    pred: np.ndarray


class WorstFrames:
    """Keeps the k frames with the highest badness, at most `per_sequence` from any one sequence (so the report
    shows different failures, not ten neighbours), building snapshots only for frames that make the cut."""

    def __init__(self, k: int, per_sequence: int = 2) -> None:
        self.k, self.per_sequence = k, per_sequence
        self._heaps: dict[str, list[tuple[float, int, Snapshot]]] = {}
        self._counter = itertools.count()

    def wants(self, sequence: str, badness: float) -> bool:
        heap = self._heaps.get(sequence, [])
        return self.k > 0 and (len(heap) < self.per_sequence or badness > heap[0][0])

    def add(self, badness: float, snapshot: Snapshot) -> None:
        heap = self._heaps.setdefault(snapshot.sequence, [])
        item = (badness, next(self._counter), snapshot)
        if len(heap) < self.per_sequence:
            heapq.heappush(heap, item)
        else:
            heapq.heapreplace(heap, item)

    def worst_first(self) -> list[Snapshot]:
        items = sorted((x for heap in self._heaps.values() for x in heap), key=lambda x: (-x[0], x[1]))
        return [s for _, _, s in items[:self.k]]


@dataclass
class ModelResult:
    """Everything measured for one model; `summary()` is the JSON line of `danmask eval --json`."""

    model: str
    input_size: tuple[int, int]
    sequences: list[SequenceScore]
    frames: int
    step_seconds: float  # total time inside Segmenter.step
    median_ms: float | None = None  # model.predict, 1 thread
    median_ms_2t: float | None = None
    worst_person: list[Snapshot] = field(default_factory=list)
    worst_no_person: list[Snapshot] = field(default_factory=list)

    def summary(self) -> dict:
        seqs = self.sequences
        person = [s for s in seqs if s.iou is not None]
        return {
            "model": self.model,
            "mean_iou": _mean(s.iou for s in seqs),
            "per_sequence": {s.name: s.iou for s in person},
            "boundary_f": _mean(s.boundary_f for s in seqs),
            "temporal_error": _mean(s.temporal_error for s in seqs),
            "flicker": _mean(s.flicker for s in seqs),
            "fp_frac": _mean(s.fp_frac for s in seqs),
            "median_ms": self.median_ms,
            "median_ms_2t": self.median_ms_2t,
            "fps_pipeline": self.frames / self.step_seconds if self.step_seconds > 0 else None,
            "frames": self.frames,
            "scored_frames": sum(s.scored for s in seqs),
            "person_sequences": len(person),
            "no_person_sequences": sum(1 for s in seqs if s.fp_frac is not None and not s.has_person),
            "per_sequence_boundary_f": {s.name: s.boundary_f for s in person},
            "per_sequence_temporal_error": {s.name: s.temporal_error for s in seqs if s.temporal_error is not None},
            "per_sequence_fp_frac": {s.name: s.fp_frac for s in seqs if s.fp_frac is not None},
            "input_size": list(self.input_size),
        }


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _snapshot(seq: str, frame_id: str, name: str, score: float, rgb: np.ndarray, gt: np.ndarray,
              pred: np.ndarray) -> Snapshot:
    h, w = gt.shape
    size = (max(1, round(w * SNAPSHOT_HEIGHT / h)), SNAPSHOT_HEIGHT)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    def shrink(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)

    return Snapshot(seq, frame_id, name, score, small, shrink(gt), shrink(pred))


def score_sequence(seq: Sequence, segmenter, worst_person: WorstFrames, worst_empty: WorstFrames,
                   clock: list[float]) -> SequenceScore:
    """Segment a sequence frame by frame and score it; adds the time spent in `step` to clock[0]."""
    ious, fs, fps_, temporal, flick = [], [], [], [], []
    prev: tuple[np.ndarray, np.ndarray] | None = None
    frames = scored = 0
    for frame in seq.frames():
        start = time.perf_counter()
        soft = segmenter.step(frame.rgb, frame.time)
        clock[0] += time.perf_counter() - start
        frames += 1
        if frame.gt is None:
            prev = None
            continue
        scored += 1
        h, w = frame.gt.shape
        pred = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        gt = frame.gt
        if gt.any():
            j = metrics.iou(pred, gt)
            ious.append(j)
            fs.append(metrics.boundary_f(pred, gt))
            if worst_person.wants(seq.name, 1 - j):
                worst_person.add(1 - j, _snapshot(seq.name, frame.frame_id, "IoU", j, frame.rgb, gt, pred))
        else:
            fp = metrics.fp_fraction(pred)
            fps_.append(fp)
            if worst_empty.wants(seq.name, fp):
                worst_empty.add(fp, _snapshot(seq.name, frame.frame_id, "FP", fp, frame.rgb, gt, pred))
        if seq.has_person and prev is not None and prev[0].shape == pred.shape:
            temporal.append(metrics.temporal_error(prev[0], pred, prev[1], gt))
            flick.append(metrics.flicker(prev[0], pred))
        prev = (pred, gt)
    return SequenceScore(seq.name, seq.has_person, frames, scored, _mean(ious), _mean(fs), _mean(temporal),
                         _mean(flick), _mean(fps_))


def first_person_frame(sequences: list[Sequence]) -> np.ndarray:
    """The fixed frame latency is measured on: the first frame of the first person sequence (else of any)."""
    for seq in sorted(sequences, key=lambda s: not s.has_person):
        for frame in seq.frames():
            return frame.rgb
    raise ValueError("dataset has no frames")


def evaluate_model(
    sequences: list[Sequence],
    model_ref: str,
    *,
    threads: int = 1,
    device: str = "auto",
    config=None,
    recurrent_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    worst: int = 8,
    progress: bool = False,
) -> ModelResult:
    """Run `model_ref` (registry name or .onnx path) over every sequence and score it (latency: see
    `measure_latencies`, which times all models of a run together)."""
    from tqdm import tqdm

    from ..segmenter import Segmenter

    model = load_eval_model(model_ref, threads=threads, device=device, recurrent_size=recurrent_size)
    segmenter = Segmenter(model, config)
    worst_person, worst_empty = WorstFrames(worst), WorstFrames(max(1, worst // 2) if worst else 0)
    clock = [0.0]
    scores = []
    total = sum(s.length for s in sequences)
    with tqdm(total=total, desc=model_ref, unit="frame", disable=not progress, leave=False) as bar:
        for seq in sequences:
            segmenter.reset()
            reset = getattr(model, "reset", None)
            if reset is not None:
                reset()
            scores.append(score_sequence(seq, segmenter, worst_person, worst_empty, clock))
            bar.update(seq.length)
    return ModelResult(model_ref, tuple(model.spec.input_size), scores, sum(s.frames for s in scores), clock[0],
                       worst_person=worst_person.worst_first(), worst_no_person=worst_empty.worst_first())


def measure_latencies(results: list[ModelResult], sequences: list[Sequence], *, device: str = "auto",
                      recurrent_size: tuple[int, int] = DEFAULT_INPUT_SIZE, runs: int = 200,
                      warmup: int = 20) -> None:
    """Fill median_ms (1 thread) and median_ms_2t of every result: `predict` on one fixed frame, all models of
    the run alternating (see interleaved_latency_ms) so their figures are comparable."""
    frame = first_person_frame(sequences)
    for threads, attr in ((1, "median_ms"), (2, "median_ms_2t")):
        models = {str(i): load_eval_model(r.model, threads=threads, device=device, recurrent_size=recurrent_size)
                  for i, r in enumerate(results)}
        for key, ms in interleaved_latency_ms(models, frame, runs, warmup).items():
            setattr(results[int(key)], attr, ms)
