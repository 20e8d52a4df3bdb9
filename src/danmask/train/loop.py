"""The training loop: time-budgeted (the schedule is fitted to `minutes` after measuring a few steps), resumable,
deterministic given the seed, with validation on held-out sequences and a loss-curve PNG.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from ..models import adapt_state, create_model, input_size, takes_prior
from ..models.postprocess import Normalize
from .augment import PriorMix
from .data import SegDataset, load_cache, without_sequences
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
    zoom_p: float = 0.0  # share of samples cut as the runtime's zoom crop around the people (augment.zoom_crop)
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


@dataclass
class _Run:
    """One run's moving parts and clock, shared by the loop, validation and checkpoints."""

    cfg: TrainConfig
    device: torch.device
    net: nn.Module
    opt: torch.optim.Optimizer
    ema: AveragedModel | None
    step: int = 0
    done_before: float = 0.0  # seconds trained before a resume
    history: list = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return self.done_before + time.time() - self.started

    def progress(self) -> float:
        """Share of the budget used: steps when the config fixes them, else time."""
        if self.cfg.steps:
            return self.step / self.cfg.steps
        return self.elapsed() / (self.cfg.minutes * 60)

    def validated(self) -> dict:
        """Held-out scores of the weights that would ship now."""
        cfg = self.cfg
        return {"step": self.step,
                **validate(_shipped(self.net, self.ema).eval(), cfg.arch, Path(cfg.val_davis), cfg.val_sequences)}

    def save(self, path: Path) -> None:
        _save(path, self.net, self.ema, self.opt, self.step, self.elapsed(), self.cfg, self.history)


def _start(cfg: TrainConfig, resume_from: Path | None) -> _Run:
    """The network (fresh, from `cfg.init`, or resumed with its optimiser and clock), on the configured device."""
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    net = create_model(cfg.arch).to(device)
    if cfg.init:
        net.load_state_dict(adapt_state(net, torch.load(cfg.init, map_location=device, weights_only=False)["model"]))
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    run = _Run(cfg, device, net, torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay), ema)
    if resume_from is not None and resume_from.is_file():
        ck = torch.load(resume_from, map_location=device, weights_only=False)
        net.load_state_dict(ck.get("raw", ck["model"]))
        if ema is not None:
            ema.module.load_state_dict(ck["model"])
            ema.n_averaged.fill_(ck["step"])
        run.opt.load_state_dict(ck["opt"])
        run.step, run.done_before, run.history = ck["step"], ck["elapsed"], ck["history"]
    return run


def _loader(cfg: TrainConfig, first_step: int) -> DataLoader:
    """Batches from the label cache; a resumed run continues the same sample stream at `first_step`."""
    items = without_sequences(load_cache(Path(cfg.cache)), cfg.val_sequences)
    ds = SegDataset(items, input_size(cfg.arch), takes_prior(cfg.arch), paste_p=cfg.paste_p,
                    seed=cfg.seed, prior_mix=cfg.prior_mix, salient=cfg.salient, balance=cfg.balance,
                    zoom_p=cfg.zoom_p)
    return DataLoader(ds, batch_size=cfg.batch, sampler=range(first_step * cfg.batch, ds.length),
                      num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                      prefetch_factor=4 if cfg.workers else None)


def _optimise(run: _Run, norm: Normalize, batch: dict) -> tuple[float, dict]:
    """One optimiser step on `batch`; returns the loss and its parts."""
    cfg = run.cfg
    for g in run.opt.param_groups:
        g["lr"] = _lr(run.step, run.progress(), cfg.lr)
    batch = {k: v.to(run.device, non_blocking=True) for k, v in batch.items()}
    x = norm(batch["image"])
    logits, embed = (run.net(x, batch["prior"], return_embed=True) if takes_prior(cfg.arch)
                     else run.net(x, return_embed=True))
    loss, parts = total_loss(logits, embed, batch["label"], batch["valid"], cfg.loss)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.ema is not None:
        run.ema.update_parameters(run.net)
    run.step += 1
    return float(loss.detach()), parts


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train `cfg.arch`; returns the path of the final checkpoint (`out/last.pt`)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    ckpt_path = out / "last.pt"
    run = _start(cfg, ckpt_path if resume else None)
    loader = _loader(cfg, run.step)
    with (out / "log.csv").open("a", newline="") as log:
        _loop(run, loader, log, ckpt_path, progress)
    run.history.append(run.validated())
    run.save(ckpt_path)
    (out / "history.json").write_text(json.dumps(run.history, indent=2) + "\n")
    plot_curves(out)
    return ckpt_path


def _loop(run: _Run, loader: DataLoader, log: TextIO, ckpt_path: Path, progress: bool) -> None:
    """Optimise until the budget is spent: a log.csv row per step, a checkpoint every 5 minutes, validation every
    `val_every_min` minutes."""
    from tqdm import tqdm

    norm = Normalize().to(run.device)
    writer = csv.writer(log)
    run.started = last_val = last_ckpt = time.time()
    run.net.train()
    with tqdm(total=run.cfg.steps or None, initial=run.step, disable=not progress, desc=run.cfg.arch,
              unit="it") as bar:
        for batch in loader:
            if run.progress() >= 1.0:
                break
            loss, parts = _optimise(run, norm, batch)
            writer.writerow([run.step, time.time() - run.started, loss]
                            + [parts.get(k, 0.0) for k in ("bce", "dice", "topk", "cluster")])
            bar.update(1)
            bar.set_postfix(loss=f"{parts['bce']:.3f}", done=f"{100 * run.progress():.0f}%")
            if time.time() - last_ckpt > 300:
                run.save(ckpt_path)
                last_ckpt = time.time()
            if time.time() - last_val > run.cfg.val_every_min * 60:
                run.history.append(run.validated())
                run.net.train()
                last_val = time.time()
                log.flush()


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
