"""AirSegNet (after Youku's design): a straight VGG-style encoder and a decoder of 1x1 convolutions.

No branches in the encoder, so it runs fast on any CPU runtime; the decoder fuses x2, x4 and x8 features with
1x1 convs and bilinear upsampling (align_corners=False) to recover edges cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ConvBNReLU, resize_to


@dataclass(frozen=True)
class AirSegConfig:
    widths: tuple[int, ...]  # channels of stages at stride 2, 4, 8, 16, 32
    depths: tuple[int, ...]  # extra 3x3 convs per stage after the strided one
    decoder: int  # channels of the 1x1 decoder
    input_size: tuple[int, int]  # (h, w) the exported model sees


class AirSegNet(nn.Module):
    """Returns person logits at input resolution; `embed` (decoder features at x2) feeds the clustering loss."""

    def __init__(self, cfg: AirSegConfig, in_ch: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        stages, cin = [], in_ch
        for width, depth in zip(cfg.widths, cfg.depths):
            layers = [ConvBNReLU(cin, width, 3, stride=2)] + [ConvBNReLU(width, width) for _ in range(depth)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)
        d = cfg.decoder
        self.top = ConvBNReLU(cfg.widths[-1] + cfg.widths[-2], d, 1)  # x16 + upsampled x32 context
        self.lat8 = ConvBNReLU(cfg.widths[2], d, 1)
        self.lat4 = ConvBNReLU(cfg.widths[1], d, 1)
        self.lat2 = ConvBNReLU(cfg.widths[0], d, 1)
        self.fuse8 = ConvBNReLU(d, d, 1)
        self.fuse4 = ConvBNReLU(d, d, 1)
        self.fuse2 = ConvBNReLU(d, d, 1)
        self.head = nn.Conv2d(d, 1, 1)

    def forward(self, x: torch.Tensor, return_embed: bool = False):
        feats = []
        h = x
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        f2, f4, f8, f16, f32 = feats
        y = self.top(torch.cat([f16, resize_to(f32, f16)], 1))
        y = self.fuse8(resize_to(y, f8) + self.lat8(f8))
        y = self.fuse4(resize_to(y, f4) + self.lat4(f4))
        y = self.fuse2(resize_to(y, f2) + self.lat2(f2))
        logits = resize_to(self.head(y), x)
        return (logits, y) if return_embed else logits


class PriorAirSegNet(AirSegNet):
    """AirSegNet that also reads the previous frame's mask as a 4th input channel.

    Built to start from a trained RGB AirSegNet (`adapt_state` zero-fills the new channel's weights), so with an
    empty prior it is exactly that network and fine-tuning only has to learn how far to trust the prior.
    """

    def __init__(self, cfg: AirSegConfig) -> None:
        super().__init__(cfg, in_ch=4)

    def forward(self, src: torch.Tensor, prior: torch.Tensor, return_embed: bool = False):
        return super().forward(torch.cat([src, prior], 1), return_embed)


AIRSEG_CONFIGS = {
    "airseg-cpu": AirSegConfig(widths=(8, 16, 32, 64, 96), depths=(0, 1, 1, 2, 1), decoder=16, input_size=(144, 256)),
    "airseg-gpu": AirSegConfig(widths=(16, 32, 64, 96, 128), depths=(1, 1, 2, 2, 2), decoder=24, input_size=(192, 320)),
    "airseg-server": AirSegConfig(widths=(24, 48, 96, 160, 256), depths=(1, 2, 3, 3, 2), decoder=48, input_size=(288, 512)),
}
PRIOR_AIRSEG_CONFIGS = {"airseg-prior": AIRSEG_CONFIGS["airseg-cpu"]}
