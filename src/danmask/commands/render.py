"""`danmask render VIDEO --comments FILE [--track T.dmask] -o OUT.mp4`: burn danmaku in, behind the people."""
from __future__ import annotations

import argparse
import sys

from ._argtypes import int_between
from ._flags import (add_output, add_people, add_quiet, add_segmentation, people_model, segmentation_options,
                     wants_people)

DESCRIPTION = """\
Burn bullet comments (danmaku) into a video so that they pass behind the people in it.

The comments are laid out once (lanes, start/end, speed: the same schedule the web player uses), drawn with a
CJK font, and composited outside the person mask of each frame: pixels inside the mask stay exactly the source
frame's (before encoding). The mask of a frame is looked up by the frame's own timestamp in --track, or computed
on the fly with --model when no track is given. Timestamps are kept (variable frame rate survives) and the audio
is copied (or re-encoded to AAC when the output container cannot hold it).

Comment files: Bilibili XML (<d p="time,mode,size,color,...">), Bilibili-style JSON, DPlayer v3 JSON.
"""

EPILOG = """\
examples:
  danmask segment clip.mp4 -o clip.dmask && danmask render clip.mp4 --comments clip.xml --track clip.dmask -o out.mp4
  danmask render clip.mp4 --comments danmaku.json --model mediapipe-selfie-landscape -o out.mp4 --area 0.5
"""


def register(subparsers) -> None:
    from ..danmaku.options import add_layout_arguments

    p = subparsers.add_parser("render", help="burn danmaku into a video, behind the people",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="input video (anything FFmpeg reads)")
    p.add_argument("-c", "--comments", required=True, metavar="FILE", help="comment file (XML or JSON)")
    p.add_argument("-t", "--track", metavar="TRACK.dmask", help="mask track of this video (from `danmask segment`)")
    add_output(p, "output video file", metavar="OUT.mp4", required=True)
    p.add_argument("--crf", type=int_between(0, 51), default=18, help="x264 quality 0..51, lower is better "
                   "(default 18)")
    add_quiet(p)
    add_layout_arguments(p)
    add_segmentation(p, "segmentation model when no --track is given (default: the runtime default, see "
                        "`danmask models`); this and the flags below apply to masks computed on the fly")
    add_people(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..danmaku.comments import load_comments
    from ..danmaku.options import layout_config_from_args
    from ..danmaku.render import render_video
    from ..errors import DanmaskError
    from ..runtime import DEFAULT_MODEL

    config = layout_config_from_args(args)
    loaded = load_comments(args.comments)
    if not args.quiet:
        print(f"comments: {loaded.summary()}", file=sys.stderr)
    seg = segmentation_options(args)
    model = args.model
    if wants_people(args):
        if args.track:
            raise DanmaskError("--everyone and --max-people choose whom a model follows; with --track the masks are "
                               "given (segment with them instead, or export --people all)")
        model = people_model(args.model or DEFAULT_MODEL, args)
    result = render_video(args.video, loaded.comments, args.output, track=args.track, model=model,
                          config=config, font=args.font, threads=seg["threads"], device=seg["device"],
                          temporal=seg["config"], mask_size=seg["mask_size"], crf=args.crf, progress=not args.quiet)
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(result.schedule.dropped.items())) or "none"
    print(f"wrote {result.output}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} frames/s), "
          f"{len(result.schedule.placements)} comments shown, dropped: {dropped}, masks: {result.mask_source}, "
          f"audio: {result.audio}")
    return 0
