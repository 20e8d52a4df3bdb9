"""Building blocks shared by the danmask networks: plain conv-BN-ReLU and bilinear resize."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """The only block of a straight (VGG-style) net: fuses to a single conv at export time."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize with align_corners=False (the convention every runtime, ONNX and browser, agrees on)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)
