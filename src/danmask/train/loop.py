"""The training loop: time-budgeted (the schedule is fitted to `minutes` after measuring a few steps), resumable,
deterministic given the seed, with validation on held-out sequences and a loss-curve PNG.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..models import adapt_state, create_model, input_size, takes_prior
from ..models.postprocess import Normalize
from .augment import PriorMix
from .data import SegDataset, load_cache
from .losses import LossConfig, total_loss
from .validate import validate


@dataclass
class TrainConfig:
    arch: str = "airseg-cpu"
    cache: str = "cache/labels"
    out: str = "runs/airseg-cpu"
    minutes: float = 60.0  # time budget; the cosine schedule follows elapsed time (shared, noisy machines)
    steps: int = 0  # if set, a fixed step count instead: fully deterministic, independent of machine speed
    batch: int = 16
    lr: float = 4e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    workers: int = 1
    paste_p: float = 0.35
    val_davis: str = "../shared/data/davis-people"
    val_sequences: tuple[str, ...] = ("dance-twirl", "parkour", "camel", "dog", "drift-chicane")
    val_every_min: float = 15.0
    loss: LossConfig = field(default_factory=LossConfig)
    prior_mix: PriorMix = field(default_factory=PriorMix)
    init: str = ""  # checkpoint whose weights start this run (fine-tuning); optimizer and schedule start fresh
    salient: float = 0.0  # > 0: people smaller than this share of the largest one are background (data.salient_only)
    balance: bool = False  # draw label groups ~ sqrt(size) instead of every sample equally (data.SegDataset)
    ema: float = 0.0  # if > 0, validate and ship an exponential moving average of the weights (decay per step)


def _save(path: Path, net, ema, opt, step: int, elapsed: float, cfg: TrainConfig, history: list) -> None:
    """'model' holds the weights to use (the average when there is one); 'raw' the optimised ones, for resume."""
    tmp = path.with_suffix(".tmp")
    extra = {"raw": net.state_dict()} if ema is not None else {}
    torch.save({"arch": cfg.arch, "model": _shipped(net, ema).state_dict(), "opt": opt.state_dict(), "step": step,
                "elapsed": elapsed, "config": asdict(cfg), "history": history, **extra}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint


def _shipped(net, ema):
    return ema.module if ema is not None else net


def _lr(step: int, progress: float, base: float, warmup: int = 200) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay over training progress in [0, 1]."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + np.cos(np.pi * min(1.0, progress)))


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train `cfg.arch`; returns the path of the final checkpoint (`out/last.pt`)."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    prior = takes_prior(cfg.arch)
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    net, norm = create_model(cfg.arch).to(device), Normalize().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, done_before, history = 0, 0.0, []
    ckpt_path = out / "last.pt"
    if cfg.init:
        net.load_state_dict(adapt_state(net, torch.load(cfg.init, map_location=device, weights_only=False)["model"]))
    ema = None
    if cfg.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        net.load_state_dict(ck.get("raw", ck["model"]))
        if ema is not None:
            ema.module.load_state_dict(ck["model"])
            ema.n_averaged.fill_(ck["step"])
        opt.load_state_dict(ck["opt"])
        step, done_before, history = ck["step"], ck["elapsed"], ck["history"]
    items = load_cache(Path(cfg.cache))
    ds = SegDataset(items, input_size(cfg.arch), prior, paste_p=cfg.paste_p, seed=cfg.seed, prior_mix=cfg.prior_mix,
                   salient=cfg.salient, balance=cfg.balance)
    sampler = range(step * cfg.batch, ds.length)  # resume continues the same sample stream
    loader = DataLoader(ds, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, prefetch_factor=4 if cfg.workers else None)
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    start, last_val, last_ckpt = time.time(), time.time(), time.time()

    def progress_now() -> float:
        if cfg.steps:
            return step / cfg.steps
        return (done_before + time.time() - start) / (cfg.minutes * 60)

    def validated() -> dict:
        """Held-out scores of the weights that would ship now."""
        return {"step": step, **validate(_shipped(net, ema).eval(), cfg.arch, Path(cfg.val_davis), cfg.val_sequences)}

    bar = tqdm(total=cfg.steps or None, initial=step, disable=not progress, desc=cfg.arch, unit="it")
    net.train()
    for batch in loader:
        if progress_now() >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = _lr(step, progress_now(), cfg.lr)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        x = norm(batch["image"])
        logits, embed = net(x, batch["prior"], return_embed=True) if prior else net(x, return_embed=True)
        loss, parts = total_loss(logits, embed, batch["label"], batch["valid"], cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(net)
        step += 1
        writer.writerow([step, time.time() - start, float(loss.detach())] + [parts.get(k, 0.0) for k in ("bce", "dice", "topk", "cluster")])
        bar.update(1)
        bar.set_postfix(loss=f"{parts['bce']:.3f}", done=f"{100 * progress_now():.0f}%")
        if time.time() - last_ckpt > 300:
            _save(ckpt_path, net, ema, opt, step, done_before + time.time() - start, cfg, history)
            last_ckpt = time.time()
        if time.time() - last_val > cfg.val_every_min * 60:
            history.append(validated())
            net.train()
            last_val = time.time()
            log.flush()
    bar.close()
    history.append(validated())
    _save(ckpt_path, net, ema, opt, step, done_before + time.time() - start, cfg, history)
    log.close()
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    plot_curves(out)
    return ckpt_path


def plot_curves(out: Path) -> None:
    """loss.png: training loss (smoothed) and validation IoU over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.loadtxt(out / "log.csv", delimiter=",", ndmin=2)
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    k = max(1, len(rows) // 200)
    smooth = np.convolve(rows[:, 2], np.ones(k) / k, mode="valid")
    ax[0].plot(rows[: len(smooth), 0], smooth)
    ax[0].set(xlabel="step", ylabel="loss", title=f"training loss ({out.name})")
    if history:
        ax[1].plot([h["step"] for h in history], [h["mean_iou"] for h in history], "o-", label="val mean IoU")
        ax[1].plot([h["step"] for h in history], [h["fp_frac"] for h in history], "s-", label="val FP fraction")
        ax[1].legend()
    ax[1].set(xlabel="step", title="held-out sequences")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=90)
    plt.close(fig)
