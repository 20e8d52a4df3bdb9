"""A small edge refiner on top of the pose graph's person mask: danmask's own layers, trained on our labels.

MediaPipe's mask head is kept as it is (its low-resolution layers are chaotic to fine-tune: a 4e-5 nudge of their
weights moves some logits by hundreds). The refiner reads the crop, the head's logits and its last 8-channel
feature map and adds a correction to the logits. Its last layer starts at zero, so a fresh refiner changes
nothing; what it learns is what our labels teach (DAVIS-style masks: hair, loose clothes, what a person holds).

Cost: about 90 M multiply-adds (context at 128x128, then 1x1 and depthwise layers at 256x256).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOGIT_CLAMP = 20.0  # the head's logits reach +-1700; beyond this they only say "certain"
LOGIT_SCALE = 4.0  # ... and are brought to the range where a learnt correction can move them


def _dw(ch: int, dilation: int = 1) -> nn.Sequential:
    """Depthwise-separable 3x3 block: cheap context at a fixed resolution."""
    return nn.Sequential(nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, groups=ch),
                         nn.Conv2d(ch, ch, 1), nn.ReLU(inplace=True))


class MaskRefiner(nn.Module):
    """(crop RGB [0, 1], head logits, head features (8 ch)) at 256 px -> refined logits at 256 px."""

    def __init__(self, feature_ch: int = 8, width: int = 16) -> None:
        super().__init__()
        inputs = 3 + 1 + feature_ch
        self.down = nn.Sequential(nn.Conv2d(inputs, width, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.context = nn.Sequential(_dw(width), _dw(width, 2), _dw(width, 4))
        self.up = nn.Sequential(nn.Conv2d(width + inputs, width, 1), nn.ReLU(inplace=True), _dw(width))
        self.out = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @staticmethod
    def base(logits: torch.Tensor) -> torch.Tensor:
        """The head's logits in the refiner's range (same sign, so the same mask at 0.5)."""
        return logits.clamp(-LOGIT_CLAMP, LOGIT_CLAMP) / LOGIT_SCALE

    def forward(self, rgb: torch.Tensor, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        base = self.base(logits)
        x = torch.cat([rgb, torch.tanh(base), features / 6.0], 1)  # the features are ReLU6 outputs
        y = self.context(self.down(x))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return base + self.out(self.up(torch.cat([y, x], 1)))
