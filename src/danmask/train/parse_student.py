"""The parse student: a small UNet-style network distilled from the parse teachers (`train.parse_labels`), then
channel-pruned and quantised to int8, for `danmask fx parse --model student`.

    danmask train parse-student --config configs/parse-student.json [--minutes M] [--register]
    python -m danmask.train.parse_student --config configs/parse-student.json

Steps (each writes into the run folder): train (cross-entropy on the teacher's labels, an L1 pull on the hidden
channels' BN scales so pruning has channels to drop), prune (the hidden channels of the inverted-residual blocks
with the smallest BN scales, their constant output folded into the next BN), fine-tune, export the float graphs,
quantise the pruned one to int8 (static, calibrated on training crops) and measure agreement with the teacher on
the held-out split. Torch lives here only; the runtime (`fx.parse_student`) runs the ONNX files.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .augment import crop_resize, photometric

CLASSES = 7  # background + fx.bodypix.GROUPS
# (in, out, stride, expansion) of the encoder's inverted-residual blocks, before the width multiplier
ENCODER = ((16, 24, 2, 3), (24, 24, 1, 3), (24, 32, 2, 3), (32, 32, 1, 3), (32, 64, 2, 3), (64, 64, 1, 3),
           (64, 64, 1, 3))
SKIP_AT = (1, 3)  # encoder blocks whose output feeds the decoder (1/4 and 1/8); the stem gives 1/2
DECODER = ((64, 32, 2), (32, 24, 2), (24, 16, 2))  # (in, out, expansion): 1/16 -> 1/8 -> 1/4 -> 1/2


def _ch(c: int, width: float) -> int:
    return max(8, int(round(c * width / 4)) * 4)


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 project (MobileNetV2); `hidden` channels are the prunable ones."""

    def __init__(self, cin: int, cout: int, stride: int, hidden: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
        self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.residual else y


class ParseStudent(nn.Module):
    """(N, 3, H, W) RGB 0..255 (H, W multiples of 16) -> (N, 7, H/2, W/2) logits. Normalisation is in the graph."""

    def __init__(self, width: float = 1.0, hidden: list[int] | None = None, classes: int = CLASSES) -> None:
        super().__init__()
        enc = [(_ch(i, width), _ch(o, width), s, e) for i, o, s, e in ENCODER]
        dec = [(_ch(i, width), _ch(o, width), e) for i, o, e in DECODER]
        default_hidden = [i * e for i, _, _, e in enc] + [o * e for _, o, e in dec]
        self.hidden = list(hidden or default_hidden)
        if len(self.hidden) != len(default_hidden):
            raise ValueError(f"hidden: {len(default_hidden)} numbers needed, got {len(self.hidden)}")
        stem = enc[0][0]
        self.width = width
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.encoder = nn.ModuleList(InvertedResidual(i, o, s, h) for (i, o, s, _), h in zip(enc, self.hidden))
        skips = [enc[k][1] for k in reversed(SKIP_AT)] + [stem]  # 1/8, 1/4, 1/2
        self.lateral = nn.ModuleList(nn.Sequential(nn.Conv2d(s, o, 1, bias=False), nn.BatchNorm2d(o))
                                     for s, (_, o, _) in zip(skips, dec))
        self.reduce = nn.ModuleList(nn.Sequential(nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o))
                                    for i, o, _ in dec)
        self.decoder = nn.ModuleList(InvertedResidual(o, o, 1, h) for (_, o, _), h in zip(dec, self.hidden[len(enc):]))
        self.head = nn.Conv2d(dec[-1][1], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * (1 / 127.5) - 1
        x = self.stem(x)
        skips = [x]
        for k, block in enumerate(self.encoder):
            x = block(x)
            if k in SKIP_AT:
                skips.append(x)
        for reduce, lateral, block, skip in zip(self.reduce, self.lateral, self.decoder, reversed(skips)):
            x = F.interpolate(reduce(x), size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = block(F.relu(x + lateral(skip)))
        return self.head(x)

    def blocks(self) -> list[InvertedResidual]:
        return [*self.encoder, *self.decoder]


def create_student(width: float = 1.0, hidden: list[int] | None = None) -> ParseStudent:
    """The factory: `width` scales every layer; `hidden` (from pruning) overrides the blocks' hidden channels."""
    return ParseStudent(width, hidden)


# ---------------------------------------------------------------------------------------------------- pruning
def prune(net: ParseStudent, ratio: float, keep_min: float = 0.25) -> ParseStudent:
    """A copy with `ratio` of all hidden channels removed, smallest depthwise-BN |gamma| first (one global
    threshold, each block keeping at least `keep_min` of its channels). A removed channel's output is the constant
    relu(beta): its contribution through the projection is folded into the projection BN's running mean."""
    scores = torch.cat([b.dw[1].weight.detach().abs() for b in net.blocks()])
    threshold = scores.kthvalue(max(1, int(len(scores) * ratio))).values
    keeps = []
    for b in net.blocks():
        g = b.dw[1].weight.detach().abs()
        keep = torch.nonzero(g > threshold).flatten()
        least = max(4, int(math.ceil(len(g) * keep_min)))
        if len(keep) < least:
            keep = g.argsort(descending=True)[:least].sort().values
        keeps.append(keep)
    small = create_student(net.width, [len(k) for k in keeps])
    small.load_state_dict({k: v for k, v in net.state_dict().items()
                           if not any(k.startswith(p) for p in ("encoder.", "decoder."))}, strict=False)
    for old, new, keep in zip(net.blocks(), small.blocks(), keeps):
        _copy_block(old, new, keep)
    return small


def _copy_block(old: InvertedResidual, new: InvertedResidual, keep: torch.Tensor) -> None:
    with torch.no_grad():
        new.expand[0].weight.copy_(old.expand[0].weight[keep])
        _copy_bn(old.expand[1], new.expand[1], keep)
        new.dw[0].weight.copy_(old.dw[0].weight[keep])
        _copy_bn(old.dw[1], new.dw[1], keep)
        w = old.project[0].weight[:, :, 0, 0]
        new.project[0].weight.copy_(old.project[0].weight[:, keep])
        new.project[1].load_state_dict(old.project[1].state_dict())
        gone = torch.ones(w.shape[1], dtype=torch.bool)
        gone[keep] = False
        bn = old.dw[1]
        const = torch.relu(bn.bias[gone] - bn.weight[gone] * bn.running_mean[gone] /
                           torch.sqrt(bn.running_var[gone] + bn.eps))  # the removed channels' output, any input
        new.project[1].running_mean.sub_(w[:, gone] @ const)


def _copy_bn(old: nn.BatchNorm2d, new: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name).copy_(getattr(old, name)[keep])


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class ParseStudentConfig:
    cache: str = "/work/cache/parse-student"
    out: str = "runs/parse-student"
    width: float = 1.0
    crop: tuple[int, int] = (192, 256)  # (h, w) training crops; the network is fully convolutional
    zoom: tuple[float, float] = (0.6, 1.6)  # crop size / the 320x240-fitted frame: > 1 shrinks the people
    batch: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    minutes: float = 30.0  # training budget (cosine schedule over elapsed time)
    prune_ratio: float = 0.4
    finetune_minutes: float = 8.0
    slim: float = 1e-4  # L1 weight on the hidden channels' BN scales
    class_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.5, 2.0, 1.0, 2.0)
    threads: int = 1
    seed: int = 0
    calibration: int = 32
    notes: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: str | Path) -> "ParseStudentConfig":
        raw = json.loads(Path(path).read_text())
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


RUNTIME_BOX = (240, 320)  # the store box is 1.5x this (`parse_labels.STORE_BOX`)
STORE_SCALE = 1.5


def sample(item: tuple, cfg: ParseStudentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (rgb, label) crop: zoom relative to the runtime's scale, random position, flip, colour."""
    _, rgb, label = item
    ch, cw = cfg.crop
    # crop_resize's zoom is relative to the largest crop of the output aspect; make it relative to runtime scale
    h, w = rgb.shape[:2]
    base = min(h / ch, w / cw)
    lo, hi = (z * STORE_SCALE / base for z in cfg.zoom)  # stored pixels per crop pixel: 1.5 = runtime scale
    img, lab = crop_resize([rgb, label], cfg.crop, rng, zoom=(lo, hi))
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    return photometric(np.ascontiguousarray(img), rng), np.ascontiguousarray(lab)


def batches(items: list, cfg: ParseStudentConfig, rng: np.random.Generator):
    while True:
        order = rng.permutation(len(items))
        for start in range(0, len(items) - cfg.batch + 1, cfg.batch):
            pairs = [sample(items[i], cfg, rng) for i in order[start:start + cfg.batch]]
            x = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).float()
            y = torch.from_numpy(np.stack([p[1] for p in pairs])).long()
            yield x, y


def loss_fn(net: ParseStudent, x: torch.Tensor, y: torch.Tensor, cfg: ParseStudentConfig) -> torch.Tensor:
    logits = F.interpolate(net(x), size=y.shape[1:], mode="bilinear", align_corners=False)
    ce = F.cross_entropy(logits, y, weight=torch.tensor(cfg.class_weights), ignore_index=255)
    slim = sum(b.dw[1].weight.abs().sum() for b in net.blocks())
    return ce + cfg.slim * slim


def fit(net: ParseStudent, items: list, cfg: ParseStudentConfig, minutes: float, lr: float, log: Path,
        progress: bool = True) -> ParseStudent:
    """Train for `minutes` (cosine learning rate over elapsed time); one line per 20 steps into `log`."""
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    net.train()
    t0, step, running = time.time(), 0, []
    with open(log, "a") as f:
        for x, y in batches(items, cfg, rng):
            frac = (time.time() - t0) / (minutes * 60)
            if frac >= 1:
                break
            for g in opt.param_groups:
                g["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / 50)
            loss = loss_fn(net, x, y, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running.append(loss.item())
            step += 1
            if step % 20 == 0:
                line = f"{step} {time.time() - t0:.0f}s loss {np.mean(running):.4f} lr {opt.param_groups[0]['lr']:.2e}"
                f.write(line + "\n")
                f.flush()
                if progress:
                    print(line, file=sys.stderr, flush=True)
                running = []
    net.eval()
    net.steps = step
    return net


def export(net: ParseStudent, out: Path, meta: dict) -> Path:
    """ONNX with input `src` (1, 3, H, W) RGB 0..255 float (H, W multiples of 16, dynamic) and output `logits`
    (1, 7, H/2, W/2); the metadata key 'danmask' holds `meta`."""
    import onnx

    net = net.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, (torch.rand(1, 3, *RUNTIME_BOX) * 255,), str(out), input_names=["src"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"src": {2: "h", 3: "w"}, "logits": {2: "h2", 3: "w2"}})
    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = "danmask", json.dumps(meta)
    onnx.save(model, str(out))
    return out


def quantize(fp32: Path, out: Path, calibration: list[np.ndarray], fmt: str = "qdq") -> Path:
    """Static int8: uint8 activations, int8 per-channel weights, calibrated on `calibration` (H, W, 3) crops."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"src": x.transpose(2, 0, 1)[None].astype(np.float32)}

    pre = out.with_name(out.stem + "-pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(out), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    pre.unlink()
    import onnx

    src, model = onnx.load(str(fp32)), onnx.load(str(out))
    del model.metadata_props[:]
    model.metadata_props.extend(src.metadata_props)
    onnx.save(model, str(out))
    return out


def run(cfg: ParseStudentConfig, progress: bool = True) -> dict:
    """The whole recipe (see the module doc); returns what was written and measured."""
    from .parse_labels import load

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    cv2.setNumThreads(1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    items = load(Path(cfg.cache) / "train.pkl")
    net = create_student(cfg.width)
    params = sum(p.numel() for p in net.parameters())
    net = fit(net, items, cfg, cfg.minutes, cfg.lr, out / "train.log", progress)
    torch.save({"width": cfg.width, "hidden": net.hidden, "model": net.state_dict()}, out / "float.pt")
    meta = {"name": "parse-student", "classes": ["background", "head", "torso", "arms", "hands", "legs", "feet"],
            "input": "src (1,3,H,W) RGB 0..255, H and W multiples of 16", "output": "logits (1,7,H/2,W/2)",
            "licence": "Apache-2.0", "teacher": "BodyPix x0.50 s16 + skin/clothes/hair sleeve rule"}
    export(net, out / "parse-student-float.onnx", {**meta, "variant": "float", "steps": net.steps})
    small = prune(net, cfg.prune_ratio)
    export(small, out / "parse-student-pruned-nofinetune.onnx", {**meta, "variant": "pruned, not fine-tuned"})
    small = fit(small, items, cfg, cfg.finetune_minutes, cfg.lr / 3, out / "finetune.log", progress)
    torch.save({"width": cfg.width, "hidden": small.hidden, "model": small.state_dict()}, out / "pruned.pt")
    pruned = export(small, out / "parse-student-pruned.onnx",
                    {**meta, "variant": "pruned", "hidden": small.hidden, "steps": small.steps})
    rng = np.random.default_rng(cfg.seed + 1)
    calib = [cv2.resize(items[i][1], (RUNTIME_BOX[1], RUNTIME_BOX[0]), interpolation=cv2.INTER_AREA)
             for i in rng.choice(len(items), cfg.calibration, replace=False)]
    for fmt in ("qdq", "qop"):
        quantize(pruned, out / f"parse-student-int8-{fmt}.onnx", calib, fmt)
    return {"params_float": params, "params_pruned": sum(p.numel() for p in small.parameters()),
            "hidden_float": net.hidden, "hidden_pruned": small.hidden, "steps": net.steps,
            "finetune_steps": small.steps, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m danmask.train.parse_student", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/parse-student.json")
    p.add_argument("--minutes", type=float)
    p.add_argument("--out")
    args = p.parse_args(argv)
    cfg = ParseStudentConfig.from_json(args.config)
    for k in ("minutes", "out"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    print(json.dumps(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
