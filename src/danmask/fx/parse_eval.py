"""Measure `danmask fx parse`: mIoU of the part groups on human-parsing labels (CIHP layout), and its speed.

    python -m danmask.fx.parse_eval ../shared/data/cihp-samples [--model bodypix|student] [--weights ONNX]
        [--input-size 320x240] [--per-person] [--json]
    python -m danmask.fx.parse_eval --speed [--model student] [--frames 200] [--per-person]
    python -m danmask.fx.parse_eval --agreement /work/cache/parse-student/heldout.pkl --model student

CIHP's 20 labels are mapped onto BodyPix's groups (`CIHP_TO_GROUP`). CIHP has no hand class (its arms include the
hands; gloves are their own class), so for scoring arms and hands are one class, "arms". IoU per class is summed
over the whole set (intersection and union over all images, not averaged per image); mIoU is their mean over the
parts (background left out) and, separately, with background.

The folder: images/<id>.jpg and parsing/<id>.png (L, CIHP labels 0..19).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from .bodypix import DEFAULT_BOX, GROUPS

# Scored classes: 0 background, then the groups with arms and hands merged
CLASSES = ("background", "head", "torso", "arms", "legs", "feet")
# our groups (0 background, 1..6 = GROUPS) -> scored class
GROUP_TO_CLASS = np.array([0, 1, 2, 3, 3, 4, 5], np.uint8)
assert GROUPS == ("head", "torso", "arms", "hands", "legs", "feet")
# CIHP: 0 background, 1 hat, 2 hair, 3 glove, 4 sunglasses, 5 upper-clothes, 6 dress, 7 coat, 8 socks, 9 pants,
# 10 torso-skin, 11 scarf, 12 skirt, 13 face, 14 left-arm, 15 right-arm, 16 left-leg, 17 right-leg, 18 left-shoe,
# 19 right-shoe. A dress is scored as torso (BodyPix calls the upper body torso and the legs under a skirt legs).
CIHP_TO_CLASS = np.array([0, 1, 1, 3, 1, 2, 2, 2, 4, 4, 2, 2, 4, 1, 3, 3, 4, 4, 5, 5], np.uint8)


def confusion(pred: np.ndarray, truth: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """(n, n) counts, rows = truth, columns = prediction."""
    return np.bincount(truth.astype(np.int64).ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)


def ious(conf: np.ndarray) -> np.ndarray:
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def make_model(model: str = "bodypix", weights: str | Path | None = None, input_size: tuple[int, int] = DEFAULT_BOX,
               threads: int = 1):
    """The parse network by name (`fx.parse.MODELS`); `weights` picks another student ONNX file (e.g. the float
    or pruned graph of a training run)."""
    from .parse import create_parser

    if weights is not None:
        if model != "student":
            raise DatasetError("--weights goes with --model student")
        from .parse_student import ParseStudent

        return ParseStudent(input_size=input_size, threads=threads, path=weights)
    return create_parser(model, input_size=input_size, threads=threads)


def evaluate(folder: str | Path, input_size: tuple[int, int] = DEFAULT_BOX, threads: int = 1,
             per_person: bool = False, model: str = "bodypix", weights: str | Path | None = None) -> dict:
    """{"images", "iou": {class: IoU}, "miou_parts", "miou_with_background", "person_iou"} on a CIHP-layout folder.

    Raises:
        DatasetError: no images/ with matching parsing/ labels.
    """
    folder = Path(folder)
    pairs = [(p, folder / "parsing" / f"{p.stem}.png") for p in sorted((folder / "images").glob("*.jpg"))]
    pairs = [(i, label) for i, label in pairs if label.is_file()]
    if not pairs:
        raise DatasetError(f"{folder}: needs images/<id>.jpg with parsing/<id>.png (CIHP layout)")
    name = model
    model = make_model(model, weights, input_size, threads)
    if per_person:
        from .crops import PersonCrops

        runner = PersonCrops(model, threads=threads)
    conf = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    for image, label in pairs:
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        truth = CIHP_TO_CLASS[cv2.imread(str(label), cv2.IMREAD_GRAYSCALE)]
        pred = GROUP_TO_CLASS[runner.parts(rgb) if per_person else model.parts(rgb, truth.shape)]
        conf += confusion(pred, truth)
    iou = ious(conf)
    person = conf[1:, 1:].sum() / (conf.sum() - conf[0, 0])
    return {"images": len(pairs), "model": name, **({"weights": str(weights)} if weights else {}),
            "input_box": f"{input_size[1]}x{input_size[0]}", "per_person": per_person,
            "iou": {c: round(float(v), 3) for c, v in zip(CLASSES, iou)},
            "miou_parts": round(float(np.nanmean(iou[1:])), 3),
            "miou_with_background": round(float(np.nanmean(iou)), 3),
            "person_iou": round(float(person), 3)}


def agreement(cache: str | Path, model: str = "student", weights: str | Path | None = None,
              input_size: tuple[int, int] = DEFAULT_BOX, threads: int = 1) -> dict:
    """IoU per group (all 7 classes, hands separate) of the network against the teacher's labels on a held-out
    label cache (`train.parse_labels`: a pickle of (name, rgb, label)); mIoU over the 6 groups."""
    import pickle

    with open(cache, "rb") as f:
        items = pickle.load(f)
    net = make_model(model, weights, input_size, threads)
    names = ("background", *GROUPS)
    conf = np.zeros((len(names), len(names)), np.int64)
    for _, rgb, label in items:
        conf += confusion(net.parts(rgb, label.shape), label, len(names))
    iou = ious(conf)
    return {"images": len(items), "model": model, **({"weights": str(weights)} if weights else {}),
            "iou": {c: round(float(v), 3) for c, v in zip(names, iou)},
            "miou_parts": round(float(np.nanmean(iou[1:])), 3), "miou_with_background": round(float(np.nanmean(iou)), 3)}


def speed(frames: int = 200, size: tuple[int, int] = (240, 320), threads: int = 1, per_person: bool = False,
          model: str = "bodypix", weights: str | Path | None = None) -> dict:
    """Median ms per frame of (h, w) `size` (BodyPix's input box is the default, so 320x240 runs at 321x241):
    the network alone, and the whole colour-map effect (resize in,
    network, decode, drawing), on a real-looking synthetic frame. Decoding and encoding video excluded."""
    from ..synthetic import person_frame
    from .parse import ParseEffect

    rgb, _ = person_frame(size)
    net = make_model(model, weights, size, threads) if weights is not None else model
    fx = ParseEffect(input_size=size, threads=threads, per_person=per_person, model=net)
    whole = []
    for _ in range(frames):
        t0 = time.perf_counter()
        fx.apply(rgb.copy())
        whole.append((time.perf_counter() - t0) * 1000)
    skip = min(10, frames // 10)  # warm-up
    return {"frame": f"{size[1]}x{size[0]}", "model": model, **({"weights": str(weights)} if weights else {}),
            "frames": frames, "threads": threads, "per_person": per_person,
            "model_ms": round(float(np.median(fx.stats.model_ms[skip:])), 2),
            "effect_ms": round(float(np.median(whole[skip:])), 2)}


def main(argv: list[str] | None = None) -> int:
    from ..commands._argtypes import frame_size, int_at_least

    p = argparse.ArgumentParser(prog="python -m danmask.fx.parse_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", help="CIHP-layout folder (images/, parsing/)")
    p.add_argument("--input-size", type=frame_size(17, 1281), default=(240, 320), metavar="WxH",
                   help="BodyPix's input box (default 320x240); with --speed also the frame's size")
    p.add_argument("--model", choices=("bodypix", "student"), default="bodypix", help="the network (default bodypix)")
    p.add_argument("--weights", help="with --model student: another student ONNX file (float, pruned)")
    p.add_argument("--speed", action="store_true", help="time the effect at 320x240 instead")
    p.add_argument("--agreement", metavar="PKL", help="IoU against the teacher on a held-out label cache instead")
    p.add_argument("--frames", type=int_at_least(10), default=200, metavar="N")
    p.add_argument("--threads", type=int_at_least(1), default=1, metavar="N")
    p.add_argument("--per-person", action="store_true", help="parse person by person (detector crops)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.speed:
        result = speed(args.frames, args.input_size, args.threads, args.per_person, args.model, args.weights)
    elif args.agreement:
        result = agreement(args.agreement, args.model, args.weights, args.input_size, args.threads)
    elif args.folder:
        try:
            result = evaluate(args.folder, args.input_size, args.threads, args.per_person, args.model, args.weights)
        except DatasetError as exc:
            print(f"parse_eval: error: {exc}", file=sys.stderr)
            return 2
    else:
        p.error("give a folder, or --speed")
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
