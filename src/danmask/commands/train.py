"""`danmask train`: make teacher labels, then fit a model (extra `[train]`, torch==2.13.0)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ._argtypes import int_at_least, positive_float
from ._flags import add_device, add_output, add_quiet, add_threads

if TYPE_CHECKING:
    from ..train.crop_fit import CropFitConfig
    from ..train.loop import TrainConfig

EPILOG = """\
A full run, as used for the shipped weights (see docs/models/):
  danmask train labels --data ../shared/data --rvm ../shared/models/rvm/rvm_mnv3_ratio1.0.onnx -o cache/labels
  danmask train fit --config configs/airseg-cpu.json
  danmask export runs/airseg-cpu/last.pt --format onnx -o airseg-cpu.onnx --register --force

The person-track path (see docs/models/person-track.md):
  danmask train convert detector ../shared/models/detectors/yolox_nano_416.onnx --register --force
  danmask train convert pose --register --force               # pose_landmark_full from the mediapipe wheel
  danmask train crops --data ../shared/data --heavy package/pose_landmark_heavy.tflite \\
      --rvm ../shared/models/rvm/rvm_mnv3_ratio1.0.onnx -o cache/crops
  danmask train fit-crops --config configs/person-pose.json
  danmask export runs/person-pose/last.pt --format onnx -o person-pose.onnx --register --force

The memory network for --keyframe and eval --vos (see docs/models/memory-net.md):
  danmask train vos --config configs/vos.json --register --force

The parse student for `danmask fx parse --model student` (see docs/models/parse-student.md):
  danmask train parse-student --labels --config configs/parse-student.json --register --force

--register refuses to replace a model that is already registered (a shipped one, say) unless --force is given.
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
    add_output(lab, "label cache folder (default: %(default)s)", metavar="DIR", default="cache/labels", dest="out",
               old=("--out",))
    add_quiet(lab)
    lab.set_defaults(func=run_labels)
    fit = sub.add_parser("fit", help="train one architecture on the label cache")
    fit.add_argument("--config", help="JSON file with TrainConfig fields (flags below override it)")
    fit.add_argument("--arch", help="architecture to train (default airseg-cpu); an unknown name is answered with "
                     "the list of them all. mpft-* start from MediaPipe's weights (need the mediapipe extra)")
    fit.add_argument("--cache", help="label cache folder")
    add_output(fit, "run folder for checkpoints, log.csv, loss.png", metavar="DIR", dest="out", old=("--out",))
    fit.add_argument("--minutes", type=positive_float, help="time budget; the LR schedule follows elapsed time")
    fit.add_argument("--steps", type=int_at_least(1), help="fixed step count instead of a time budget "
                     "(deterministic)")
    fit.add_argument("--batch", type=int_at_least(1))
    add_threads(fit, "training threads (default: the config's, 2)", default=None)
    fit.add_argument("--seed", type=int_at_least(0))
    add_device(fit, "training device; auto uses CUDA when torch has it (default: the config's, auto)", default=None)
    fit.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    add_quiet(fit)
    fit.set_defaults(func=run_fit)
    conv = sub.add_parser("convert", help="turn an Apache-2.0 upstream model into a graph the person-track path ships")
    conv.add_argument("part", choices=("detector", "pose"), help="detector: YOLOX-Nano 416 ONNX; pose: MediaPipe "
                      "pose_landmark .tflite")
    conv.add_argument("source", nargs="?", help="upstream file (pose default: pose_landmark_full.tflite from the "
                      "mediapipe wheel)")
    add_output(conv, "ONNX file to write (default: the registry's file with --register)", metavar="OUT.onnx")
    conv.add_argument("--register", action="store_true", help="write into the runtime registry (weights folder)")
    conv.add_argument("--force", action="store_true", help="with --register: replace the registered graph")
    conv.set_defaults(func=run_convert)
    crops = sub.add_parser("crops", help="person-centred training crops, framed by the runtime's own tracker")
    crops.add_argument("--data", default="../shared/data", help="folder with davis-people/, coco-person/, "
                       "web-people-pseudo/, clips/ (default: %(default)s)")
    crops.add_argument("--heavy", help="pose_landmark_heavy.tflite (npm pack @mediapipe/pose): crop teacher")
    crops.add_argument("--rvm", help="RVM teacher ONNX (rvm_mnv3_ratio1.0.onnx): whole-frame teacher")
    add_output(crops, "crop cache folder (default: %(default)s)", metavar="DIR", default="cache/crops", dest="out",
               old=("--out",))
    add_quiet(crops)
    crops.set_defaults(func=run_crops)
    fc = sub.add_parser("fit-crops", help="fine-tune the person-track path's crop segmenter (its mask head)")
    fc.add_argument("--config", help="JSON file with CropFitConfig fields (flags below override it)")
    fc.add_argument("--crops", help="crop cache folder")
    add_output(fc, "run folder", metavar="DIR", dest="out", old=("--out",))
    fc.add_argument("--steps", type=int_at_least(1), help="optimiser steps")
    fc.add_argument("--hold-out", nargs="*", metavar="SEQUENCE", help="sequences or groups kept out and scored")
    add_threads(fc, "training threads (default: the config's)", default=None)
    add_quiet(fc)
    fc.set_defaults(func=run_fit_crops)
    vos = sub.add_parser("vos", help="train the space-time memory network (--keyframe, eval --vos) and export it")
    vos.add_argument("--config", default="configs/vos.json", help="JSON file with VosTrainConfig fields "
                     "(default: %(default)s)")
    vos.add_argument("--cache", help="label cache folder (default: the config's)")
    add_run_flags(vos, "time budget", "copy the exported graphs into the shipped weights", "the shipped memory network")
    vos.set_defaults(func=run_vos)
    ps = sub.add_parser("parse-student", help="distil, prune and quantise the body-part student (fx parse --model "
                        "student)")
    ps.add_argument("--config", default="configs/parse-student.json", help="JSON file with ParseStudentConfig "
                    "fields (default configs/parse-student.json)")
    ps.add_argument("--labels", action="store_true", help="make the teacher label cache first (BodyPix + sleeve "
                    "rule, train.parse_labels)")
    ps.add_argument("--data", default="../shared/data", help="with --labels: the shared data folder")
    add_run_flags(ps, "training budget", "copy the int8 graph into the shipped weights", "the shipped student")
    ps.set_defaults(func=run_parse_student)


def add_run_flags(p: argparse.ArgumentParser, budget: str, register: str, shipped: str) -> None:
    """The flags every timed training run with an export shares: --minutes, -o, --register, --force, -q."""
    p.add_argument("--minutes", type=positive_float, help=f"{budget} (default: the config's)")
    add_output(p, "run folder (default: the config's)", metavar="DIR", dest="out")
    p.add_argument("--register", action="store_true", help=register)
    p.add_argument("--force", action="store_true", help=f"with --register: replace {shipped}")
    add_quiet(p)


def run_vos(args: argparse.Namespace) -> int:
    import shutil
    from dataclasses import replace

    from ..errors import DanmaskError, ModelError

    _needs_torch()
    from ..vos.export import GRAPHS, export
    from ..vos.propagate import WEIGHTS_DIR
    from ..outputs import check_folder
    from ..vos.train import VosTrainConfig, load, train

    if not Path(args.config).is_file():
        raise DanmaskError(f"{args.config}: config not found")
    cfg = VosTrainConfig.from_json(args.config)
    cfg = replace(cfg, **{k: v for k, v in (("cache", args.cache), ("minutes", args.minutes), ("out", args.out))
                         if v is not None})
    if args.register and (WEIGHTS_DIR / "vos.json").exists() and not args.force:
        raise ModelError("a memory network is already shipped; --force replaces it")
    check_folder(cfg.out)
    ckpt = train(cfg, progress=not args.quiet)
    out = Path(cfg.out) / "onnx"
    export(load(ckpt), out, {"trained_minutes": cfg.minutes, "config": str(args.config), "licence": "Apache-2.0"})
    if args.register:
        for name in (*GRAPHS, "vos.json"):
            shutil.copy2(out / name, WEIGHTS_DIR / name)
    print(f"wrote {ckpt} and {out}" + ("; registered" if args.register else ""))
    return 0


def run_parse_student(args: argparse.Namespace) -> int:
    import shutil

    from ..errors import DanmaskError, ModelError

    _needs_torch()
    from ..fx.parse_student import WEIGHTS
    from ..outputs import check_folder
    from ..train.parse_labels import build
    from ..train.parse_student import ParseStudentConfig, run

    if not Path(args.config).is_file():
        raise DanmaskError(f"{args.config}: config not found")
    cfg = ParseStudentConfig.from_json(args.config)
    for key in ("minutes", "out"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.register and WEIGHTS.exists() and not args.force:
        raise ModelError(f"{WEIGHTS.name} is already shipped; --force replaces it")
    check_folder(cfg.out)
    if args.labels:
        print(build(args.data, cfg.cache, progress=not args.quiet))
    result = run(cfg, progress=not args.quiet)
    if args.register:
        shutil.copy2(Path(cfg.out) / "parse-student-int8-qdq.onnx", WEIGHTS)
    print(json.dumps(result) + ("; registered" if args.register else ""))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError, ModelError
    from ..outputs import check_file
    from ..outputs import error as output_error
    from ..runtime.registry import registration_target

    _needs_torch()
    from ..train.convert import convert_detector, convert_pose
    from ..train.crop_fit import default_tflite

    if not args.output and not args.register:
        raise DanmaskError("give -o OUT.onnx or --register")
    name = "person-detector.onnx" if args.part == "detector" else "person-pose.onnx"
    registered = registration_target(name, args.force) if args.register else None
    out = check_file(args.output) if args.output else registered
    if args.part == "detector":
        if not args.source or not Path(args.source).is_file():
            raise ModelError(f"{args.source}: YOLOX-Nano ONNX file not found")
        source, convert, meta = args.source, convert_detector, {"name": "person-detector", "licence": "Apache-2.0"}
    else:
        source = args.source or default_tflite()
        if not Path(source).is_file():
            raise ModelError(f"{source}: pose_landmark .tflite not found")
        convert, meta = convert_pose, {"name": "person-pose", "licence": "Apache-2.0", "refiner": "none"}
    try:
        convert(source, out, {**meta, "origin": Path(source).name})
    except ValueError as exc:  # a file of the wrong kind, or a graph with ops the importer does not replay
        raise ModelError(str(exc) if str(source) in str(exc) else f"{source}: {exc}") from None
    except OSError as exc:  # the output could not be written (disk full, a device)
        raise output_error(out, exc) from exc
    if args.output and args.register:
        import shutil

        try:
            shutil.copy2(out, registered)
        except OSError as exc:
            raise output_error(registered, exc) from exc
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)" + (f"; registered as {name}" if args.register else ""))
    return 0


def run_crops(args: argparse.Namespace) -> int:
    from ..errors import DatasetError, ModelError
    from ..outputs import check_folder
    from ..runtime.registry import WEIGHTS_DIR

    _needs_torch()
    from ..train.crops import build_crop_cache, everyone_tracker

    data = Path(args.data)
    if not (data / "davis-people").is_dir():
        raise DatasetError(f"{data}: expected davis-people/, coco-person/, web-people-pseudo/ and clips/ inside")
    for flag in ("heavy", "rvm"):
        path = getattr(args, flag)
        if path and not Path(path).is_file():
            raise ModelError(f"{path}: --{flag} teacher not found")
    check_folder(args.out)
    tracker = everyone_tracker(str(WEIGHTS_DIR / "person-detector.onnx"), str(WEIGHTS_DIR / "person-pose.onnx"))
    n = build_crop_cache(data, Path(args.out), tracker, args.heavy, args.rvm, progress=not args.quiet)
    print(f"wrote {n} crops to {args.out}/")
    return 0


def run_fit_crops(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError
    from ..outputs import check_folder

    _needs_torch()
    from ..train.crop_fit import fit

    cfg = crop_fit_config(args)
    if not (Path(cfg.crops) / "index.csv").is_file():
        raise DanmaskError(f"{cfg.crops}: no crop cache; run `danmask train crops` first")
    check_folder(cfg.out)
    ckpt = fit(cfg, progress=not args.quiet)
    history = json.loads((Path(cfg.out) / "history.json").read_text())
    for h in history:
        print(f"step {h['step']}: held-out mean IoU {h['mean_iou']}, FP {h['fp_frac']}")
    print(f"checkpoint: {ckpt}")
    return 0


FIT_CROPS_FLAGS = ("crops", "out", "steps", "threads", "hold_out")  # override the file


def crop_fit_config(args: argparse.Namespace) -> CropFitConfig:
    """The CropFitConfig of `train fit-crops`: the --config file, then any flags given on the command line."""
    from dataclasses import fields

    from ..errors import DanmaskError
    from ..train.crop_fit import CropFitConfig
    from ..train.losses import LossConfig

    raw = _config_file(args.config)
    for name in FIT_CROPS_FLAGS:
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    unknown = set(raw) - {f.name for f in fields(CropFitConfig)}
    if unknown:
        raise DanmaskError(f"unknown config keys: {', '.join(sorted(unknown))}")
    try:
        if "loss" in raw:
            raw["loss"] = LossConfig(**raw["loss"])
    except TypeError as exc:
        raise DanmaskError(f"{args.config}: {exc}") from exc
    for key in ("hold_out", "jitter"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return CropFitConfig(**raw)


def _config_file(path: str | None) -> dict:
    """The JSON object of a --config file ({} without one), less its human-readable "note"."""
    from ..errors import DanmaskError

    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DanmaskError(f"{path}: unreadable config ({exc})") from exc
    if not isinstance(raw, dict):
        raise DanmaskError(f"{path}: a config file holds one JSON object of settings")
    raw.pop("note", None)  # a human-readable record of what happened to the run
    return raw


def _needs_torch():
    from ..errors import DanmaskError

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        raise DanmaskError("training needs the train extra: pip install 'danmask[train]'") from exc


def run_labels(args: argparse.Namespace) -> int:
    from ..errors import DatasetError, ModelError
    from ..outputs import check_folder

    _needs_torch()
    from ..train.teachers import HUMAN_GROUPS, build_cache, training_samples

    data, rvm = Path(args.data), Path(args.rvm)
    if not (data / "davis-people").is_dir():
        raise DatasetError(f"{data}: expected davis-people/, coco-person/, web-people-pseudo/ and clips/ inside")
    if not rvm.is_file():
        raise ModelError(f"{rvm}: RVM teacher not found")
    check_folder(args.out)
    n = build_cache(training_samples(data), Path(args.out), str(rvm), set(HUMAN_GROUPS), progress=not args.quiet)
    print(f"wrote {n} labelled samples to {args.out}/")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError
    from ..outputs import check_folder

    _needs_torch()
    from ..train.loop import train

    cfg = fit_config(args)
    if not Path(cfg.cache).is_dir():
        raise DanmaskError(f"{cfg.cache}: no label cache; run `danmask train labels` first")
    check_folder(cfg.out)
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

    raw = _config_file(args.config)
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
