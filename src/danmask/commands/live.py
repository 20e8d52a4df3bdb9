"""`danmask live SOURCE`: danmaku behind the people of a camera, a live stream, or a file played in real time."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ._argtypes import int_between, positive_float
from ._flags import add_output, add_quiet, add_segmentation, segmentation_options

if TYPE_CHECKING:
    from ..live import LiveStats

DESCRIPTION = """\
Segment the people of a live source as it arrives and show bullet comments flying behind them.

SOURCE is a camera (/dev/video0, through FFmpeg's v4l2 input), a stream URL (udp://, rtp://, rtsp://, rtmp://,
srt://, or http(s):// HLS), or a video file with --realtime (played at its own frame rate, by its timestamps, as
a stream arrives). Real time by construction: a thread reads the source and keeps only the newest frame, the model
always takes the newest one and the frames it had no time for are dropped, so lag never builds up. The fast model
is the default; the temporal stage is on (scene cuts reset it, and so do jumps in the stream's timestamps).

--serve opens the live page (on 127.0.0.1 unless --host says otherwise): the picture and its mask reach the page
together over a WebSocket, so the comments pass behind the people of the very frame on screen; viewers post
comments there and every open page shows them at once. -o writes the stream with the danmaku burned in.

Progress goes to stderr; --json prints one object at the end: frames (decoded), masked, dropped, latency_ms_p50
and latency_ms_p95 (from a frame's arrival to its mask), fps (masks per second), and more. Ctrl-C ends the run
cleanly with that summary. A source that cannot be opened, or a stream that stops, is a one-line error (exit 2).
"""

EPILOG = """\
examples:
  danmask live /dev/video0 --serve                      # camera, page at http://127.0.0.1:8767/
  danmask live udp://127.0.0.1:5000 --serve -o live.mp4 # MPEG-TS over UDP (e.g. ffmpeg ... -f mpegts udp://...)
  danmask live clip.mp4 --realtime --json               # a file, as if it were live: latency and frames masked
"""


def register(subparsers) -> None:
    from ..danmaku.options import add_layout_arguments

    p = subparsers.add_parser("live", help="danmaku behind people on a camera or live stream, with a live page",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="/dev/videoN, a stream URL, or a video file with --realtime")
    p.add_argument("--realtime", action="store_true",
                   help="release frames at their own times, as a stream arrives: needed for a file; also paces an "
                        "HLS VOD playlist, which otherwise downloads as fast as it can")
    p.add_argument("--serve", action="store_true", help="serve the live page with a comment box")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_between(0, 65535), default=8767, help="port (default 8767; 0 picks a free one)")
    p.add_argument("--comment-rate", default="5/10", metavar="N/SECONDS",
                   help="comments one client may post per window (default 5/10)")
    add_output(p, "also write the stream with the danmaku burned in: a video file, or OUT.m3u8 for an HLS playlist "
                  "that grows as the stream goes", metavar="OUT.mp4")
    p.add_argument("-c", "--comments", metavar="FILE",
                   help="comments to show from the start (Bilibili XML/JSON, DPlayer v3 JSON; times from the first "
                        "frame)")
    p.add_argument("--stop-after", type=positive_float, metavar="S",
                   help="stop after S seconds of the source's own time (default: when it ends, or Ctrl-C)")
    p.add_argument("--timeout", type=positive_float, default=5.0, metavar="S",
                   help="seconds to wait for a network source to open and for each read after (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's numbers at the end")
    add_quiet(p)
    add_segmentation(p, "segmentation model: a registry name (see `danmask models`) or an .onnx file "
                        "(default: fast)")
    add_layout_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..danmaku.options import layout_config_from_args
    from ..errors import DanmaskError
    from ..runtime import FAST_MODEL
    from .serve import comment_rate

    if args.serve:
        try:
            import uvicorn  # noqa: F401
            import websockets  # noqa: F401
        except ModuleNotFoundError as exc:
            raise DanmaskError(f"--serve needs the serve extra ({exc.name} is missing): "
                               "pip install 'danmask[serve]'") from exc
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"danmask live: warning: listening on {args.host}: other machines can reach the page",
                  file=sys.stderr)
    from ..live import run_live

    comments = ()
    if args.comments:
        from ..danmaku.comments import load_comments

        comments = tuple(load_comments(args.comments).comments)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C ends the run with its summary
    show = not args.quiet and sys.stderr.isatty()
    try:
        stats = run_live(
            args.source, args.model or FAST_MODEL, realtime=args.realtime, serve=args.serve, host=args.host,
            port=args.port, output=args.output, comments=comments, layout=layout_config_from_args(args),
            font=args.font, duration=args.stop_after, timeout=args.timeout,
            comment_rate=comment_rate(args.comment_rate), stop=stop,
            on_serving=lambda url: print(f"danmask live: page at {url}  (Ctrl-C to stop)", file=sys.stderr,
                                         flush=True),
            progress=_progress if show else None, **segmentation_options(args))
    finally:
        signal.signal(signal.SIGINT, previous)
        if show:
            print(file=sys.stderr)
    report = {"source": args.source, "model": args.model or FAST_MODEL, **stats.summary()}
    if args.output:
        report["output"] = args.output
    if args.json:
        print(json.dumps(report))
    elif not args.quiet:
        print(_line(report), file=sys.stderr)
    return 0


def _line(report: dict) -> str:
    return (f"{report['frames']} frames, {report['masked']} masked, {report['dropped']} dropped; latency "
            f"p50 {report['latency_ms_p50']} ms, p95 {report['latency_ms_p95']} ms; {report['fps']} masks/s")


def _progress(stats: LiveStats) -> None:
    print(f"\r{_line(stats.summary())}", end="", file=sys.stderr, flush=True)
