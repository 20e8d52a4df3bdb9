"""Rock / paper / scissors / none from 21 hand landmarks: a tiny MLP (63 -> 64 -> 32 -> 4, ReLU) in numpy.

The weights (`weights/rps-mlp.npz`, 6.5 k parameters) were trained by `python -m danmask.fx.rps_train` on
landmark sets built from real hands (see docs/models/rps-mlp.md). The input is made independent of where the hand
is, how big, how it is turned in the picture and which hand it is: wrist at the origin, wrist -> middle-finger
knuckle pointing up with unit length, mirrored so that the index knuckle is on the right of the pinky's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError

CLASSES = ("rock", "paper", "scissors", "none")
WEIGHTS = Path(__file__).resolve().parent / "weights" / "rps-mlp.npz"
WRIST, INDEX_MCP, MIDDLE_MCP, PINKY_MCP = 0, 5, 9, 17


def features(landmarks: np.ndarray) -> np.ndarray:
    """(..., 21, 3) landmarks (x, y right/down, z depth in the same units) -> (..., 63) normalised vectors."""
    p = np.asarray(landmarks, np.float64)
    p = p - p[..., WRIST:WRIST + 1, :]
    up = p[..., MIDDLE_MCP, :2]
    length = np.maximum(np.linalg.norm(up, axis=-1), 1e-6)
    # rotate in the picture plane so that `up` points to (0, -1)
    s, c = up[..., 0] / length, -up[..., 1] / length
    x = c[..., None] * p[..., 0] + s[..., None] * p[..., 1]
    y = -s[..., None] * p[..., 0] + c[..., None] * p[..., 1]
    out = np.stack([x, y, p[..., 2]], -1) / length[..., None, None]
    flip = out[..., INDEX_MCP, 0] < out[..., PINKY_MCP, 0]
    out[..., 0] = np.where(flip[..., None], -out[..., 0], out[..., 0])
    return out.reshape(*out.shape[:-2], 63).astype(np.float32)


class RpsClassifier:
    """`probabilities(landmarks)` -> (4,) over CLASSES; `__call__` -> (class name, probability)."""

    def __init__(self, path: str | Path = WEIGHTS) -> None:
        try:
            with np.load(path) as w:
                self.layers = [(w[f"w{i}"], w[f"b{i}"]) for i in range(3)]
                self.mean, self.std = w["mean"], w["std"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{path}: not an RPS classifier ({exc})") from exc

    def probabilities(self, landmarks: np.ndarray) -> np.ndarray:
        return forward(self.layers, (features(landmarks) - self.mean) / self.std)

    def __call__(self, landmarks: np.ndarray) -> tuple[str, float]:
        p = self.probabilities(landmarks)
        i = int(np.argmax(p))
        return CLASSES[i], float(p[i])


def forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)
