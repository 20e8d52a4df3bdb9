"""Quick validation during training on held-out DAVIS sequences, run frame by frame as the runtime does
(prior-mask models get their own previous output). The full, peer-compared numbers come from `danmask eval`.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..models import input_size, takes_prior
from ..models.postprocess import Normalize


@torch.no_grad()
def validate(net: torch.nn.Module, arch: str, davis: Path, sequences: tuple[str, ...]) -> dict:
    """Mean IoU over person sequences and mean predicted-person fraction over no-person sequences."""
    h, w = input_size(arch)
    device = next(net.parameters()).device
    prior_model, norm = takes_prior(arch), Normalize().to(device)
    ious, fps = {}, {}
    for seq in sequences:
        frames = sorted((davis / "JPEGImages" / "480p" / seq).glob("*.jpg"))
        if not frames:
            continue
        prev = torch.zeros(1, 1, h, w, device=device)
        inter = union = fg_pixels = pixels = gt_pixels = 0
        for f in frames:
            rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(f)), (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
            x = norm(torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).to(device))
            p = torch.sigmoid(net(x, prev) if prior_model else net(x))
            prev = p
            gt = cv2.imread(str(davis / "Annotations" / "480p" / seq / (f.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 127
            pred = cv2.resize(p[0, 0].cpu().numpy(), (gt.shape[1], gt.shape[0])) > 0.5
            inter += (pred & gt).sum()
            union += (pred | gt).sum()
            fg_pixels += pred.sum()
            gt_pixels += gt.sum()
            pixels += pred.size
        if gt_pixels:  # a sequence whose masks are all empty is a no-person sequence
            ious[seq] = float(inter / union)
        else:
            fps[seq] = float(fg_pixels / pixels)
    return {"mean_iou": float(np.mean(list(ious.values()))) if ious else 0.0,
            "fp_frac": float(np.mean(list(fps.values()))) if fps else 0.0, "per_sequence": ious, "fp": fps}
