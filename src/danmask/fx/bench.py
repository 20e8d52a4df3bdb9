"""Effect figures beside the seed's published ones (issue 15): ms per frame and model sizes.

    python -m danmask.fx.bench [--video CLIP] [--face-video CLIP] [--frames 150] [--json]
    danmask bench --effects          (the same, with a dated section appended to BENCHMARKS.md)

- parse: BodyPix and danmask's own int8 student on a 320x240 frame (network alone, and the whole colour-map
  effect), the weights' sizes;
- pose: person-track's tracker + skeletons on the frames of CLIP resized to 640x360 (default: the shared
  juggle.mp4, one person), median ms per frame where only the pose model ran, the detector frames apart;
- rps: hands + gestures on the same 640x360 frames;
- style: the first frame of CLIP at 320x240, stroke 0 (one transfer pass) and 0.5 (two);
- face-fuse: the frames of the face clip (default: the shared carphone_pristine.mp4, 176x144, letterboxed into
  640x360 at 440x360), template: its own first frame mirrored.

Decoding and encoding are left out (the effect alone), one thread.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

# Published by the seed (AliPlayStudio), as issue 15 quotes them
SEED = {"parse": "0.94 mIoU, 25 fps at 320x240, 1.7 MB (0.5 MB int8)", "pose": "11 ms at 320x320",
        "rps": "detector 1.9 MB, 17 ms", "style": "0.99 MB network, continuous brush size (no speed quoted)",
        "face-fuse": "landmark alignment, pose-aware warp, skin-tone LUT (no figures quoted)"}
POSE_SIZE = (360, 640)  # (h, w)
STYLE_SIZE = (240, 320)


def default_clip(name: str = "juggle.mp4") -> Path | None:
    for root in (os.environ.get("DANMASK_DATA"), Path(__file__).resolve().parents[3].parent / "shared" / "data"):
        if root and (Path(root) / "clips" / name).is_file():
            return Path(root) / "clips" / name
    return None


def _mb(*paths: Path) -> float:
    return round(sum(Path(p).stat().st_size for p in paths) / 1e6, 2)


def _frames(video: str | Path, frames: int, size: tuple[int, int], letterbox: bool = False) -> list:
    """The first `frames` frames of `video` at (h, w) `size` (letterboxed: aspect kept, black bars)."""
    from ..video import iter_frames

    h, w = size
    out = []
    for frame in itertools.islice(iter_frames(video), frames):
        if letterbox:
            fh, fw = frame.rgb.shape[:2]
            scale = min(h / fh, w / fw)
            nw, nh = round(fw * scale), round(fh * scale)
            rgb = np.zeros((h, w, 3), np.uint8)
            x, y = (w - nw) // 2, (h - nh) // 2
            rgb[y:y + nh, x:x + nw] = cv2.resize(frame.rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
        else:
            rgb = cv2.resize(frame.rgb, (w, h), interpolation=cv2.INTER_AREA)
        out.append((rgb, frame))
    return out


def _timed(fx, frames: list) -> dict:
    whole = []
    for rgb, frame in frames:
        t0 = time.perf_counter()
        fx.apply(rgb.copy(), frame)
        whole.append((time.perf_counter() - t0) * 1000)
    ms, mean = (float(np.median(whole)), float(np.mean(whole))) if whole else (0.0, 0.0)
    return {"frames": len(whole), "effect_ms": round(ms, 1), "effect_fps": round(1000 / ms, 1) if ms else None,
            "effect_ms_mean": round(mean, 1), "effect_fps_mean": round(1000 / mean, 1) if mean else None}


def bench_rps(video: str | Path, frames: int = 150) -> dict:
    from .rps import RpsEffect
    from .rps_model import WEIGHTS
    from .tflite import wheel_file

    fx = RpsEffect()
    h, w = POSE_SIZE
    result = _timed(fx, _frames(video, frames, POSE_SIZE))
    models = [wheel_file("palm_detection", "palm_detection_lite.tflite"),
              wheel_file("hand_landmark", "hand_landmark_lite.tflite")]
    return {"video": str(video), "frame": f"{w}x{h}", **result, **fx.stats.summary(),
            "palm_detections": fx.tracker.detections, "models_mb": _mb(*models), "classifier_mb": _mb(WEIGHTS),
            "seed": SEED["rps"]}


def bench_style(video: str | Path, frames: int = 10) -> dict:
    from .style import PREDICT, TRANSFER_ONNX, StyleEffect

    clip = _frames(video, 1, STYLE_SIZE)
    rgb, frame = clip[0]
    style = cv2.resize(rgb, (256, 256))[:, ::-1]  # any picture will do for timing: the frame mirrored
    out = {"frame": f"{STYLE_SIZE[1]}x{STYLE_SIZE[0]}", "predict_mb": _mb(PREDICT), "transfer_mb": _mb(TRANSFER_ONNX),
           "seed": SEED["style"]}
    for stroke in (0.0, 0.5):
        fx = StyleEffect(style, stroke=stroke)
        out[f"stroke_{stroke:g}"] = _timed(fx, [(rgb, frame)] * frames)
    return out


def bench_face_fuse(video: str | Path, frames: int = 120) -> dict:
    from .face_fuse import FaceFuseEffect
    from .tflite import wheel_file

    from ..errors import DanmaskError

    clip = _frames(video, frames, POSE_SIZE, letterbox=True)
    template = np.ascontiguousarray(clip[0][0][:, ::-1])
    try:
        FaceFuseEffect(template)
    except DanmaskError:
        return {"video": str(video), "skipped": "no face in its first frame", "seed": SEED["face-fuse"]}
    out = {"video": str(video), "frame": f"{POSE_SIZE[1]}x{POSE_SIZE[0]} (letterboxed)", "seed": SEED["face-fuse"],
           "models_mb": _mb(wheel_file("face_detection", "face_detection_short_range.tflite"),
                            wheel_file("face_landmark", "face_landmark.tflite"))}
    for blend in ("seamless", "feather"):
        fx = FaceFuseEffect(template, blend=blend)
        out[blend] = {**_timed(fx, clip), **fx.stats.summary()}
    return out


def bench_parse(frames: int = 200) -> dict:
    from .bodypix import WEIGHTS
    from .parse_eval import speed

    result = speed(frames)  # a 320x240 frame
    return {**result, "weights_mb": round(WEIGHTS.stat().st_size / 1e6, 2), "seed": SEED["parse"]}


def bench_parse_student(frames: int = 200) -> dict:
    from .parse_eval import speed
    from .parse_student import WEIGHTS

    result = speed(frames, model="student")  # a 320x240 frame
    return {**result, "weights_mb": round(WEIGHTS.stat().st_size / 1e6, 3), "seed": SEED["parse"]}


def bench_pose(video: str | Path, frames: int = 150) -> dict:
    """Median ms per frame of the pose effect on the first `frames` frames of `video` at 640x360."""
    from ..video import iter_frames
    from .pose import PoseEffect

    fx = PoseEffect()
    h, w = POSE_SIZE
    whole = []
    for frame in itertools.islice(iter_frames(video), frames):
        rgb = cv2.resize(frame.rgb, (w, h), interpolation=cv2.INTER_AREA)
        t0 = time.perf_counter()
        fx.apply(rgb, frame)
        whole.append((time.perf_counter() - t0) * 1000)
    ms = float(np.median(whole)) if whole else 0.0
    mean = float(np.mean(whole)) if whole else 0.0  # detector frames included
    return {"video": str(video), "frame": f"{w}x{h}", "frames": len(whole), "effect_ms": round(ms, 1),
            "effect_fps": round(1000 / ms, 1) if ms else None, "effect_ms_mean": round(mean, 1),
            "effect_fps_mean": round(1000 / mean, 1) if mean else None, **fx.stats.summary(), "seed": SEED["pose"]}


def run_effects(video: str | Path | None = None, face_video: str | Path | None = None, frames: int = 150) -> dict:
    """Every effect's figures (the ones whose clip is missing are left out), with the load average around."""
    from datetime import datetime, timezone

    video = video or default_clip()
    face_video = face_video or default_clip("carphone_pristine.mp4")
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "load_average": [round(v, 2) for v in os.getloadavg()], "parse": bench_parse(max(frames, 50)),
              "parse-student": bench_parse_student(max(frames, 50))}
    if video is not None:
        result["pose"] = bench_pose(video, frames)
        result["rps"] = bench_rps(video, frames)
        result["style"] = bench_style(video, max(2, frames // 15))
    if face_video is not None:
        result["face-fuse"] = bench_face_fuse(face_video, min(frames, 120))
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def markdown(result: dict) -> str:
    parse, pose = result["parse"], result.get("pose")
    rows = ["| effect | danmask (this machine, one thread) | seed (published) |", "|---|---|---|",
            f"| parse (BodyPix x0.50 s16) | network {parse['model_ms']} ms, effect {parse['effect_ms']} ms at "
            f"{parse['frame']}, {parse['weights_mb']} MB fp32 | {parse['seed']} |"]
    if "parse-student" in result:
        r = result["parse-student"]
        rows.append(f"| parse (danmask student, pruned int8) | network {r['model_ms']} ms, effect {r['effect_ms']} ms "
                    f"at {r['frame']}, {r['weights_mb']} MB int8 | {r['seed']} |")
    if pose:
        per = pose["ms_per_person"]
        rows.append(f"| pose (person-track) | median {pose['effect_ms']} ms per frame ({pose['effect_fps']} fps), "
                    f"mean {pose['effect_ms_mean']} ms ({pose['effect_fps_mean']} fps, detector frames included) at "
                    f"{pose['frame']}, {per} ms per person | {pose['seed']} |")
    if "rps" in result:
        r = result["rps"]
        rows.append(f"| rps (MediaPipe Hands lite + our MLP) | median {r['effect_ms']} ms per frame ({r['effect_fps']} "
                    f"fps), mean {r['effect_ms_mean']} ms ({r['effect_fps_mean']} fps) at {r['frame']}; hand models "
                    f"{r['models_mb']} MB + classifier {r['classifier_mb']} MB | {r['seed']} |")
    if "style" in result:
        r = result["style"]
        a, b = r["stroke_0"], r["stroke_0.5"]
        rows.append(f"| style (Magenta: int8 style net, float transfer net) | {a['effect_ms']} ms per frame ({a['effect_fps']} fps) at {r['frame']}, "
                    f"stroke 0 (one pass); {b['effect_ms']} ms ({b['effect_fps']} fps) at stroke 0.5 (two passes); "
                    f"{r['predict_mb']} MB style (int8) + {r['transfer_mb']} MB transfer network (fp32) | {r['seed']} |")
    if "face-fuse" in result and "skipped" in result["face-fuse"]:
        r = result["face-fuse"]
        rows.append(f"| face-fuse | not measured: {r['video']}: {r['skipped']} | {r['seed']} |")
    elif "face-fuse" in result:
        r = result["face-fuse"]
        a, b = r["seamless"], r["feather"]
        rows.append(f"| face-fuse (MediaPipe face mesh) | {a['effect_ms']} ms per frame ({a['effect_fps']} fps) "
                    f"seamless, {b['effect_ms']} ms ({b['effect_fps']} fps) feather, at {r['frame']}, one face "
                    f"(landmarks {a['faces_ms']} ms); face models {r['models_mb']} MB | {r['seed']} |")
    return "\n".join(rows)


def format_effects(result: dict) -> str:
    """The table for the terminal (`danmask bench --effects`)."""
    return markdown(result) + f"\n\nload average {result['load_average']} -> {result['load_average_after']}"


def markdown_effects(result: dict) -> str:
    """The dated section appended to BENCHMARKS.md."""
    from ..eval.bench import machine_description

    m = machine_description()
    return f"""
## {result['date']}: interactive effects (`danmask bench --effects`)

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, onnxruntime
{m['onnxruntime']}; load average {result['load_average']} at the start, {result['load_average_after']} at the end.
The effect alone per frame (decoding and encoding left out), one thread; pose and rps on the first frames of
{result.get('pose', {}).get('video', 'no clip')} resized to 640x360, style at 320x240, face-fuse on
{result.get('face-fuse', {}).get('video', 'no clip')} letterboxed into 640x360. Seed figures as issue 15 quotes
them (other hardware: phones).

{markdown(result)}

```json
{json.dumps(result)}
```
"""


def main(argv: list[str] | None = None) -> int:
    from ..commands._argtypes import int_at_least

    p = argparse.ArgumentParser(prog="python -m danmask.fx.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, help="clip with people for pose (default: the shared juggle.mp4)")
    p.add_argument("--face-video", type=Path, help="clip with a face (default: the shared carphone_pristine.mp4)")
    p.add_argument("--frames", type=int_at_least(10), default=150, metavar="N")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    for given in (args.video, args.face_video):
        if given is not None and not given.is_file():
            print(f"fx.bench: error: {given}: video not found", file=sys.stderr)
            return 2
    result = run_effects(args.video, args.face_video, args.frames)
    print(json.dumps(result) if args.json else format_effects(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
