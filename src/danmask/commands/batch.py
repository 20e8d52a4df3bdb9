"""`danmask batch INPUT... -o DIR`: segment a catalog of videos on Ray (run_batch mirrored)."""
from __future__ import annotations

import argparse
import json

from ._argtypes import int_at_least, positive_float
from ._flags import add_mask_size, add_model, add_output, add_quiet, add_threads

DESCRIPTION = """\
Segment every video of INPUT (video files, folders of videos, or .txt/.lst files with one path per line) on Ray:
a local Ray by default, or a cluster with --address. Each video gives DIR/NAME.dmask, DIR/NAME.webmask and a row
in DIR/manifest.jsonl (input, output, webmask, frames, seconds, video_seconds, model, status, error).

Videos longer than 1.5 x --part-seconds are cut at keyframes into parts that run on several workers at once;
each part starts --overlap seconds early to warm the temporal state, and the parts are joined by pts into the
same frames as one uninterrupted run. Killed and rerun with the same command, it skips finished videos and
parts and redoes the rest; outputs appear under their final names only when complete. A bad video fails its own
row and the others go on; the command then ends with status 2.
"""

EPILOG = """\
examples:
  danmask batch films/ -o masks/ --model fast --workers 2
  danmask batch catalog.txt -o masks/ --address auto
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("batch", help="segment many videos on Ray (local or a cluster), resumable",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video, folder of videos, or list file (.txt, .lst)")
    add_output(p, "output folder (created if missing)", metavar="DIR", required=True)
    add_model(p, "segmentation model for every video (default: the runtime default)")
    p.add_argument("--address", metavar="A", help="Ray cluster to use: auto, or ray://HOST:PORT (default: start a local Ray)")
    p.add_argument("--workers", type=int_at_least(1), metavar="N", help="CPUs of the local Ray (default: all)")
    p.add_argument("--part-seconds", type=positive_float, default=60.0, metavar="S",
                   help="length of the parts long videos are cut into (default 60)")
    p.add_argument("--overlap", type=positive_float, default=2.0, metavar="S",
                   help="warm-up seconds segmented before each cut and dropped (default 2)")
    add_threads(p, "inference threads per task (default 1)")
    add_mask_size(p)
    p.add_argument("--json", action="store_true", help="print the manifest rows as JSON lines")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..batch.run import MANIFEST, run_batch
    from ..errors import DanmaskError
    from ..runtime import DEFAULT_MODEL

    rows = run_batch(args.inputs, args.output, model=args.model or DEFAULT_MODEL, address=args.address,
                     workers=args.workers, part_s=args.part_seconds, overlap_s=args.overlap, threads=args.threads,
                     mask_size=args.mask_size, progress=not args.quiet)
    failed = [r for r in rows if r["status"] != "done"]
    if args.json:
        print("\n".join(json.dumps(r) for r in rows))
    else:
        print(f"{len(rows) - len(failed)} of {len(rows)} videos done; manifest: {args.output}/{MANIFEST}")
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise DanmaskError(f"{len(failed)} of {len(rows)} videos failed: {failed[0]['error']}{more}")
    return 0
