"""`danmask bench`: model latency, pipeline speed, scene-cut cost and mask sizes, as ratios to references."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import DanmaskError
from ._argtypes import int_at_least, int_between
from ._flags import add_deprecated_alias, add_model, add_output

DESCRIPTION = """\
Measure, in one run and each against a reference timed in the same run:
  - model latency (median `predict` on a 720p frame at 1 and 2 threads) vs mediapipe-selfie-landscape;
  - the whole pipeline (segment_video streaming a .dmask from a 720p clip) vs decoding the same clip only;
  - the scene-cut detector's cost per frame, as a share of a pipeline frame;
  - .dmask and .webmask bytes per minute of video, vs the clip itself and Bilibili's sample webmask;
  - the person-track path's time per frame with 1, 2, 4 and 8 people on screen, vs one person;
  - the web player's frame rate with 300 comments on screen vs none (headless Chromium, if installed).
With --scale, instead: peak memory of a 10-minute vs a 1-minute 720p video, `danmask batch` with 1 and 2
workers vs a loop of `danmask segment`, CPU per frame and the cluster for 10,000 hours a day, and the load test of
`danmask serve` (see danmask.eval.scale; several minutes).
With --in-browser, instead: masks computed in the web player by onnxruntime-web in headless Chromium on a 640x360
clip (frames segmented per second while it plays, the model alone) vs the same model in Python, same run.
With --clips PATH [PATH ...], instead: each model's time per frame on those videos or image folders (the first
--frames frames), as `danmask segment` runs it, models alternating clip by clip, with the people a people-tracking
model followed per frame; --caps 4,2,1 times such a model once per cap on the number of people (default models:
the default, the fast one and MediaPipe Pose heavy where DANMASK_MEDIAPIPE_POSE makes it loadable).
With --effects, instead: every `danmask fx` effect's ms per frame and model sizes beside the seed's published
figures (danmask.fx.bench; about a minute).
The 720p clip is real footage (--video, else $DANMASK_DATA/clips or ../shared/data/clips; letterboxed), else
synthetic.
A dated section with the machine description is appended to BENCHMARKS.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="speed and size benchmarks vs references; appends to BENCHMARKS.md",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "model to time; repeat (default: every registered model that loads)", repeat=True)
    p.add_argument("--pipeline-model", metavar="NAME_OR_ONNX",
                   help="model for the whole-pipeline run (default: danmask's default model, else the reference)")
    p.add_argument("--video", type=Path, help="real video to letterbox to 720p (default: a clip from the shared data)")
    add_deprecated_alias(p, "--clip", dest="video", instead="--video", type=Path)
    p.add_argument("--synthetic", action="store_true", help="use a synthetic 720p clip even when real footage exists")
    p.add_argument("--frames", type=int_at_least(1), default=150, help="frames of the 720p clip; with --clips, the first N frames of each (default 150)")
    p.add_argument("--runs", type=int_at_least(1), default=200, help="timed predict calls per model and thread count")
    p.add_argument("--warmup", type=int_at_least(0), default=20, help="untimed predict calls first (default 20)")
    p.add_argument("--repeat", type=int_at_least(1), default=3, help="pipeline and decode runs; the median counts (default 3)")
    p.add_argument("--no-player", action="store_true",
                   help="skip the web player's frame rate (300 comments vs none, headless Chromium)")
    p.add_argument("--no-people", action="store_true", help="skip the person-track cost per number of people")
    p.add_argument("--scale", action="store_true",
                   help="the catalog figures instead: memory, batch, cluster cost, serve load (minutes)")
    p.add_argument("--in-browser", action="store_true",
                   help="the in-browser figures instead: the fast model in headless Chromium vs Python (a minute)")
    p.add_argument("--effects", action="store_true",
                   help="the `danmask fx` figures instead: ms per frame and model sizes beside the seed's (a minute)")
    p.add_argument("--clips", type=Path, nargs="+", metavar="PATH",
                   help="time per frame on these videos or image folders instead (see above)")
    p.add_argument("--caps", type=people_caps, metavar="N,N",
                   help="with --clips: time each people-tracking model once per cap on the people followed")
    p.add_argument("--face-video", type=Path, metavar="CLIP",
                   help="with --effects: a clip with a face for face-fuse (default: the shared carphone clip)")
    p.add_argument("--long-minutes", type=int_at_least(2), default=10, metavar="MIN",
                   help="with --scale: minutes of the long video whose peak memory is compared (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_output(p, "file to append the dated section to (default ./BENCHMARKS.md)", metavar="FILE.md",
               default="BENCHMARKS.md")
    p.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.bench import append_section, format_table, markdown_section, run_bench
    from ..outputs import check_file
    from ..runtime import FAST_MODEL

    for video in (args.video, args.face_video):
        if video is not None and not video.is_file():
            raise DanmaskError(f"{video}: video not found")
    if not args.no_append:
        check_file(args.output)
    if args.caps and not args.clips:
        raise DanmaskError("--caps goes with --clips")
    if args.clips:
        from ..eval.clips import format_clips, markdown_clips, run_clips

        result = run_clips(args.clips, args.model or _clip_models(), frames=args.frames, caps=args.caps)
        table, section = format_clips, markdown_clips
    elif args.scale:
        from ..eval.scale import format_scale, markdown_scale, run_scale

        result = run_scale(long_minutes=args.long_minutes)
        table, section = format_scale, markdown_scale
    elif args.effects:
        from ..fx.bench import format_effects, markdown_effects, run_effects

        result = run_effects(args.video, args.face_video, frames=args.frames)
        table, section = format_effects, markdown_effects
    elif args.in_browser:
        from ..eval.inbrowser import format_inbrowser, markdown_inbrowser, run_inbrowser

        result = run_inbrowser(args.video, model=args.model[0] if args.model else FAST_MODEL)
        table, section = format_inbrowser, markdown_inbrowser
    else:
        result = run_bench(models=args.model, pipeline_model=args.pipeline_model, clip=args.video,
                           frames=args.frames, runs=args.runs, warmup=args.warmup, repeat=args.repeat,
                           synthetic=args.synthetic, player=not args.no_player, people=not args.no_people)
        table, section = format_table, markdown_section
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    if not args.no_append:
        append_section(Path(args.output), section(result))
        print(f"appended to {args.output}", file=sys.stderr)
    return 0


def people_caps(text: str) -> list[int]:
    """--caps: comma-separated caps on the people followed, e.g. 4,2,1."""
    parse = int_between(1, 32)
    return [parse(part) for part in text.split(",")]


def _clip_models() -> list[str]:
    """The default, the fast model and MediaPipe Pose heavy, the peer of the default's time, where it loads."""
    from ..errors import ModelError
    from ..runtime import DEFAULT_MODEL, FAST_MODEL, load_model

    models = [DEFAULT_MODEL, FAST_MODEL]
    try:
        load_model("mediapipe-pose-heavy")
        models.append("mediapipe-pose-heavy")
    except ModelError as exc:
        print(f"danmask bench: note: MediaPipe Pose heavy left out ({exc})", file=sys.stderr)
    return models
