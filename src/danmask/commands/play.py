"""`danmask play VIDEO [--comments FILE] [--track T.dmask]`: watch danmaku pass behind people in a browser."""
from __future__ import annotations

import argparse
import sys

from ._argtypes import int_between
from ._flags import add_people, add_quiet, add_segmentation, people_model, segmentation_options, wants_people

DESCRIPTION = """\
Serve a local web page that plays VIDEO with its bullet comments flying behind the people.

The page draws the comments on a canvas over the video and cuts the person out of that layer with the mask of
the frame actually on screen (requestVideoFrameCallback + a timestamp lookup in the .dmask track, decoded in the
browser). The comment layout is computed here, by the same engine as `danmask render`; the page's controls
(density, crossing time, display area) ask the server for a new layout, opacity and mask on/off are applied
in the page. Seeking works (the server answers HTTP Range requests).

Without --track the masks are computed first with --model (use `danmask segment` once to save them), or, with
--in-browser, by the page itself: the fast model (or --model, a whole-frame ONNX model) runs in the viewer's
browser with onnxruntime-web (shipped inside danmask; WebGPU when the browser has it, else WASM with threads),
followed by the same temporal stage, frame by frame as the video plays.
A video the browser cannot play (e.g. AVI, MPEG-4 Part 2) is re-encoded to H.264 first, keeping timestamps.
The server listens on 127.0.0.1 only, unless --host says otherwise; stop it with Ctrl-C.
"""

EPILOG = """\
examples:
  danmask play clip.mp4 --comments clip.xml --track clip.dmask
  danmask play clip.mp4 --comments danmaku.json --model mediapipe-selfie-landscape --port 8080 --no-browser
  danmask play clip.mp4 --comments clip.xml --in-browser
  danmask play dance.mp4 --comments dance.xml --everyone   # protect the whole troupe, not only the lead
"""


def register(subparsers) -> None:
    from ..danmaku.options import add_layout_arguments

    p = subparsers.add_parser("play", help="web player: danmaku behind people, in the browser",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="video file")
    p.add_argument("-c", "--comments", metavar="FILE", help="comment file (Bilibili XML/JSON, DPlayer v3 JSON)")
    p.add_argument("-t", "--track", metavar="TRACK.dmask", help="mask track of this video")
    p.add_argument("--no-mask", action="store_true", help="no masks at all: comments fly over everything")
    p.add_argument("--in-browser", action="store_true",
                   help="compute the masks in the browser as the video plays (no waiting; default model: fast)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_between(0, 65535), default=8765,
                   help="port (default 8765; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the address, do not open a browser")
    add_quiet(p)
    add_layout_arguments(p)
    add_segmentation(p, "model for computing masks when no --track is given (default: the runtime default); "
                        "this and the flags below apply to those masks")
    add_people(p)
    p.set_defaults(func=run)


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM. Handlers of our own: a process started in the background (`&`, a service
    manager) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def run(args: argparse.Namespace) -> int:
    import tempfile
    import webbrowser
    from pathlib import Path

    from ..danmaku.options import layout_config_from_args
    from ..danmaku.player import PlayerServer, prepare_content
    from ..errors import DanmaskError
    from ..runtime import DEFAULT_MODEL

    config = layout_config_from_args(args)
    seg = segmentation_options(args)
    model = args.model
    if wants_people(args):
        given = next((flag for flag, on in (("--track", args.track), ("--in-browser", args.in_browser),
                                            ("--no-mask", args.no_mask)) if on), None)
        if given:
            raise DanmaskError(f"--everyone and --max-people choose whom a model follows here; with {given} no model "
                               "runs here (segment with them first, then play --track)")
        model = people_model(args.model or DEFAULT_MODEL, args)
    with tempfile.TemporaryDirectory(prefix="danmask-play-") as workdir:
        content = prepare_content(
            args.video, Path(workdir), comments=args.comments, track=args.track, model=model,
            mask=not args.no_mask, config=config, font=args.font, progress=not args.quiet,
            log=lambda line: print(line, file=sys.stderr), threads=seg["threads"], device=seg["device"],
            temporal=seg["config"], mask_size=seg["mask_size"], in_browser=args.in_browser)
        with PlayerServer(content, args.host, args.port) as server:
            if args.host not in ("127.0.0.1", "localhost", "::1"):
                print(f"warning: listening on {args.host}: other machines can reach this player", file=sys.stderr)
            print(f"danmask player: {server.url}  (Ctrl-C to stop)", flush=True)
            if not args.no_browser:
                webbrowser.open(server.url)
            wait_for_stop()
            print("stopped", file=sys.stderr)
    return 0
