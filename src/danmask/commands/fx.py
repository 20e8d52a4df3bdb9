"""`danmask fx NAME [EFFECT ARGS] SOURCE -o OUT.mp4`: interactive effects, one subcommand per effect, one shape."""
from __future__ import annotations

import argparse
import json
import sys

from ._argtypes import frame_size, int_at_least, int_between, positive_float
from ._flags import add_device, add_output, add_quiet, add_threads

DESCRIPTION = """\
Interactive video effects on danmask's runtime (ONNX Runtime, LiteRT; no torch), each of one shape:

  danmask fx NAME [EFFECT ARGS] SOURCE -o OUT.mp4

SOURCE is a video file (every frame, as fast as the effect goes), a camera (/dev/videoN) or a stream URL, or a
file with --realtime (played at its own frame rate: the newest frame wins and frames the effect has no time for
are dropped, as in `danmask live`). -o writes an H.264 video with each frame at its source time; a file's audio is
kept. Ctrl-C ends the run cleanly, with a complete video. A summary line goes to stderr at the end (--json: one
JSON object on stdout). Bad input is a one-line error and exit code 2.

effects:
  pose    2D keypoints of every person, tracked with ids (person-track's own), skeleton overlay
  parse   per-pixel body parts of every person (BodyPix): colour map, or the torso recoloured
  rps     rock / paper / scissors / none on every hand; --game plays against the person and keeps the score
  style   paint every frame in the style of a picture (Magenta), --strength 0..1, --stroke 0..2
  face-fuse  lay a template face onto every face (landmark-aligned warp, skin-tone table, seamless blend)
"""

EPILOG = """\
examples:
  danmask fx pose clip.mp4 -o pose.mp4 --keypoints pose.json
  danmask fx parse clip.mp4 -o parts.mp4
  danmask fx parse --effect recolour-torso --colour '#ff3030' clip.mp4 -o red.mp4
  danmask fx pose /dev/video0 -o camera.mp4 --stop-after 10
  danmask fx rps --game /dev/video0 -o game.mp4
  danmask fx style STYLE.jpg clip.mp4 --strength 0.7 --stroke 1 -o styled.mp4
  danmask fx face-fuse TEMPLATE.png clip.mp4 -o fused.mp4
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("fx", help="interactive effects: pose, body parts, rock-paper-scissors, style, face fusion",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="effect_name", metavar="NAME")
    _pose(sub)
    _parse(sub)
    _rps(sub)
    _style(sub)
    _face_fuse(sub)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _common(p: argparse.ArgumentParser) -> None:
    """What every effect takes: the source, the output and how the source is read."""
    p.add_argument("source", help="video file, /dev/videoN, a stream URL, or a file with --realtime")
    add_output(p, "output video (H.264; a file's audio is kept)", metavar="OUT.mp4", required=True)
    p.add_argument("--realtime", action="store_true",
                   help="release frames at their own times, as a stream arrives: needed for a file to be live")
    p.add_argument("--stop-after", type=positive_float, metavar="S",
                   help="stop after S seconds of the source's own time (default: when it ends, or Ctrl-C)")
    p.add_argument("--timeout", type=positive_float, default=5.0, metavar="S",
                   help="seconds to wait for a network source to open and for each read after (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's numbers at the end")
    add_threads(p)
    add_device(p)
    add_quiet(p)


def _pose(sub) -> None:
    p = sub.add_parser("pose", help="2D keypoints of every person with ids, skeleton overlay",
                       description="2D keypoints (MediaPipe Pose's 33) of every person, tracked with ids by the "
                       "person-track model\n(YOLOX-Nano finds people, the pose landmarker follows each), drawn as "
                       "skeletons with their ids.\n--keypoints writes them per frame with the frame's pts. The summary "
                       "gives the time per person.",
                       epilog="example:\n  danmask fx pose clip.mp4 -o pose.mp4 --keypoints pose.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keypoints", metavar="FILE.json",
                   help="write the keypoints per frame: {frames: [{pts, time, people: [{id, box, keypoints: "
                        "[[x, y, visibility] x 33]}]}], time_base, keypoints (names)}")
    p.add_argument("--max-people", type=int_between(1, 32), default=6, metavar="N",
                   help="people followed at once (default 6; the cost grows with each)")
    _common(p)
    p.set_defaults(func=run_pose)


def _parse(sub) -> None:
    from ..fx.parse import EFFECTS, MODELS

    p = sub.add_parser("parse", help="per-pixel body parts of every person (BodyPix), colour map or recolouring",
                       description="Per-pixel body parts of every person with BodyPix (MobileNetV1 x0.50, "
                       "stride 16; 24 parts grouped\nas head, torso, arms, hands, legs, feet) and an effect drawn "
                       "from them:\n  colour-map      tints each group\n  recolour-torso  turns the upper-body "
                       "clothes to --colour, keeping their shading\n  danmaku         flies bullet comments (-c FILE) "
                       "behind the --protect groups only (default\n                  head and hands)",
                       epilog="examples:\n  danmask fx parse clip.mp4 -o parts.mp4\n"
                              "  danmask fx parse --effect recolour-torso --colour '#ff3030' clip.mp4 -o red.mp4\n"
                              "  danmask fx parse --effect danmaku -c clip.xml --protect head,hands clip.mp4 -o out.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--effect", choices=EFFECTS, default="colour-map", help="what to draw (default colour-map)")
    p.add_argument("--colour", default="#28c8ff", metavar="#RRGGBB",
                   help="recolour-torso's colour (default #28c8ff)")
    p.add_argument("-m", "--model", default=MODELS[0], metavar="NAME_OR_ONNX",
                   help=f"the network: {' or '.join(MODELS)} (default {MODELS[0]}; student: danmask's own distilled "
                        "int8 network, docs/models/parse-student.md), or a student .onnx file")
    p.add_argument("--input-size", type=frame_size(17, 1281), default=(240, 320), metavar="WxH",
                   help="box the network's input fits in, the frame's aspect kept (default 320x240); BodyPix "
                        "rounds sides up to 16k+1 (4:3 runs at 321x241), the student to multiples of 16")
    p.add_argument("-c", "--comments", metavar="FILE",
                   help="--effect danmaku: the comment file (Bilibili XML/JSON, DPlayer v3 JSON)")
    p.add_argument("--protect", default="head,hands", metavar="GROUPS",
                   help="--effect danmaku: part groups the comments pass behind, comma-separated, from head, torso, "
                        "arms, hands, legs, feet (default head,hands)")
    p.add_argument("--font", metavar="FILE", help="--effect danmaku: font file (default: a CJK font, as render)")
    p.add_argument("--per-person", action="store_true",
                   help="find people first and parse each in their own crop: small and far people get parts too "
                        "(one more network pass per person)")
    _common(p)
    p.set_defaults(func=run_parse)


def _rps(sub) -> None:
    p = sub.add_parser("rps", help="rock / paper / scissors / none on every hand; a game against the person",
                       description="Hand landmarks (MediaPipe Hands, from the mediapipe wheel) and danmask's own "
                       "gesture classifier:\nrock, paper, scissors or none on every hand, drawn on the video. --game "
                       "plays against the\nperson: a countdown every --round seconds, danmask throws at 'shoot' "
                       "(drawn before it sees\nthe hand), the score stays on screen.",
                       epilog="examples:\n  danmask fx rps clip.mp4 -o rps.mp4\n"
                              "  danmask fx rps --game --seed 1 /dev/video0 -o game.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", action="store_true", help="play rock-paper-scissors against the person, keep score")
    p.add_argument("--round", dest="round_s", type=positive_float, default=3.0, metavar="S",
                   help="--game: seconds of each round's countdown (default 3)")
    p.add_argument("--seed", type=int_at_least(0), help="--game: danmask's throws (default: new every run)")
    p.add_argument("--max-hands", type=int_between(1, 8), default=2, metavar="N",
                   help="hands followed at once (default 2)")
    _common(p)
    p.set_defaults(func=run_rps)


def _between(low: float, high: float):
    """argparse type: a number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low:g}..{high:g} (got {text})")
        return value

    parse.__name__ = f"number in {low:g}..{high:g}"
    return parse


def _style(sub) -> None:
    p = sub.add_parser("style", help="paint every frame in the style of a picture, with strength and stroke size",
                       description="Arbitrary style transfer (Magenta, int8, shipped): every frame painted in the "
                       "style of STYLE_IMAGE.\n--strength mixes the picture's style vector with the frame's own "
                       "(0: the frame's look, 1: the full\nstyle); --stroke picks the stroke size from a pyramid "
                       "(level k paints the frame at 1/2^k of the\nnetwork's canvas: strokes 2^k times as large; "
                       "fractions blend two levels at twice the cost).",
                       epilog="example:\n  danmask fx style STYLE.jpg clip.mp4 --strength 0.7 --stroke 1 -o out.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("style", metavar="STYLE_IMAGE", help="the picture whose style is painted (PNG, JPEG, ...)")
    p.add_argument("--strength", type=_between(0.0, 1.0), default=1.0, metavar="0..1",
                   help="0 keeps the frame's own look, 1 the full style (default 1)")
    p.add_argument("--stroke", type=_between(0.0, 2.0), default=0.0, metavar="0..2",
                   help="stroke size: 0 fine, 1 twice as large, 2 four times; fractions blend (default 0)")
    p.add_argument("--paint-every", type=int_between(1, 30), default=1, metavar="N",
                   help="paint every Nth frame only, the frames between carried along by optical flow (faster; "
                        "default 1: every frame painted)")
    _common(p)
    p.set_defaults(func=run_style)


def _face_fuse(sub) -> None:
    from ..fx.face_fuse import BLENDS

    p = sub.add_parser("face-fuse", help="lay a template face onto every face, aligned by landmarks, blended",
                       description="The face of TEMPLATE.png laid onto every face of the video: MediaPipe face "
                       "mesh landmarks (468,\nsmoothed in time), a piecewise-affine warp over the template's "
                       "Delaunay triangles (drawn far to\nnear, so a turned head hides its far side), the skin "
                       "tone matched by a lookup table per channel,\nthen Poisson blending (--blend seamless) or "
                       "a soft edge (--blend feather).",
                       epilog="example:\n  danmask fx face-fuse TEMPLATE.png clip.mp4 -o fused.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("template", metavar="TEMPLATE", help="a picture with one face (PNG, JPEG, ...)")
    p.add_argument("--blend", choices=BLENDS, default="seamless",
                   help="seamless: Poisson blending (default); feather: a soft alpha edge, cheaper")
    p.add_argument("--max-faces", type=int_between(1, 8), default=2, metavar="N",
                   help="faces followed at once (default 2)")
    p.add_argument("--no-smooth", action="store_true",
                   help="do not smooth the landmarks in time (they are, by default, so video does not flicker)")
    _common(p)
    p.set_defaults(func=run_face_fuse)


def _source_options(args: argparse.Namespace, stop) -> dict:
    return {"output": args.output, "realtime": args.realtime, "timeout": args.timeout, "stop_after": args.stop_after,
            "stop": stop, "threads": args.threads, "device": args.device, "progress": not args.quiet}


def _until_ctrl_c(run):
    """Run `run(stop)` with Ctrl-C setting `stop`: the effect ends after the current frame and the video is
    finished properly (a camera has no end of its own)."""
    import signal
    import threading

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        return run(stop)
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(args: argparse.Namespace, report: dict, detail: str) -> int:
    if args.json:
        print(json.dumps(report))
    elif not args.quiet:
        dropped = f", {report['dropped']} dropped" if report["dropped"] else ""
        print(f"wrote {report['output']}: {report['frames']} frames{dropped} in {report['seconds']} s "
              f"({report['fps']} frames/s), audio: {report['audio']}; effect {report['effect_ms_per_frame']} ms per "
              f"frame; {detail}", file=sys.stderr)
    return 0


def _pose_detail(report: dict) -> str:
    follow = ", ".join(f"{n} {'person' if n == '1' else 'people'} {v['ms']} ms ({v['frames']} frames)"
                       for n, v in report["follow"].items()) or "none"
    detect = report["detect"]
    per = f"{report['ms_per_person']} ms per person" if report["ms_per_person"] is not None else "nobody followed"
    kp = f"; keypoints: {report['keypoints']}" if "keypoints" in report else ""
    return f"{per}; pose-only frames: {follow}; detector frames: {detect['frames']} ({detect['ms']} ms){kp}"


def _base(name: str, args: argparse.Namespace, result) -> dict:
    return {"effect": name, "source": args.source, "output": str(result.output), "frames": result.frames,
            "seconds": round(result.seconds, 2), "fps": round(result.fps, 1), "audio": result.audio,
            "dropped": result.dropped, "effect_ms_per_frame": round(result.ms_per_frame, 1)}


def run_pose(args: argparse.Namespace) -> int:
    from ..fx.pose import run_pose as run

    result = _until_ctrl_c(lambda stop: run(args.source, keypoints=args.keypoints, max_people=args.max_people,
                                            **_source_options(args, stop)))
    report = {**_base("pose", args, result), **result.stats.summary()}
    if args.keypoints:
        report["keypoints"] = args.keypoints
    return _report(args, report, _pose_detail(report))


def run_parse(args: argparse.Namespace) -> int:
    from ..fx.parse import run_parse as run

    result = _until_ctrl_c(lambda stop: run(args.source, effect=args.effect, colour=args.colour,
                                            input_size=args.input_size, per_person=args.per_person,
                                            comments=args.comments, protect=args.protect, font=args.font,
                                            model=args.model, **_source_options(args, stop)))
    report = {**_base("parse", args, result), "model": args.model,
              "model_ms_per_frame": round(result.model_ms, 1)}
    return _report(args, report, f"networks {report['model_ms_per_frame']} ms per frame")


def run_rps(args: argparse.Namespace) -> int:
    from ..fx.rps import run_rps as run

    result = _until_ctrl_c(lambda stop: run(args.source, game=args.game, round_s=args.round_s, seed=args.seed,
                                            max_hands=args.max_hands, **_source_options(args, stop)))
    report = {**_base("rps", args, result), **result.stats.summary()}
    if result.score is not None:
        report["score"] = result.score.to_json()
    s = report.get("score")
    game = (f"; score: you {s['player']} : {s['danmask']} danmask, {s['draws']} draws, {s['no_throw']} rounds "
            f"without a throw") if s else ""
    counts = ", ".join(f"{k} {v}" for k, v in report["gestures"].items())
    return _report(args, report, f"hands {report['hands_ms']} ms per frame; hand-frames: {counts}{game}")


def run_style(args: argparse.Namespace) -> int:
    from ..fx.style import run_style as run

    result = _until_ctrl_c(lambda stop: run(args.style, args.source, strength=args.strength, stroke=args.stroke,
                                            paint_every=args.paint_every, **_source_options(args, stop)))
    report = {**_base("style", args, result), **result.stats.summary()}
    return _report(args, report, f"transfer {report['transfer_ms']} ms per painted frame "
                                 f"({report['transfer_passes']} passes, {report['flow_frames']} frames by flow)")


def run_face_fuse(args: argparse.Namespace) -> int:
    from ..fx.face_fuse import run_face_fuse as run

    result = _until_ctrl_c(lambda stop: run(args.template, args.source, blend=args.blend, max_faces=args.max_faces,
                                            smooth=not args.no_smooth, **_source_options(args, stop)))
    report = {**_base("face-fuse", args, result), **result.stats.summary()}
    return _report(args, report, f"faces {report['faces_ms']} ms, fusing {report['fuse_ms']} ms per frame; "
                                 f"{report['face_frames']} face-frames fused")
