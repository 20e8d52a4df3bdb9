"""`danmask models`: what `--model` accepts, with input size, prior input and licence."""
from __future__ import annotations

import argparse
import json


GUIDE = """\
Which to pick:
  default (person-track)  the most accurate masks: people found, followed and segmented one by one, with ids;
                          about 9-18 frames per second for one person on two CPU cores (the two most
                          salient people's crops are segmented twice, as is and mirrored). For files,
                          catalogs (`segment`, `render`, `play`, `demo`).
  {fast}  one small network, a few ms per frame, on a crop around the people it found
                          (the whole frame every 0.5 s): live streams, cameras, the browser, phones. No ids.
Others are for comparison and research; peers need the mediapipe extra.

What the names mean:
  person-track  finds people (YOLOX-Nano), follows each by MediaPipe pose landmarks, segments each one's crop
  mpft-*        "MediaPipe fine-tuned": Google's selfie-segmentation net, fine-tuned by danmask on full bodies
  airseg-*      danmask's own small net, trained from scratch
  -cpu / -gpu / -server  input size and budget, not the hardware it needs: all run on a CPU. -cpu is 256x144
                (a few ms), -gpu 368x208 (about MediaPipe general's latency), -server 512x288 (offline work)
  -prior        also takes the previous frame's mask as input (steadier in time)
  mediapipe-*   Google's own models, unchanged: the peers we measure against
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the models --model accepts",
                              description="List registered models: danmask's own shipped weights and the "
                              "MediaPipe peers (extra [mediapipe]). Any .onnx exported by `danmask export` "
                              "can also be passed to --model by path. `--model default` and `--model fast` "
                              "name the two to choose between.")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime import DEFAULT_MODEL, FAST_MODEL, list_models

    for name, spec in list_models().items():
        if args.json:
            print(json.dumps({"name": name, "input_size": list(spec.input_size), "takes_prior": spec.takes_prior,
                              "backend": spec.backend, "licence": spec.licence, "default": name == DEFAULT_MODEL,
                              "fast": name == FAST_MODEL}))
        else:
            h, w = spec.input_size
            flags = ((" (default)" if name == DEFAULT_MODEL else "") + (" (fast)" if name == FAST_MODEL else "")
                     + (" [prior mask]" if spec.takes_prior else ""))
            print(f"{name:28s} {w}x{h:<5d} {spec.backend:14s} {spec.licence:11s} {spec.description}{flags}")
    if not args.json:
        print("\n" + GUIDE.format(fast=f"fast ({FAST_MODEL})".ljust(len(f"default ({DEFAULT_MODEL})"))))
    return 0
