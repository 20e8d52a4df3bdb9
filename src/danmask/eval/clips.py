"""`danmask bench --clips`: each model's time per frame on the user's own clips, models alternating clip by clip.

Model latency on one still says little about a people-tracking model, whose cost grows with the people it follows
(a crowd costs several pose passes a frame, one performer one). So each clip is run through a fresh `Segmenter` per
model, as `danmask segment` would run it, and the time of `Segmenter.step` is divided by the frames, the first
(graph set-up) left out; for models that track people, the people followed per frame are counted too.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import DanmaskError
from .bench import machine_description

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FOLDER_FPS = 30.0  # an image folder has no timestamps: frames are taken as 1/30 s apart


def clip_frames(path: Path, limit: int) -> list[tuple[np.ndarray, float]]:
    """The first `limit` frames of a video, or of a folder of images in name order, as (RGB, seconds)."""
    if not path.exists():
        raise DanmaskError(f"{path}: no such video or image folder")
    frames: Iterator[tuple[np.ndarray, float]]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DanmaskError(f"{path}: folder holds no .jpg or .png images")
        frames = ((_read_rgb(f), i / FOLDER_FPS) for i, f in enumerate(files))
    else:
        from ..video import iter_frames

        frames = ((f.rgb, f.time) for f in iter_frames(path))
    out = []
    for rgb, t in frames:
        out.append((rgb, t))
        if len(out) >= limit:
            break
    if len(out) < 2:
        raise DanmaskError(f"{path}: needs at least 2 frames to time (the first only sets the graph up)")
    return out


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DanmaskError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _load(name: str, cap: int | None, threads: int):
    """The model, its people tracker capped at `cap` people when it has one."""
    from ..runtime import load_model

    model = load_model(name, threads=threads)
    tracker = getattr(model, "tracker", None)
    if cap is not None and tracker is not None:
        tracker.config = dataclasses.replace(tracker.config, max_people=cap)
    return model


def time_clip(frames: list[tuple[np.ndarray, float]], model) -> dict:
    """ms per frame of `Segmenter.step` (first frame left out) and people followed per frame (None: no tracker)."""
    from ..segmenter import Segmenter

    seg = Segmenter(model)
    seg.step(*frames[0])
    followed, start = 0, time.perf_counter()
    for rgb, t in frames[1:]:
        seg.step(rgb, t)
        followed += len(getattr(model, "people", None) or [])
    n = len(frames) - 1
    tracks = getattr(model, "tracker", None) is not None
    return {"ms_per_frame": 1000 * (time.perf_counter() - start) / n, "people": followed / n if tracks else None}


def run_clips(clips: list[Path], models: list[str], frames: int = 90, caps: list[int] | None = None,
              threads: int = 1) -> dict:
    """Every model (and every people cap of a people-tracking model) on every clip, models alternating per clip so
    that a change of load hits them all."""
    from ..runtime import load_model

    columns: list[tuple[str, str, int | None]] = []  # (label, model, cap)
    for name in models:
        tracks = getattr(load_model(name), "tracker", None) is not None
        for cap in (caps if caps and tracks else [None]):
            columns.append((name if cap is None else f"{name} (max {cap})", name, cap))
    rows = []
    for path in clips:
        pictures = clip_frames(path, frames)
        h, w = pictures[0][0].shape[:2]
        row = {"clip": path.name, "size": [w, h], "frames": len(pictures), "models": {}}
        for label, name, cap in columns:
            row["models"][label] = time_clip(pictures, _load(name, cap, threads))
        rows.append(row)
    return {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_description(),
            "threads": threads, "columns": [c[0] for c in columns], "clips": rows}


def _cell(m: dict) -> str:
    return f"{m['ms_per_frame']:.1f}" + ("" if m["people"] is None else f" ({m['people']:.1f})")


def format_clips(r: dict) -> str:
    """The table printed by `danmask bench --clips`."""
    m = r["machine"]
    head = ["clip", "size", "frames", *r["columns"]]
    body = [[c["clip"], f"{c['size'][0]}x{c['size'][1]}", str(c["frames"]), *(_cell(c["models"][k]) for k in r["columns"])]
            for c in r["clips"]]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']} (load avg {m['load_avg_1m']}); "
             f"ms per frame of Segmenter.step at {r['threads']} thread(s), first frame left out; "
             "(people followed per frame)", ""]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in [head, *body]]
    return "\n".join(lines)


def markdown_clips(r: dict) -> str:
    """The dated section appended to BENCHMARKS.md."""
    m = r["machine"]
    head = "| clip | size | frames | " + " | ".join(r["columns"]) + " |"
    rule = "|---|---|---:|" + "---:|" * len(r["columns"])
    body = "\n".join(f"| {c['clip']} | {c['size'][0]}x{c['size'][1]} | {c['frames']} | "
                     + " | ".join(_cell(c["models"][k]) for k in r["columns"]) + " |" for c in r["clips"])
    return f"""
## {r['date']}: time per frame on given clips (`danmask bench --clips`)

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, onnxruntime
{m['onnxruntime']}, OpenCV {m['opencv']}; 1-minute load average at start {m['load_avg_1m']}.
Each clip through a fresh `Segmenter` per model, models alternating clip by clip, {r['threads']} thread(s); ms per
frame of `Segmenter.step` with the first frame (graph set-up) left out; in brackets the people followed per frame.

{head}
{rule}
{body}
"""
