"""A space-time memory network (STM, Oh et al. 2019) small enough to train on two CPU cores (extra `[train]`).

- **Encoder, frozen**: MediaPipe's selfie-segmentation graph (Apache-2.0, the graph danmask's mpft models come
  from), replayed by our TFLite importer. Its features at 1/16 and 1/8 (upsampled and joined) make the matching
  features; its 1/4 and 1/2 decoder features and its own person logits feed the refinement.
- **Key / value**: a 1x1 projection of the matching features is the key, the same for query and memory frames
  (shared, as in STM); the value encoder reads the matching features with the frame's object mask and person
  probability. Values are per object, keys are not, so many objects share one key computation.
- **Memory read with a spatial prior** (the Youku solution's spatial-constrained reader): the affinity of a query
  position to a memory position that holds the object is damped by a Gaussian of the query's distance to the
  object in the previous frame, `g = exp(-d^2 / 2 sigma^2)`. Non-local matching then cannot jump to a look-alike
  far away, while the background keeps matching everywhere.
- **Decoder**: ASPP (dilations 1, 2, 4) on the read-out, then two refinement stages that add the encoder's 1/4 and
  1/2 features and its person logits (edges), logits at 1/2, upsampled.

Everything is a plain `nn.Module`; `danmask.vos.export` splits it into the three ONNX graphs the runtime runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.tflite_graph import TfliteGraph

# Tensors of the selfie-landscape graph (see `read_tflite`): 1/16 encoder, 1/8 and 1/4 and 1/2 decoder, logits
FEATURES = {"f16": "add_4__xeno_compat__1", "f8": "add_7__xeno_compat__1", "f4": "add_10__xeno_compat__1",
            "f2": "add_13__xeno_compat__1"}
MATCH_CH = 32 + 24  # f16 upsampled + f8
STRIDE = 8  # of the matching features; the input size is a multiple of 16


def to_eighth(mask: torch.Tensor) -> torch.Tensor:
    """A full-size mask at 1/8: the mean of each 8x8 cell (an exact area resize, and ONNX-exportable)."""
    return F.avg_pool2d(mask, STRIDE)


@dataclass(frozen=True)
class VosConfig:
    input_size: tuple[int, int] = (288, 512)  # (h, w); multiples of 16
    key_dim: int = 32
    value_dim: int = 48
    sigma: float = 6.0  # of the spatial prior, in 1/8 cells (48 px at 512 wide)


class FrozenEncoder(nn.Module):
    """The selfie graph up to its last decoder features, weights frozen; [0, 1] RGB in."""

    def __init__(self, input_size: tuple[int, int]) -> None:
        super().__init__()
        from ..runtime.litert_backend import mediapipe_model_path

        self.graph = TfliteGraph(mediapipe_model_path("mediapipe-selfie-landscape"), input_size,
                                 keep=[*FEATURES.values()], drop_final_sigmoid=True)
        self.graph.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        env = self.graph.run(rgb)
        f16, f8 = env[FEATURES["f16"]], env[FEATURES["f8"]]
        match = torch.cat([F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False), f8], 1)
        return {"match": match, "f4": env[FEATURES["f4"]], "f2": env[FEATURES["f2"]]}


def conv(cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    """Conv + ReLU, no normalisation: batches of a few clips on a CPU are too small for batch statistics."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation), nn.ReLU())


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: three dilations and the image mean, joined."""

    def __init__(self, ch: int, out: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(conv(ch, out, 3, d) for d in (1, 2, 4))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, out, 1), nn.ReLU())
        self.project = conv(4 * out, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class MemoryNet(nn.Module):
    def __init__(self, cfg: VosConfig = VosConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = FrozenEncoder(cfg.input_size)
        self.key = nn.Conv2d(MATCH_CH, cfg.key_dim, 1)
        self.value = nn.Sequential(conv(MATCH_CH + 1, 64), conv(64, cfg.value_dim))
        self.aspp = ASPP(cfg.value_dim + MATCH_CH + 2, 48)
        self.refine4 = nn.Sequential(conv(48 + 16, 32), conv(32, 32))
        self.refine2 = nn.Sequential(conv(32 + 16, 16), nn.Conv2d(16, 1, 3, padding=1))

    # ---------------------------------------------------------------- the three stages the runtime runs

    def encode(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """[0, 1] RGB (N, 3, H, W) -> key (N, K, h, w) at 1/8, matching features, 1/4 and 1/2 features."""
        feats = self.encoder(rgb)
        return self.key(feats["match"]), feats["match"], feats["f4"], feats["f2"]

    def memorize(self, match: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Value (N, V, h, w) of one object in a memory frame: its mask (N, 1, H, W) in [0, 1] with the features."""
        return self.value(torch.cat([match, to_eighth(mask)], 1))

    def decode(self, key: torch.Tensor, match: torch.Tensor, f4: torch.Tensor, f2: torch.Tensor,
               mem_key: torch.Tensor, mem_value: torch.Tensor, mem_fg: torch.Tensor, prior: torch.Tensor,
               prev: torch.Tensor) -> torch.Tensor:
        """Mask logits (N, 1, H/2, W/2) of one object in the query frame.

        mem_key (N, K, M), mem_value (N, V, M), mem_fg (N, 1, M): M memory positions (T frames x h x w) and
        whether the object is there; prior (N, 1, h, w): the Gaussian of the distance to the object in the previous
        frame; prev (N, 1, h, w): its mask there, at 1/8.
        """
        n, k, h, w = key.shape
        q = key.flatten(2)  # (N, K, hw)
        logits = torch.einsum("nkm,nkq->nmq", mem_key, q) / k ** 0.5  # (N, M, hw)
        damp = torch.log(prior.flatten(2).clamp_min(1e-4))  # (N, 1, hw), <= 0
        logits = logits + mem_fg.transpose(1, 2) * damp  # object memory far from the object: damped
        attn = torch.softmax(logits, dim=1)
        read = torch.einsum("nvm,nmq->nvq", mem_value, attn).view(n, -1, h, w)
        x = self.aspp(torch.cat([read, match, prior, prev], 1))
        x = F.interpolate(x, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine4(torch.cat([x, f4], 1))
        x = F.interpolate(x, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine2(torch.cat([x, f2], 1))
