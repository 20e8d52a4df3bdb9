"""`danmask segment VIDEO -o OUT.dmask`: segment the people of every frame into a mask track."""
from __future__ import annotations

import argparse
import json
import sys

from ._argtypes import int_between
from ._flags import (add_output, add_people, add_quiet, add_segmentation, people_model, segmentation_options,
                     wants_people)

DESCRIPTION = """\
Segment the people in every displayed frame of VIDEO and store the masks, keyed by each frame's presentation
timestamp, in a compact mask track (.dmask; about 70-160 KB per minute of 30 fps video). The track is written
as it is made (memory stays flat however long the video): until it is complete it lives in OUT.dmask.part,
which `danmask export --salvage` reads if the run is killed.

Masks are 320 px on the long side at the video's aspect (Bilibili's webmask resolution), or --mask-size.
A damaged or truncated video still gives a track: the frames decoded before the damage are written, then
the command reports what is wrong and exits with status 2.

With --keyframe WHEN:MASK.png (repeatable) the people to protect are given instead of found: the masks on those
frames (a black-and-white PNG for one person, a DAVIS palette PNG for several ids) are carried to every other
frame, forward and backward; the track's person layers are the given ids. WHEN is a frame number (0 is the first
displayed frame) or a time in seconds (2.5s). By default (--follow people) each given mask follows the tracked
person it overlaps (person-track finds and segments everyone; DAVIS J 0.72 from the first frame's mask); with
--follow memory, danmask's space-time memory network propagates the masks themselves, which can follow anything
but is less accurate today (J 0.49, docs/models/memory-net.md).

With --refine [PASSES] the model's masks are refined afterwards without any given mask: each pass picks one key
frame a second (the mask that agrees best with its neighbours'), propagates the key frames' masks both ways with
the memory network, and fills the frames where the model lost a person seen just before and after; with
--refine-fuse mean it also averages every other frame with the propagated mask (danmask.vos.refine). It costs
about two memory-network steps per frame and pass; what each pass gains on labelled video is measured by
`python -m danmask.vos.refine_eval` (docs/models/memory-net.md).
"""

EPILOG = """\
examples:
  danmask segment clip.mp4 -o clip.dmask --model mediapipe-selfie-landscape
  danmask segment clip.mkv -o clip.dmask --json --quiet        # one JSON object on stdout
  danmask export clip.dmask --format webmask -o clip.webmask  # then ship it with the video
  danmask segment clip.mp4 -o clip.dmask --keyframe 0:dancer.png --keyframe 4.2s:dancer-later.png
  danmask segment clip.mp4 -o clip.dmask --refine 2           # person-track, then two refinement passes
  danmask segment crowd.mp4 -o crowd.dmask --everyone --max-people 8   # protect everyone, not the salient few
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("segment", help="segment the people in a video into a mask track (.dmask)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="input video (mp4, mkv, webm, mov, avi, ...: anything FFmpeg reads)")
    add_output(p, "mask track to write", metavar="OUT.dmask", required=True)
    add_segmentation(p, "segmentation model: a registry name (see `danmask models`) or an .onnx file "
                        "(default: the runtime default)")
    p.add_argument("--keyframe", action="append", metavar="WHEN:MASK.png",
                   help="protect the people masked in MASK.png on frame WHEN (number, or seconds like 2.5s): "
                        "propagated with the memory network instead of a model; repeatable")
    p.add_argument("--follow", choices=("people", "memory"), default="people",
                   help="with --keyframe: carry the given masks by the model's tracked people (default; needs a "
                        "people-tracking model such as person-track) or by the memory network")
    p.add_argument("--refine", type=int_between(1, 10), nargs="?", const=1, metavar="PASSES",
                   help="after the model, refine its masks with the memory network from key frames it chose itself "
                        "(PASSES passes, default 1; see above)")
    p.add_argument("--refine-fuse", choices=("fill", "mean"), default="fill",
                   help="with --refine: fill lost frames only, or also average every frame with the propagated "
                        "mask (default: %(default)s)")
    add_people(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's numbers")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..errors import DanmaskError, VideoError
    from ..pipeline import segment_video
    from ..runtime import DEFAULT_MODEL
    from ..segmenter import SegmenterStats

    model = args.model or DEFAULT_MODEL
    stats = SegmenterStats()
    passes: list = []
    started = time.perf_counter()
    if args.keyframe and args.refine is not None:
        raise DanmaskError("--keyframe and --refine do not go together: key frames are either given or chosen")
    people = wants_people(args)
    if people and args.keyframe and args.follow == "memory":
        raise DanmaskError("--everyone and --max-people choose whom a model follows; --follow memory uses no model")
    seg_model = people_model(model, args) if people else model
    try:
        if args.refine is not None:
            from ..vos.refine import refine_video

            track = refine_video(args.video, output=args.output, model=seg_model, passes=args.refine,
                                 fuse=args.refine_fuse, progress=not args.quiet, stats=stats, reports=passes,
                                 **segmentation_options(args))
            model = f"{model} + {args.refine} refinement pass{'es' if args.refine > 1 else ''}"
        elif args.keyframe and args.follow == "memory":
            from ..vos.keyframes import parse_keyframe, propagate_video

            model = "memory network (key frames)"
            options = segmentation_options(args)
            track = propagate_video(args.video, [parse_keyframe(k) for k in args.keyframe], output=args.output,
                                    threads=options["threads"], mask_size=options["mask_size"],
                                    progress=not args.quiet)
        elif args.keyframe:
            from ..vos.follow import follow_video
            from ..vos.keyframes import parse_keyframe

            track = follow_video(args.video, [parse_keyframe(k) for k in args.keyframe], output=args.output,
                                 model=seg_model, progress=not args.quiet, **segmentation_options(args))
            model = f"{model} people following key frames"
        else:
            track = segment_video(args.video, seg_model, output=args.output, progress=not args.quiet, stats=stats,
                                  **segmentation_options(args))
    except VideoError as exc:
        partial = getattr(exc, "partial_track", None)
        if partial is None or not len(partial):
            raise
        raise VideoError(f"{exc}; wrote the {len(partial)} frames decoded before the damage to {args.output}") from exc
    elapsed = time.perf_counter() - started
    size = Path(args.output).stat().st_size if Path(args.output).is_file() else 0
    report = {
        "video": str(args.video), "output": str(args.output), "model": model, "frames": len(track),
        "duration_s": round(track.duration_s, 3), "elapsed_s": round(elapsed, 3),
        "fps_processed": round(len(track) / elapsed, 2) if elapsed > 0 else None,
        "track_bytes": size, "kb_per_minute": round(size / 1000 / track.duration_s * 60, 1) if track.duration_s else None,
        "mask_size": [track.mask_size[1], track.mask_size[0]], "skipped_frames": stats.skipped,
        "scene_cuts": stats.cuts,
    }
    if passes:
        report["refine_passes"] = [{"key_frames": r.keys, "averaged": r.averaged, "filled": r.filled,
                                    "changed": round(r.changed, 5)} for r in passes]
        if not args.quiet:
            for number, r in enumerate(passes, 1):
                print(r.line(number), file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"wrote {args.output}: {len(track)} frames, {track.duration_s:.2f} s, {size} bytes "
              f"({report['kb_per_minute']} KB/min), {report['fps_processed']} frames/s, "
              f"{stats.skipped} skipped as still, {stats.cuts} scene cuts", file=sys.stdout)
    return 0
