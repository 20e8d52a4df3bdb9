"""Effect figures beside the seed's published ones (issue 15): ms per frame and model sizes.

    python -m danmask.fx.bench [--video CLIP] [--frames 150] [--json]

- parse: BodyPix on a 320x240 frame (network alone, and the whole colour-map effect), the weights' size;
- pose: person-track's tracker + skeletons on the frames of CLIP resized to 640x360 (default: the shared
  juggle.mp4, one person), median ms per frame where only the pose model ran, the detector frames apart.

Decoding and encoding are left out (the effect alone), one thread. Not yet wired into `danmask bench`.
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
SEED = {"parse": "0.94 mIoU, 25 fps at 320x240, 1.7 MB (0.5 MB int8)", "pose": "11 ms at 320x320"}
POSE_SIZE = (360, 640)  # (h, w)


def default_clip() -> Path | None:
    for root in (os.environ.get("DANMASK_DATA"), Path(__file__).resolve().parents[3].parent / "shared" / "data"):
        if root and (Path(root) / "clips" / "juggle.mp4").is_file():
            return Path(root) / "clips" / "juggle.mp4"
    return None


def bench_parse(frames: int = 200) -> dict:
    from .bodypix import WEIGHTS
    from .parse_eval import speed

    result = speed(frames)  # a 320x240 frame
    return {**result, "weights_mb": round(WEIGHTS.stat().st_size / 1e6, 2), "seed": SEED["parse"]}


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


def markdown(result: dict) -> str:
    parse, pose = result["parse"], result.get("pose")
    rows = ["| effect | danmask (this machine, one thread) | seed (published) |", "|---|---|---|",
            f"| parse (BodyPix x0.50 s16) | network {parse['model_ms']} ms, effect {parse['effect_ms']} ms at "
            f"{parse['frame']}, {parse['weights_mb']} MB fp32 | {parse['seed']} |"]
    if pose:
        per = pose["ms_per_person"]
        rows.append(f"| pose (person-track) | median {pose['effect_ms']} ms per frame ({pose['effect_fps']} fps), "
                    f"mean {pose['effect_ms_mean']} ms ({pose['effect_fps_mean']} fps, detector frames included) at "
                    f"{pose['frame']}, {per} ms per person | {pose['seed']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from ..commands._argtypes import int_at_least

    p = argparse.ArgumentParser(prog="python -m danmask.fx.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, help="clip with people for pose (default: the shared juggle.mp4)")
    p.add_argument("--frames", type=int_at_least(10), default=150, metavar="N")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    video = args.video or default_clip()
    if args.video is not None and not args.video.is_file():
        print(f"fx.bench: error: {args.video}: video not found", file=sys.stderr)
        return 2
    result = {"load_average": [round(v, 2) for v in os.getloadavg()], "parse": bench_parse(max(args.frames, 50))}
    if video is not None:
        result["pose"] = bench_pose(video, args.frames)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result) if args.json else markdown(result) + f"\n\nload average {result['load_average']} -> "
          f"{result['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
