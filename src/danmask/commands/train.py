"""`danmask train`: make teacher labels, then fit a model (extra `[train]`, torch==2.13.0)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..train.loop import TrainConfig

EPILOG = """\
A full run, as used for the shipped weights (see docs/models/):
  danmask train labels --data ../shared/data --rvm ../shared/models/rvm/rvm_mnv3_ratio1.0.onnx --out cache/labels
  danmask train fit --config configs/airseg-cpu.json
  danmask export runs/airseg-cpu/last.pt --format onnx -o airseg-cpu.onnx --register

The RVM teacher is GPL-3.0: it only makes labels on your machine; it is never shipped or committed.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train danmask's own person-segmentation models (extra [train])",
                              description="Train a person-segmentation model: `labels` caches teacher "
                              "pseudo-labels, `fit` trains on them under a time budget.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="train_command", metavar="STEP", required=True)
    lab = sub.add_parser("labels", help="label every training image/frame with the teachers (RVM + MediaPipe)")
    lab.add_argument("--data", default="../shared/data", help="folder with davis-people/, coco-person/, "
                     "web-people-pseudo/, clips/ (default: %(default)s)")
    lab.add_argument("--rvm", required=True, help="path to the RVM teacher ONNX (rvm_mnv3_ratio1.0.onnx)")
    lab.add_argument("--out", default="cache/labels", help="cache folder (default: %(default)s)")
    lab.add_argument("--quiet", action="store_true", help="no progress bar")
    lab.set_defaults(func=run_labels)
    fit = sub.add_parser("fit", help="train one architecture on the label cache")
    fit.add_argument("--config", help="JSON file with TrainConfig fields (flags below override it)")
    fit.add_argument("--arch", help="airseg-cpu, airseg-gpu, airseg-server, airseg-prior, hourglass-prior, or "
                     "mpft-cpu / mpft-prior (start from MediaPipe's weights; need the mediapipe extra)")
    fit.add_argument("--cache", help="label cache folder")
    fit.add_argument("--out", help="run folder for checkpoints, log.csv, loss.png")
    fit.add_argument("--minutes", type=float, help="time budget; the LR schedule follows elapsed time")
    fit.add_argument("--steps", type=int, help="fixed step count instead of a time budget (deterministic)")
    fit.add_argument("--batch", type=int)
    fit.add_argument("--threads", type=int)
    fit.add_argument("--seed", type=int)
    fit.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when available")
    fit.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(func=run_fit)


def _needs_torch():
    from ..errors import DanmaskError

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        raise DanmaskError("training needs the train extra: pip install 'danmask[train]'") from exc


def run_labels(args: argparse.Namespace) -> int:
    from ..errors import DatasetError, ModelError

    _needs_torch()
    from ..train.teachers import HUMAN_GROUPS, build_cache, training_samples

    data, rvm = Path(args.data), Path(args.rvm)
    if not (data / "davis-people").is_dir():
        raise DatasetError(f"{data}: expected davis-people/, coco-person/, web-people-pseudo/ and clips/ inside")
    if not rvm.is_file():
        raise ModelError(f"{rvm}: RVM teacher not found")
    n = build_cache(training_samples(data), Path(args.out), str(rvm), set(HUMAN_GROUPS), progress=not args.quiet)
    print(f"wrote {n} labelled samples to {args.out}/")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError

    _needs_torch()
    from ..train.loop import train

    cfg = fit_config(args)
    if not Path(cfg.cache).is_dir():
        raise DanmaskError(f"{cfg.cache}: no label cache; run `danmask train labels` first")
    ckpt = train(cfg, resume=args.resume, progress=not args.quiet)
    print(f"checkpoint: {ckpt}\nloss curve: {Path(cfg.out) / 'loss.png'}")
    return 0


FIT_FLAGS = ("arch", "cache", "out", "minutes", "steps", "batch", "threads", "seed", "device")  # override the file


def fit_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of `train fit`: the --config file, then any flags given on the command line."""
    from dataclasses import fields

    from ..errors import DanmaskError
    from ..models import model_names
    from ..train.augment import PriorMix
    from ..train.losses import LossConfig
    from ..train.loop import TrainConfig

    raw: dict = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
            raw.pop("note", None)  # a human-readable record of what happened to the run
        except (OSError, ValueError) as exc:
            raise DanmaskError(f"{args.config}: unreadable config ({exc})") from exc
    for name in FIT_FLAGS:
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise DanmaskError(f"unknown config keys: {', '.join(sorted(unknown))}")
    if raw.get("arch", "airseg-cpu") not in model_names():
        raise DanmaskError(f"unknown architecture '{raw['arch']}'; valid: {', '.join(model_names())}")
    try:
        if "loss" in raw:
            raw["loss"] = LossConfig(**raw["loss"])
        if "prior_mix" in raw:
            raw["prior_mix"] = PriorMix(**raw["prior_mix"])
    except TypeError as exc:  # an unknown key inside "loss" or "prior_mix"
        raise DanmaskError(f"{args.config}: {exc}") from exc
    if "val_sequences" in raw:
        raw["val_sequences"] = tuple(raw["val_sequences"])
    return TrainConfig(**raw)
