"""A/B of `danmask fx pose` end to end (decode + effect + encode): the keypoints-only pose graph it ships with
against the person-track graph with its mask branch, same clips, alternating, two rounds.

    python scripts/bench-pose-graphs.py CLIP [CLIP ...]
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from danmask.fx.loop import run_effect
from danmask.fx.pose import PoseEffect, build_tracker


def main(clips: list[str], rounds: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pose.mp4"
        for rnd in range(rounds):
            for clip in clips:
                for masks in (False, True):
                    fx = PoseEffect()
                    if masks:
                        fx.tracker = build_tracker(fx.tracker.config, masks=True)
                    r = run_effect(fx, clip, out, desc="pose")
                    graph = "full graph (masks)" if masks else "keypoints-only graph"
                    print(f"round {rnd + 1}  {Path(clip).name:24s} {graph:22s} {r.frames} frames  {r.fps:5.1f} "
                          f"frames/s end to end  effect {r.ms_per_frame:.1f} ms/frame  load {os.getloadavg()[0]:.2f}",
                          flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
