"""Train the person-track path's mask refiner on the person-centred crops of `danmask.train.crops`.

MediaPipe's pose graph stays frozen (its landmarks and presence, and so every tracking decision, are exactly
MediaPipe's; its mask head is chaotic to fine-tune, see `models/refiner.py`). It runs in ONNX Runtime, several
times faster than in torch here, and only the small refiner on top is trained. `hold_out` names sequences (or
groups) that never reach training and are scored instead: leave-one-sequence-out runs are this trainer with one
DAVIS sequence held out at a time.
"""
from __future__ import annotations

import csv
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..models.refiner import MaskRefiner
from ..people.landmarks import CROP_SIDE
from .augment import photometric
from .crops import CONTEXT, STORED_SIDE
from .loop import _lr
from .losses import LossConfig, total_loss

NEGATIVE_GROUPS = ("davis-noperson", "noperson-clip")


@dataclass
class CropFitConfig:
    crops: str = "cache/crops"
    out: str = "runs/person-pose"
    tflite: str = ""  # pose_landmark_*.tflite to start from; default: pose_landmark_full in the mediapipe wheel
    steps: int = 600
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    warmup: int = 50
    groups: tuple[str, ...] = ()  # train on these groups only (default: all)
    window: int = 128  # the refiner is convolutional: it trains on a random window of each batch (4x cheaper)
    hold_out: tuple[str, ...] = ()  # sequences or groups scored, never trained on
    jitter: tuple[float, float, float] = (0.12, 0.06, 12.0)  # ROI scale, shift (of the side), rotation (degrees)
    ema: float = 0.99
    loss: LossConfig = field(default_factory=lambda: LossConfig(cluster=0.0))


@dataclass
class Crop:
    group: str
    key: str
    sequence: str
    rgb: np.ndarray
    label: np.ndarray
    ignore: np.ndarray


def load_crops(root: Path) -> list[Crop]:
    """Every crop of the cache (a few hundred MB at most), in index order."""
    with (root / "index.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    crops = []
    for r in rows:
        base = root / r["group"] / r["key"]
        rgb = cv2.imread(f"{base}.jpg")
        label = cv2.imread(f"{base}.label.png", cv2.IMREAD_GRAYSCALE)
        ignore = cv2.imread(f"{base}.ignore.png", cv2.IMREAD_GRAYSCALE)
        if rgb is None or label is None or ignore is None:
            continue
        crops.append(Crop(r["group"], r["key"], r["sequence"], cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), label, ignore))
    if not crops:
        raise FileNotFoundError(f"no crops under {root}: run `danmask train crops` first")
    return crops


def held_out(crop: Crop, names: tuple[str, ...]) -> bool:
    return crop.sequence in names or crop.group in names


def view(crop: Crop, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
         angle: float = 0.0, flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 256 px crop the runtime would see, from the stored context crop, moved by a similarity jitter."""
    c = STORED_SIDE / 2
    side = STORED_SIDE / CONTEXT * scale
    a = math.radians(angle)
    s = side / CROP_SIDE
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * s
    if flip:
        rot = rot @ np.diag([-1.0, 1.0])
    centre = np.array([c + shift[0] * side, c + shift[1] * side])
    m = np.hstack([rot, (centre - rot @ np.array([CROP_SIDE / 2, CROP_SIDE / 2]))[:, None]])
    inv = cv2.invertAffineTransform(m)
    size = (CROP_SIDE, CROP_SIDE)
    rgb = cv2.warpAffine(crop.rgb, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    label = cv2.warpAffine(crop.label, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ignore = cv2.warpAffine(crop.ignore, inv, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=255)
    return rgb, label, ignore


class CropDataset(Dataset):
    """index -> a jittered, photometrically degraded crop (seeded by index: runs are repeatable)."""

    def __init__(self, crops: list[Crop], jitter: tuple[float, float, float], seed: int = 0,
                 length: int = 10**7) -> None:
        self.crops, self.jitter, self.seed, self.length = crops, jitter, seed, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        crop = self.crops[int(rng.integers(len(self.crops)))]
        js, jt, ja = self.jitter
        rgb, label, ignore = view(crop, float(np.exp(rng.uniform(-js, js))), tuple(rng.uniform(-jt, jt, 2)),
                                  float(rng.uniform(-ja, ja)), bool(rng.random() < 0.5))
        rgb = photometric(rgb, rng)
        return {"image": torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0),
                "label": torch.from_numpy(label.astype(np.float32) / 255.0)[None],
                "valid": torch.from_numpy((ignore == 0).astype(np.float32))[None]}


def default_tflite() -> str:
    from ..runtime.litert_backend import mediapipe_file

    return str(mediapipe_file("pose_landmark", "pose_landmark_full.tflite"))


class _Segment(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.segment(x)


def frozen_session(tflite: str, folder: Path, threads: int):
    """ONNX Runtime session of the frozen pose graph's mask logits and features (exported once into `folder`)."""
    from ..models.tflite_graph import PoseLandmarkNet
    from ..runtime.onnx_backend import session

    path = folder / "pose-segment.onnx"
    if not path.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Segment(PoseLandmarkNet(tflite, mask_only=True)).eval(),
                              (torch.rand(1, 3, CROP_SIDE, CROP_SIDE),), str(path), input_names=["src"],
                              output_names=["logits", "features"], opset_version=17, dynamo=False,
                              dynamic_axes={n: {0: "batch"} for n in ("src", "logits", "features")})
    return session(str(path), threads, "cpu")


def _frozen(sess, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits, features = sess.run(["logits", "features"], {"src": images.numpy()})
    return torch.from_numpy(logits), torch.from_numpy(features)


@torch.no_grad()
def score(refiner: MaskRefiner | None, sess, crops: list[Crop]) -> dict:
    """Held-out crops, unjittered: IoU pooled per sequence (person crops), predicted fraction on negatives.
    `refiner` None scores the frozen graph alone."""
    inter: dict[str, float] = {}
    union: dict[str, float] = {}
    neg = []
    for i in range(0, len(crops), 16):
        chunk = crops[i:i + 16]
        views = [view(c) for c in chunk]
        x = torch.from_numpy(np.stack([v[0] for v in views]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        logits, features = _frozen(sess, x)
        out = refiner.eval()(x, logits, features) if refiner is not None else logits
        pred = (out[:, 0] > 0).numpy()
        for c, (_, label, ignore), p in zip(chunk, views, pred):
            valid = ignore == 0
            if c.group in NEGATIVE_GROUPS:
                neg.append(float(p[valid].mean()) if valid.any() else 0.0)
                continue
            gt = label > 127
            name = c.sequence or c.group
            inter[name] = inter.get(name, 0.0) + float((p & gt & valid).sum())
            union[name] = union.get(name, 0.0) + float(((p | gt) & valid).sum())
    ious = {k: inter[k] / union[k] for k in inter if union[k]}
    return {"mean_iou": float(np.mean(list(ious.values()))) if ious else None, "per_sequence": ious,
            "fp_frac": float(np.mean(neg)) if neg else None}


def fit(cfg: CropFitConfig, progress: bool = True) -> Path:
    """Train; returns the checkpoint (`out/last.pt`: the refiner's weights, EMA-averaged)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tflite = cfg.tflite or default_tflite()
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "tflite": tflite}, indent=2) + "\n")
    crops = load_crops(Path(cfg.crops))
    train_set = [c for c in crops if not held_out(c, cfg.hold_out) and (not cfg.groups or c.group in cfg.groups)]
    val_set = [c for c in crops if held_out(c, cfg.hold_out)]
    sess = frozen_session(tflite, out, cfg.threads)
    refiner = MaskRefiner()
    ema = AveragedModel(refiner, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    opt = torch.optim.AdamW(refiner.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = DataLoader(CropDataset(train_set, cfg.jitter, cfg.seed), batch_size=cfg.batch, num_workers=1,
                        persistent_workers=True, prefetch_factor=4)
    history = [{"step": 0, **score(None, sess, val_set)}] if val_set else []
    start = time.time()
    with (out / "log.csv").open("w", newline="") as log:
        writer = csv.writer(log)
        for step, batch in enumerate(tqdm(loader, total=cfg.steps, disable=not progress, desc="refiner"), 1):
            refiner.train()
            for g in opt.param_groups:
                g["lr"] = _lr(step - 1, step / cfg.steps, cfg.lr, cfg.warmup)
            logits, features = _frozen(sess, batch["image"])
            y0, x0 = (int(v) for v in torch.randint(0, CROP_SIDE - cfg.window + 1, (2,)))
            win = (slice(None), slice(None), slice(y0, y0 + cfg.window), slice(x0, x0 + cfg.window))
            refined = refiner(batch["image"][win], logits[win], features[win])
            loss, parts = total_loss(refined, None, batch["label"][win], batch["valid"][win], cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(refiner)
            writer.writerow([step, round(time.time() - start, 1), float(loss.detach())])
            if step >= cfg.steps:
                break
    shipped = ema.module if ema is not None else refiner
    if val_set:
        history.append({"step": cfg.steps, **score(shipped, sess, val_set)})
    path = out / "last.pt"
    torch.save({"arch": "person-pose", "tflite": tflite, "refiner": shipped.state_dict(), "config": asdict(cfg),
                "history": history}, path)
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    return path


class RefinedPose(nn.Module):
    """The pose graph with the refiner on its mask: what the person-track path ships."""

    def __init__(self, net: nn.Module, refiner: MaskRefiner) -> None:
        super().__init__()
        self.net, self.refiner = net, refiner

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        env = self.net.run(x)
        logits = self.refiner(x, env[self.net.mask_name], env[self.net.features_name])
        return env[self.net.landmarks_name].view(x.shape[0], -1, 5), env[self.net.presence_name], logits


def load_fine_tuned(path: str | Path) -> tuple[RefinedPose, dict]:
    """The shipped module (pose graph + trained refiner) of a checkpoint."""
    from ..models.tflite_graph import PoseLandmarkNet

    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    refiner = MaskRefiner()
    refiner.load_state_dict(ckpt["refiner"])
    return RefinedPose(PoseLandmarkNet(ckpt["tflite"]), refiner).eval(), ckpt
