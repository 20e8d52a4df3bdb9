"""Prior-mask hourglass (after the YouTube Stories / MediaPipe video segmentation model).

Input is RGB plus the previous frame's mask, so the net learns to follow a person through time and to distrust
a stale prior. A big-kernel stride-4 stem reads the full-resolution frame cheaply, aggressive downsampling with
U-Net skips gives context, ResNet bottlenecks squeeze channels 16x, and a few DenseNet layers at the output
resolution (half the input, upsampled bilinearly) sharpen edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ConvBNReLU, resize_to


class Bottleneck(nn.Module):
    """ResNet bottleneck with a heavy squeeze (channels / squeeze in the 3x3)."""

    def __init__(self, ch: int, squeeze: int, stride: int = 1) -> None:
        super().__init__()
        mid = max(4, ch // squeeze)
        self.body = nn.Sequential(
            ConvBNReLU(ch, mid, 1), ConvBNReLU(mid, mid, 3, stride=stride), ConvBNReLU(mid, ch, 1, relu=False))
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.pool(x))


class DenseRefine(nn.Module):
    """A few densely connected 3x3 layers at full output resolution (edges)."""

    def __init__(self, cin: int, growth: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConvBNReLU(cin + i * growth, growth) for i in range(layers))
        self.out_ch = cin + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


@dataclass(frozen=True)
class HourglassConfig:
    widths: tuple[int, ...]  # channels at stride 4, 8, 16, 32
    blocks: int  # bottlenecks per level
    squeeze: int
    dense: int  # DenseNet layers at output resolution
    growth: int
    input_size: tuple[int, int]


class PriorHourglass(nn.Module):
    """forward(src, prior) -> logits; src (N,3,H,W) in [0,1] normalised outside, prior (N,1,H,W) in [0,1]."""

    def __init__(self, cfg: HourglassConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = ConvBNReLU(4, w[0], k=7, stride=4)
        self.down = nn.ModuleList()
        for cin, cout in zip(w[:-1], w[1:]):
            self.down.append(nn.Sequential(ConvBNReLU(cin, cout, 3, stride=2),
                                           *[Bottleneck(cout, cfg.squeeze) for _ in range(cfg.blocks)]))
        self.up = nn.ModuleList(ConvBNReLU(cout, cin, 1) for cin, cout in zip(w[:-1], w[1:]))
        self.skip = nn.ModuleList(Bottleneck(c, max(1, cfg.squeeze // 2)) for c in w[:-1])
        self.full = ConvBNReLU(4, cfg.growth, 3, stride=2)  # RGB + prior at output resolution (x2) for edges
        self.dense = DenseRefine(w[0] + cfg.growth, cfg.growth, cfg.dense)
        self.head = nn.Conv2d(self.dense.out_ch, 1, 1)

    def forward(self, src: torch.Tensor, prior: torch.Tensor, return_embed: bool = False):
        x4 = torch.cat([src, prior], 1)
        feats = [self.stem(x4)]
        for down in self.down:
            feats.append(down(feats[-1]))
        y = feats[-1]
        for i in range(len(self.up) - 1, -1, -1):
            y = self.skip[i](feats[i]) + resize_to(self.up[i](y), feats[i])
        full = self.full(x4)
        z = self.dense(torch.cat([resize_to(y, full), full], 1))
        logits = resize_to(self.head(z), src)
        return (logits, y) if return_embed else logits


HOURGLASS_CONFIGS = {
    "hourglass-prior": HourglassConfig(widths=(16, 32, 64, 128), blocks=2, squeeze=16, dense=3, growth=4,
                                       input_size=(144, 256)),
}
