"""Output stage fused into the exported graph: normalisation, sigmoid, 3x3 Gaussian blur, contrast curve.

Keeping these in the graph means every runtime (CLI, eval, browser) gets identical masks at no extra cost.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """ImageNet-style mean/std inside the model, so callers feed plain RGB in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SoftEdges(nn.Module):
    """sigmoid -> 3x3 Gaussian blur -> contrast curve. `gain` 1 leaves probabilities unchanged after the blur."""

    def __init__(self, blur: bool = True, gain: float = 1.5) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16.0).view(1, 1, 3, 3))
        self.blur = blur
        self.gain = gain

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        if self.blur:
            p = F.conv2d(F.pad(p, (1, 1, 1, 1), mode="replicate"), self.kernel)
        if self.gain != 1.0:  # steepen around 0.5 so blurred edges stay crisp but not aliased
            p = torch.clamp((p - 0.5) * self.gain + 0.5, 0.0, 1.0)
        return p


def curve(p, gain: float):
    """The same contrast curve in numpy, for masks from models without it in the graph."""
    import numpy as np

    return np.clip((p - 0.5) * gain + 0.5, 0.0, 1.0)
