"""Segmentation losses. Every loss takes per-pixel `valid` (0 where the teacher cache says ignore).

Targets are soft (teacher alphas): BCE with soft targets is the distillation loss; hard-mask structure
(edge band, dice) uses target > 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def edge_band(target: torch.Tensor, k: int = 5) -> torch.Tensor:
    """dilate(mask, kxk) - erode(mask, kxk): the boundary band where edge weighting applies."""
    hard = (target > 0.5).float()
    dil = F.max_pool2d(hard, k, 1, k // 2)
    ero = -F.max_pool2d(-hard, k, 1, k // 2)
    return dil - ero


def pixel_weights(target: torch.Tensor, edge_w: float, bg_w: float) -> torch.Tensor:
    """Edge pixels weigh `edge_w`, background pixels `bg_w` (curbs false positives), others 1."""
    w = torch.ones_like(target)
    w = torch.where(target < 0.5, torch.full_like(w, bg_w), w)
    return torch.where(edge_band(target) > 0, torch.full_like(w, edge_w), w)


def distill_bce(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE against soft labels (the distillation loss)."""
    return F.binary_cross_entropy_with_logits(logits, soft, reduction="none")


def soft_dice(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - Dice per image, averaged; images without a person contribute through the BCE only."""
    p = torch.sigmoid(logits) * valid
    t = target * valid
    inter = (p * t).sum((1, 2, 3))
    denom = p.sum((1, 2, 3)) + t.sum((1, 2, 3))
    has = (t.sum((1, 2, 3)) > 1).float()
    dice = 1 - (2 * inter + 1) / (denom + 1)
    return (dice * has).sum() / has.sum().clamp(min=1)


def topk_loss(per_pixel: torch.Tensor, valid: torch.Tensor, frac: float) -> torch.Tensor:
    """Mean of the hardest `frac` of valid pixels per image (online hard example mining)."""
    flat = (per_pixel * valid).flatten(1)
    k = max(1, int(flat.shape[1] * frac))
    return flat.topk(k, dim=1).values.mean()


def clustering_loss(embed: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Pull person-pixel embeddings to their mean, background to theirs, and push the two means apart."""
    t = F.interpolate(target, size=embed.shape[-2:], mode="bilinear", align_corners=False)
    v = F.interpolate(valid, size=embed.shape[-2:], mode="nearest")
    fg, bg = (t > 0.5).float() * v, (t <= 0.5).float() * v
    e = F.normalize(embed, dim=1)
    loss = embed.new_zeros(())
    n = 0
    for i in range(e.shape[0]):
        if fg[i].sum() < 4 or bg[i].sum() < 4:
            continue
        mf = (e[i] * fg[i]).sum((1, 2)) / fg[i].sum()
        mb = (e[i] * bg[i]).sum((1, 2)) / bg[i].sum()
        pull_f = (((e[i] - mf[:, None, None]) ** 2).sum(0) * fg[i][0]).sum() / fg[i].sum()
        pull_b = (((e[i] - mb[:, None, None]) ** 2).sum(0) * bg[i][0]).sum() / bg[i].sum()
        push = F.relu(margin - (mf - mb).norm()) ** 2
        loss = loss + pull_f + pull_b + push
        n += 1
    return loss / max(n, 1)


@dataclass
class LossConfig:
    edge_weight: float = 5.0
    bg_weight: float = 1.5
    dice: float = 1.0
    topk: float = 0.5
    topk_frac: float = 0.1
    cluster: float = 0.1


def total_loss(logits: torch.Tensor, embed: torch.Tensor | None, target: torch.Tensor, valid: torch.Tensor,
               cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted BCE (distillation) + dice + top-k + clustering; returns the sum and its parts for logging."""
    bce = distill_bce(logits, target)
    w = pixel_weights(target, cfg.edge_weight, cfg.bg_weight) * valid
    parts = {"bce": (bce * w).sum() / w.sum().clamp(min=1)}
    if cfg.dice:
        parts["dice"] = cfg.dice * soft_dice(logits, target, valid)
    if cfg.topk:
        parts["topk"] = cfg.topk * topk_loss(bce, valid, cfg.topk_frac)
    if cfg.cluster and embed is not None:
        parts["cluster"] = cfg.cluster * clustering_loss(embed, target, valid)
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}
