"""`danmask export`: a mask track to Bilibili's .webmask or to PNGs; a training checkpoint to ONNX."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._flags import add_output

DESCRIPTION = """\
Export a mask track (.dmask from `danmask segment`):
  --format webmask  Bilibili's .webmask (gzip segments of SVG masks), for players that speak it
  --format png      a folder of 8-bit mask PNGs named by frame index (000000.png, 000001.png, ...),
                    255 = person; frame times are in `danmask info TRACK.dmask --json`
  --people          whom the masks protect, for tracks with person layers (`danmask info` lists the ids):
                    salient (default: the stored union), all (every tracked person), or ids such as 1,3

Or export a training checkpoint (.pt / .ckpt) to ONNX for the runtime:
  --format onnx [--int8] [--register [--force]]
  (needs the train extra; prints torch-vs-ONNX parity on real frames; --register installs the model
  into the runtime registry under the output file's name, so `--model NAME` finds it; a model of that
  name already there is replaced only with --force)
"""

EPILOG = """\
examples:
  danmask export clip.dmask --format webmask -o clip.webmask
  danmask export clip.dmask --format png -o clip-masks/
  danmask export clip.dmask --format webmask --people 1,3 -o clip.webmask
  danmask export runs/airseg/best.pt --format onnx -o airseg.onnx --int8
"""

CHECKPOINT_SUFFIXES = (".pt", ".ckpt")


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a mask track (webmask, png) or a checkpoint (onnx)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="TRACK.dmask, or a checkpoint .pt/.ckpt")
    p.add_argument("-f", "--format", required=True, choices=("webmask", "png", "onnx"), help="output format")
    add_output(p, "output file (webmask, onnx) or folder (png)", required=True)
    p.add_argument("--int8", action="store_true", help="onnx only: also quantise weights to int8")
    p.add_argument("--register", action="store_true", help="onnx only: copy the model into the runtime registry")
    p.add_argument("--force", action="store_true", help="with --register: replace a registered model of that name")
    p.add_argument("--salvage", action="store_true",
                   help="track only: export the intact frames of a damaged track instead of refusing it")
    p.add_argument("--people", type=people_choice, default="salient", metavar="salient|all|ID,ID...",
                   help="track only: whom the masks protect (default salient, the stored union)")
    p.set_defaults(func=run)


def people_choice(text: str) -> str | frozenset[int]:
    """`--people`: "salient", "all" or comma-separated person ids."""
    if text in ("salient", "all"):
        return text
    try:
        ids = frozenset(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected salient, all or person ids like 1,3; got {text!r}") from None
    if min(ids) < 0:
        raise argparse.ArgumentTypeError(f"person ids are >= 0, got {text!r}")
    return ids


def run(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError

    if Path(args.input).suffix.lower() in CHECKPOINT_SUFFIXES:
        if args.format != "onnx":
            raise DanmaskError(f"{args.input}: a checkpoint exports only with --format onnx")
        if args.people != "salient":
            raise DanmaskError("--people applies to mask tracks only")
        try:
            from ..train.export import export_checkpoint
        except ModuleNotFoundError as exc:
            raise DanmaskError(f"exporting a checkpoint needs the train extra ({exc.name} is missing): "
                               "pip install 'danmask[train]'") from exc
        return export_checkpoint(args)
    if args.format == "onnx":
        raise DanmaskError(f"{args.input}: --format onnx needs a checkpoint (.pt or .ckpt), not a mask track")
    if args.int8 or args.register or args.force:
        raise DanmaskError("--int8, --register and --force apply to --format onnx only")
    from ..errors import TrackError
    from ..outputs import check_file, check_folder
    from ..track import resolve_selection
    from ..trackreader import TrackReader

    if args.format == "png":
        check_folder(args.output)
    else:
        check_file(args.output)
    try:
        track = TrackReader(args.input, salvage=args.salvage, people=args.people != "salient")
    except TrackError as exc:
        raise _with_hint(exc, args) from exc
    with track:
        for problem in track.damage:
            print(f"danmask export: warning: {args.input}: skipped {problem}", file=sys.stderr)
        try:
            resolve_selection(args.people, track.person_frames(), track.has_people)
        except TrackError as exc:
            raise TrackError(f"{args.input}: {exc}") from exc
        try:  # blocks are decoded as the frames are written: damage can show here
            if args.format == "webmask":
                from ..webmask import write_webmask

                size = write_webmask(track, args.output, args.people)
                print(f"wrote {args.output}: {len(track)} frames, {size} bytes")
            else:
                count = write_pngs(track, Path(args.output), args.people)
                print(f"wrote {count} PNG masks to {args.output}/")
        except TrackError as exc:
            raise _with_hint(exc, args) from exc
    return 0


def _with_hint(exc: Exception, args: argparse.Namespace) -> Exception:
    """A damaged track's error, saying that --salvage may still export its intact frames."""
    from ..errors import TrackError

    damaged = Path(args.input).is_file() and not args.salvage
    return TrackError(f"{exc}" + (" (--salvage exports the intact frames when the index is readable)" if damaged
                                  else ""))


def write_pngs(track, folder: Path, people="salient") -> int:
    """One 8-bit PNG per frame (the masks protecting `people`), named by frame index, in `folder` (checked by
    `outputs.check_folder`); one frame in memory at a time."""
    import cv2

    from ..outputs import write_bytes

    count = 0
    for count, (_, mask) in enumerate(track.items(people), 1):
        write_bytes(folder / f"{count - 1:06d}.png", cv2.imencode(".png", mask)[1].tobytes())
    return count
