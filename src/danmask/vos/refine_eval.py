"""What `danmask segment --refine` gains, pass by pass, on labelled video (the issue's "gain of each iteration").

    python -m danmask.vos.refine_eval [DATASET] [--passes 2] [--model person-track]

Every sequence of DATASET (default: the shared DAVIS person and no-person sequences) is segmented by the per-frame
path at the track's mask size, as `danmask segment` stores it; then each refinement pass (`vos.refine`) runs on
those masks. Masks are scored at the annotation's size: mean IoU per person sequence, the share of pixels wrongly
protected on sequences without people, and how many frames each pass averaged or filled.
"""
from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..commands._argtypes import int_between, positive_float
from ..eval.bench import shared_data_dir
from ..eval.datasets import load_dataset
from ..eval.metrics import iou
from ..pipeline import default_mask_size, to_uint8
from ..runtime import load_model
from ..segmenter import Segmenter
from ..video import VideoFrame
from .refine import EVERY_S, Fuse, PassReport, choose_keyframes, refine_pass



def _score(masks: list[np.ndarray], truths: list[np.ndarray | None]) -> float:
    """Mean IoU over annotated frames (person sequences), or the mean share of pixels marked (empty truth)."""
    values = []
    for mask, truth in zip(masks, truths):
        if truth is None:
            continue
        pred = cv2.resize(mask, truth.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 128
        if truth.any():
            values.append(iou(pred, truth))
        else:
            values.append(np.count_nonzero(pred) / pred.size)
    return float(np.mean(values)) if values else float("nan")


def evaluate(dataset: str | Path, model: str = "person-track", passes: int = 2, fuse: Fuse = "fill",
             every_s: float = EVERY_S, threads: int = 1) -> list[dict]:
    """One row per sequence: its score after the per-frame path (pass 0) and after each pass, and the passes'
    reports."""
    seg_model = load_model(model, threads=threads)
    rows = []
    for seq in load_dataset(dataset):
        started = time.perf_counter()
        frames = list(seq.frames())
        shape = frames[0].rgb.shape[:2]
        segmenter = Segmenter(seg_model, None, default_mask_size(shape))
        masks = [to_uint8(segmenter.step(f.rgb, f.time)) for f in frames]
        truths = [f.gt for f in frames]
        fps = (len(frames) - 1) / (frames[-1].time - frames[0].time) if frames[-1].time > frames[0].time else 24.0
        every = max(1, round(every_s * fps))
        base = Fraction(1, 1000)
        video = [VideoFrame(f.rgb, round(f.time * 1000), base, f.time, i) for i, f in enumerate(frames)]
        scores, reports = [_score(masks, truths)], []
        for _ in range(passes):
            keys = choose_keyframes(masks, every)
            report = PassReport(keys=len(keys))
            refined = []
            for before, after, how in refine_pass(iter(video), iter(masks), keys, max_gap=2 * every, fuse=fuse,
                                                         threads=threads):
                report.count(before, after, how)
                refined.append(after)
            masks = refined
            scores.append(_score(masks, truths))
            reports.append(report)
        rows.append({"sequence": seq.name, "person": seq.has_person, "frames": len(frames), "scores": scores,
                     "reports": reports, "seconds": time.perf_counter() - started})
        print(f"{seq.name}: " + " -> ".join(f"{s:.3f}" for s in scores), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], passes: int) -> str:
    """Markdown: per sequence and on average, pass 0 (the per-frame path) and each pass, with its gain."""
    head = ["sequence", "frames", "per-frame path"] + [f"pass {k}" for k in range(1, passes + 1)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for person in (True, False):
        group = [r for r in rows if r["person"] == person]
        for r in group:
            cells = [f"{s:.3f}" if person else f"{100 * s:.2f} %" for s in r["scores"]]
            notes = [f"{c} ({rep.keys} keys, {rep.filled} filled, {rep.averaged} averaged)"
                     for c, rep in zip(cells[1:], r["reports"])]
            lines.append(f"| {r['sequence']} | {r['frames']} | {cells[0]} | " + " | ".join(notes) + " |")
        if group:
            means = np.mean([r["scores"] for r in group], axis=0)
            label = "**mean IoU, person sequences**" if person else "**wrongly protected, no-person sequences**"
            cells = [f"{m:.3f}" if person else f"{100 * m:.2f} %" for m in means]
            gains = [f"{c} ({'+' if d >= 0 else ''}{d:.3f})" if person else c
                     for c, d in zip(cells[1:], np.diff(means))]
            lines.append(f"| {label} | | {cells[0]} | " + " | ".join(gains) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m danmask.vos.refine_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", help="DAVIS-style folder (default: davis-people in $DANMASK_DATA or "
                        "../shared/data)")
    parser.add_argument("--model", default="person-track", help="the per-frame path (default: %(default)s)")
    parser.add_argument("--passes", type=int_between(1, 10), default=2, help="refinement passes (default: %(default)s)")
    parser.add_argument("--fuse", choices=("fill", "mean"), default="fill",
                        help="fill lost frames only, or also average every frame (default: %(default)s)")
    parser.add_argument("--every", type=positive_float, default=EVERY_S,
                        help="seconds per key frame (default: %(default)s)")
    args = parser.parse_args(argv)
    from ..errors import DanmaskError

    data = shared_data_dir()
    dataset = args.dataset or (data / "davis-people" if data else None)
    if dataset is None:
        print("refine_eval: no dataset given and no shared data found ($DANMASK_DATA or ../shared/data)",
              file=sys.stderr)
        return 2
    try:
        rows = evaluate(dataset, args.model, args.passes, args.fuse, args.every)
    except DanmaskError as exc:
        print(f"refine_eval: {exc}", file=sys.stderr)
        return 2
    print(table(rows, args.passes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
