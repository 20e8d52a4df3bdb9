"""Training the memory network: `danmask train vos --config configs/vos.json` (extra `[train]`).

One sample is three frames. Frame 0 with its true mask is the memory; frame 1 is read from it (previous mask: the
truth of frame 0); frame 1 with its *predicted* mask joins the memory and frame 2 is read from both (previous mask:
the prediction), so the network learns to live with its own mistakes. Loss: BCE + soft Dice on frames 1 and 2,
where the label is known. AdamW, poly learning-rate decay over the time budget; the encoder stays frozen.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .network import MemoryNet, VosConfig, to_eighth
from .prior import spatial_prior


@dataclass
class VosTrainConfig:
    cache: str = "cache/labels-ens"
    out: str = "runs/vos"
    input_size: tuple[int, int] = (144, 256)
    minutes: float = 20.0
    batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    static_share: float = 0.5
    distractor_p: float = 0.5
    threads: int = 2
    seed: int = 0
    init: str = ""  # a checkpoint whose trained heads to start from (a second, longer stage)
    exclude_groups: list[str] = field(default_factory=lambda: ["davis-person"])

    @classmethod
    def from_json(cls, path: str | Path) -> "VosTrainConfig":
        raw = json.loads(Path(path).read_text())
        raw["input_size"] = tuple(raw.get("input_size", cls.input_size))
        return cls(**raw)


def priors(prev_small: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.from_numpy(np.stack([spatial_prior(m[0].numpy(), sigma) for m in prev_small.detach()])[:, None])


def clip_loss(net: MemoryNet, rgb: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """rgb (N, 3, 3, H, W), mask/valid (N, 3, 1, H, W) -> loss over frames 1 and 2, and their IoU."""
    n = rgb.shape[0]
    with torch.no_grad():
        keys, match, f4, f2 = net.encode(rgb.flatten(0, 1))
    unflat = [t.view(n, 3, *t.shape[1:]) for t in (keys, match, f4, f2)]
    keys, match, f4, f2 = unflat
    mem_k = [keys[:, 0].flatten(2)]
    mem_v = [net.memorize(match[:, 0], mask[:, 0]).flatten(2)]
    mem_fg = [to_eighth(mask[:, 0]).flatten(2)]
    prev = mask[:, 0]
    losses, ious = [], []
    for t in (1, 2):
        prev_small = to_eighth(prev)
        logits = net.decode(keys[:, t], match[:, t], f4[:, t], f2[:, t], torch.cat(mem_k, 2), torch.cat(mem_v, 2),
                            torch.cat(mem_fg, 2), priors(prev_small, net.cfg.sigma), prev_small)
        logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=False)
        target, ok = mask[:, t], valid[:, t]
        bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * ok).sum() / ok.sum().clamp_min(1)
        p = torch.sigmoid(logits) * ok
        dice = 1 - (2 * (p * target).sum((1, 2, 3)) + 1) / (p.sum((1, 2, 3)) + (target * ok).sum((1, 2, 3)) + 1)
        losses.append(bce + dice.mean())
        hard = (p > 0.5).float()
        inter, union = (hard * target).sum(), ((hard + target * ok) > 0).float().sum()
        ious.append(float(inter / union.clamp_min(1)))
        prob = torch.sigmoid(logits)
        mem_k.append(keys[:, t].flatten(2))
        mem_v.append(net.memorize(match[:, t], prob).flatten(2))
        mem_fg.append(to_eighth(prob).flatten(2))
        prev = prob.detach()
    return sum(losses) / 2, {"iou1": ious[0], "iou2": ious[1]}


def train(cfg: VosTrainConfig, progress: bool = True) -> Path:
    """Train for `cfg.minutes`; returns the checkpoint path (`cfg.out`/vos.pt, with the config and a log)."""
    from ..train.data import load_cache

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    items = [it for it in load_cache(Path(cfg.cache)) if it.group not in cfg.exclude_groups]
    from .data import ClipDataset

    data = ClipDataset(items, cfg.input_size, cfg.static_share, cfg.distractor_p, cfg.seed)
    loader = iter(DataLoader(data, batch_size=cfg.batch, num_workers=1, persistent_workers=True))
    net = load(cfg.init, cfg.input_size).train() if cfg.init else MemoryNet(VosConfig(input_size=cfg.input_size))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    started, step, history = time.monotonic(), 0, []
    budget = cfg.minutes * 60
    with (out / "log.jsonl").open("w") as log:
        while (elapsed := time.monotonic() - started) < budget:
            lr = cfg.lr * (1 - elapsed / budget) ** 0.9  # poly decay over the time budget
            for group in opt.param_groups:
                group["lr"] = lr
            batch = next(loader)
            loss, stats = clip_loss(net, batch["rgb"], batch["mask"], batch["valid"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            step += 1
            row = {"step": step, "min": round(elapsed / 60, 2), "lr": lr, "loss": loss.item(), **stats}
            history.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            if progress and step % 20 == 0:
                recent = history[-20:]
                print(f"step {step} {elapsed / 60:.1f} min loss {np.mean([r['loss'] for r in recent]):.3f} "
                      f"iou {np.mean([r['iou1'] for r in recent]):.3f}/{np.mean([r['iou2'] for r in recent]):.3f}",
                      flush=True)
    ckpt = out / "vos.pt"
    heads = {k: v for k, v in net.state_dict().items() if not k.startswith("encoder.")}
    torch.save({"state": heads, "config": asdict(cfg), "steps": step}, ckpt)
    return ckpt


def load(ckpt: str | Path, input_size: tuple[int, int] | None = None) -> MemoryNet:
    """The trained heads on a fresh frozen encoder, at `input_size` (default: the training size)."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    size = tuple(input_size or saved["config"]["input_size"])
    net = MemoryNet(VosConfig(input_size=size))
    missing = net.load_state_dict(saved["state"], strict=False)
    if any(not k.startswith("encoder.") for k in missing.missing_keys):
        raise ValueError(f"{ckpt}: not a memory-network checkpoint")
    return net.eval()
