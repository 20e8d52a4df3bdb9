"""Score the rock-paper-scissors classifier on real hands labelled by eye (`rps_real_hands.json`).

    python -m danmask.fx.rps_eval [--data ../shared/data] [--json]

Each labelled hand is found again in its picture by `danmask fx rps`'s own hand tracker (the lite models, as at run
time; the nearest hand to the labelled centre, within half a hand), classified, and compared with the label.
These hands' palms and bone lengths were among the training set's bases (`rps_train`), but not their finger
poses, which the training set rebuilds by rule; so this tests the rules against real finger poses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .rps_model import CLASSES, RpsClassifier

LABELS = Path(__file__).resolve().parent / "rps_real_hands.json"


def evaluate(data: Path, labels: Path = LABELS) -> dict:
    from .hands import HandTracker

    tracker, clf = HandTracker(max_hands=4), RpsClassifier()
    hands = json.loads(labels.read_text())["hands"]
    confusion = np.zeros((len(CLASSES), len(CLASSES)), int)
    missed = 0
    for h in hands:
        bgr = cv2.imread(str(data / h["image"]))
        if bgr is None:
            raise FileNotFoundError(data / h["image"])
        tracker.reset()
        found = tracker.step(np.ascontiguousarray(bgr[..., ::-1]), 0.0)
        centre = np.array(h["centre"])
        near = [(float(np.linalg.norm(f.landmarks[:, :2].mean(0) - centre)), f) for f in found]
        near = [(d, f) for d, f in near if d < 0.5 * max(f.box()[2] - f.box()[0], f.box()[3] - f.box()[1])]
        if not near:
            missed += 1
            continue
        label, _ = clf(min(near, key=lambda n: n[0])[1].landmarks)
        confusion[CLASSES.index(h["label"]), CLASSES.index(label)] += 1
    seen = int(confusion.sum())
    per_class = {c: {"hands": int(confusion[i].sum()), "right": int(confusion[i, i])}
                 for i, c in enumerate(CLASSES) if confusion[i].sum()}
    return {"labelled": len(hands), "found_again": seen, "missed": missed,
            "accuracy": round(float(np.trace(confusion) / seen), 3) if seen else None, "per_class": per_class,
            "confusion (rows true, columns predicted)": confusion.tolist(), "classes": CLASSES}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m danmask.fx.rps_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3].parent / "shared" / "data")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = evaluate(args.data)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
