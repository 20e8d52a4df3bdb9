"""Build the rock-paper-scissors set and train `weights/rps-mlp.npz` (numpy only; no torch).

    python -m danmask.fx.rps_train [--data ../shared/data] [--out src/danmask/fx/weights/rps-mlp.npz] [--seed 0]

1. Real hands: MediaPipe Hands (full palm detector and landmark model) on the still images of coco-person and
   web-people-pseudo and on every 10th frame of the shared clips; hands with presence >= 0.8 keep their 21
   landmarks (x, y, z). Each hand is a *base*; bases are split by their source picture or clip, 80 % train /
   20 % test, so no test base shares a picture with a training one.
2. Synthetic hands from each base by finger-joint rules: the base's palm (wrist, thumb base and the four
   knuckles, in the palm's own frame) and its bone lengths are kept; each finger is rebuilt from its knuckle with
   flexion angles at its three joints: extended (0-20, 0-15, 0-10 degrees), curled (60-95, 80-110, 30-70), or
   relaxed (30-60 each); the thumb from extended (away from the palm) to folded (across it). Labels:
   rock = four fingers curled, thumb folded; paper = four extended; scissors = index and middle extended, ring and
   pinky curled; none = any other extended set, a thumbs-up fist, or relaxed fingers. Then the hand is turned in
   3D (palm towards or away from the camera, tilted up to 70 / 50 degrees), mirrored half the time, projected
   (x, y, z kept) and jittered by 2 % of the palm.
3. The MLP (63 -> 64 -> 32 -> 4) is trained with Adam on the training bases' hands and scored on the test
   bases' hands (balanced classes), printing the accuracy and the confusion matrix.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from .rps_model import CLASSES, WEIGHTS, features, forward

FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
THUMB = (1, 2, 3, 4)
EXTENDED, CURLED, RELAXED = ((0, 20), (0, 15), (0, 10)), ((60, 95), (80, 110), (30, 70)), ((30, 60),) * 3
NONE_SETS = [s for s in range(16) if s not in (0, 15, 0b0011)]  # bit i: finger i extended (index = bit 0)


def harvest(data: Path, every: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(N, 21, 3) landmarks of real hands and (N,) source names."""
    from ..video import iter_frames
    from .hands import HandTracker

    tracker = HandTracker(max_hands=4, full=True)
    hands, sources = [], []

    def take(rgb: np.ndarray, source: str) -> None:
        tracker.reset()
        for h in tracker.step(rgb, 0.0):
            if h.presence >= 0.8:
                hands.append(h.landmarks)
                sources.append(source)

    for pattern in ("coco-person/images/*", "web-people-pseudo/images/*"):
        for f in sorted(glob.glob(str(data / pattern))):
            bgr = cv2.imread(f)
            if bgr is not None:
                take(np.ascontiguousarray(bgr[..., ::-1]), f)
    for clip in sorted(glob.glob(str(data / "clips" / "*"))):
        for frame in iter_frames(clip):
            if frame.index % every == 0:
                take(frame.rgb, clip)
    return np.array(hands, np.float32), np.array(sources)


def _palm_frame(lm: np.ndarray) -> np.ndarray:
    """Rows u (pinky -> index knuckles), v (wrist -> middle knuckle), n = u x v."""
    v = lm[9] - lm[0]
    v /= np.linalg.norm(v) + 1e-9
    u = lm[5] - lm[17]
    u -= v * (u @ v)
    u /= np.linalg.norm(u) + 1e-9
    return np.stack([u, v, np.cross(u, v)])


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    return cv2.Rodrigues((axis / np.linalg.norm(axis) * angle).reshape(3, 1))[0]


def synthesize(base: np.ndarray, label: str, rng: np.random.Generator) -> np.ndarray:
    """One synthetic hand of class `label` from a real hand's palm and bone lengths (see the module doc)."""
    lm = base.astype(np.float64) - base[0]
    frame = _palm_frame(lm)
    p = lm @ frame.T  # palm coordinates: x across (towards the index), y up the hand, z the palm normal
    out = np.zeros((21, 3))
    for i in (0, 1, 5, 9, 13, 17):
        out[i] = p[i] * [1, 1, 0.3]  # the palm nearly flat
    states, thumb = _states(label, rng)
    for f, joints in enumerate(FINGERS):
        spread = math.radians((f - 1.5) * rng.uniform(2, 8))
        d = np.array([math.sin(spread), math.cos(spread), 0.0])
        ranges = {"e": EXTENDED, "c": CURLED, "r": RELAXED}[states[f]]
        phi = 0.0
        for k in range(3):
            phi += math.radians(rng.uniform(*ranges[k]))
            bone = np.linalg.norm(lm[joints[k + 1]] - lm[joints[k]])
            step = math.cos(phi) * d + math.sin(phi) * np.array([0, 0, -1.0])
            out[joints[k + 1]] = out[joints[k]] + bone * step
    # thumb: t = 0 extended (out to the side and up), t = 1 folded across the palm
    out_dir = np.array([0.8, 0.6, -0.1])
    fold_dir = np.array([-0.7, 0.3, -0.65])
    for k in range(1, 4):
        bone = np.linalg.norm(lm[THUMB[k]] - lm[THUMB[k - 1]])
        w = min(1.0, thumb * (0.6 + 0.4 * k / 3))
        d = (1 - w) * out_dir + w * fold_dir
        out[THUMB[k]] = out[THUMB[k - 1]] + bone * d / np.linalg.norm(d)
    # into a random 3D view
    scale = np.linalg.norm(p[9])
    r = _rot(np.array([0, 1.0, 0]), math.radians(rng.uniform(-70, 70) + (180 if rng.random() < 0.3 else 0)))
    r = _rot(np.array([1.0, 0, 0]), math.radians(rng.uniform(-50, 50))) @ r
    r = _rot(np.array([0, 0, 1.0]), rng.uniform(-math.pi, math.pi)) @ r
    pts = out @ r.T
    pts[:, 1] *= -1  # picture y points down
    if rng.random() < 0.5:
        pts[:, 0] *= -1
    return (pts + rng.normal(0, 0.02 * scale, pts.shape)).astype(np.float32)


def _states(label: str, rng: np.random.Generator) -> tuple[str, float]:
    """Per-finger state ("e", "c", "r") for index..pinky, and the thumb's fold in [0, 1]."""
    if label == "rock":
        return "cccc", rng.uniform(0.5, 1.0)
    if label == "paper":
        return "eeee", rng.uniform(0.0, 0.6)
    if label == "scissors":
        return "eecc", rng.uniform(0.3, 1.0)
    kind = rng.random()
    if kind < 0.15:  # thumbs up
        return "cccc", rng.uniform(0.0, 0.15)
    if kind < 0.35:  # relaxed fingers
        return "".join(rng.choice(["r", "r", "e", "c"]) for _ in range(4)), rng.uniform(0, 1)
    bits = int(rng.choice(NONE_SETS))
    return "".join("e" if bits >> i & 1 else "c" for i in range(4)), rng.uniform(0, 1)


def make_set(bases: np.ndarray, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c, label in enumerate(CLASSES):
        for _ in range(per_class):
            xs.append(synthesize(bases[rng.integers(len(bases))], label, rng))
            ys.append(c)
    return features(np.array(xs)), np.array(ys)


def train(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, epochs: int = 40, hidden=(64, 32),
          lr: float = 3e-3) -> tuple[list, np.ndarray, np.ndarray]:
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / std
    sizes = (x.shape[1], *hidden, len(CLASSES))
    layers = [(rng.normal(0, math.sqrt(2 / a), (a, b)), np.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:])]
    m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 128):
            idx = order[s:s + 128]
            grads = _grads(layers, x[idx], y[idx])
            t += 1
            for i, (gw, gb) in enumerate(grads):
                new = []
                for j, g in enumerate((gw, gb)):
                    m[i][j][...] = 0.9 * m[i][j] + 0.1 * g
                    v[i][j][...] = 0.999 * v[i][j] + 0.001 * g * g
                    step = lr * (m[i][j] / (1 - 0.9 ** t)) / (np.sqrt(v[i][j] / (1 - 0.999 ** t)) + 1e-8)
                    new.append(layers[i][j] - step - lr * 1e-4 * layers[i][j])
                layers[i] = (new[0], new[1])
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers], mean, std


def _grads(layers: list, x: np.ndarray, y: np.ndarray) -> list:
    acts = [x]
    for i, (w, b) in enumerate(layers):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0) if i < len(layers) - 1 else z)
    z = acts[-1] - acts[-1].max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    delta, grads = p / len(y), []
    for i in range(len(layers) - 1, -1, -1):
        grads.append((acts[i].T @ delta, delta.sum(0)))
        if i:
            delta = (delta @ layers[i][0].T) * (acts[i] > 0)
    return grads[::-1]


def confusion(layers: list, mean: np.ndarray, std: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pred = forward(layers, (x - mean) / std).argmax(1)
    c = np.zeros((len(CLASSES),) * 2, int)
    np.add.at(c, (y, pred), 1)
    return c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m danmask.fx.rps_train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3].parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--hands", type=Path, help="cache of the harvested real hands (.npz): reused when present")
    p.add_argument("--train-per-class", type=int, default=5000)
    p.add_argument("--test-per-class", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.hands and args.hands.is_file():
        with np.load(args.hands) as z:
            hands, sources = z["hands"], z["sources"]
    else:
        hands, sources = harvest(args.data)
        if args.hands:
            np.savez_compressed(args.hands, hands=hands, sources=sources)
    rng = np.random.default_rng(args.seed)
    names = np.unique(sources)
    test_names = set(rng.choice(names, max(1, len(names) // 5), replace=False))
    is_test = np.array([s in test_names for s in sources])
    train_bases, test_bases = hands[~is_test], hands[is_test]
    x, y = make_set(train_bases, args.train_per_class, rng)
    xt, yt = make_set(test_bases, args.test_per_class, rng)
    layers, mean, std = train(x, y, rng)
    c = confusion(layers, mean, std, xt, yt)
    report = {"real_hands": len(hands), "sources": len(names), "train_bases": int((~is_test).sum()),
              "test_bases": int(is_test.sum()), "train": len(y), "test": len(yt),
              "train_accuracy": round(float(np.trace(confusion(layers, mean, std, x, y)) / len(y)), 4),
              "test_accuracy": round(float(np.trace(c) / len(yt)), 4), "classes": CLASSES,
              "confusion (rows true, columns predicted)": c.tolist()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **{f"w{i}": w for i, (w, _) in enumerate(layers)},
             **{f"b{i}": b for i, (_, b) in enumerate(layers)}, mean=mean.astype(np.float32),
             std=std.astype(np.float32))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
