"""Live figures: `python -m danmask.live.bench` plays one clip as a live stream at 480p and 720p (`run_live`,
realtime, the fast model) and reports capture-to-mask latency p50/p95 and the share of frames masked; the figures
are appended to BENCHMARKS.md with the machine and the date.

The clip is real footage (--video, else the first of LIVE_CLIPS in the shared data) scaled to each height at its own
timestamps, or, without any, a synthetic clip. Live figures depend on everything else the machine runs at the same
time (the model and the decoder share its cores with it), so each size is played --repeat times and every run is
reported, with the load average before it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import av

from ..commands._argtypes import int_at_least, positive_float
from ..errors import DanmaskError
from ..eval.bench import append_section, machine_description, shared_data_dir
from ..runtime import FAST_MODEL
from ..video import iter_frames, probe
from .session import run_live

HEIGHTS = (480, 720)
# Clips with people, in order of preference; the first two were held out from the shipped fast model's training.
LIVE_CLIPS = ("juggle.mp4", "bedroom.mp4", "bikes.mp4")


def scaled_clip(source: Path | None, height: int, seconds: float, out: Path) -> str:
    """Write the first `seconds` of `source` scaled to `height` (same aspect, even width, same pts) to `out`, or a
    synthetic clip of that height at 30 fps without a source; returns what the clip is, for the report."""
    if source is None:
        from ..synthetic import make_video

        width = round(height * 16 / 9 / 2) * 2
        make_video(out, frames=round(seconds * 30), shape=(height, width), fps=30)
        return f"synthetic {width}x{height}"
    info = probe(source)
    width = round(info.width * height / info.height / 2) * 2
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=info.avg_fps or 30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = info.time_base
        stream.options = {"crf": "18", "preset": "veryfast"}
        first = None
        for frame in iter_frames(source):
            first = frame.time if first is None else first
            if frame.time - first >= seconds:
                break
            vf = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24").reformat(width, height, "yuv420p")
            vf.pts, vf.time_base = frame.pts, frame.time_base
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    return f"{source.name} ({info.width}x{info.height}) scaled to {width}x{height}"


def with_page(clip: Path, model: str) -> dict:
    """One run with the live page open in headless Chromium: the run's summary plus what the page saw (frames
    shown, and how long after its arrival at the server each frame was on the page: same machine, same clock)."""
    import numpy as np

    from ..danmaku.browser import launch_chromium

    served: list[str] = []
    result: dict = {}

    def session() -> None:
        result["stats"] = run_live(clip, model, realtime=True, serve=True, port=0, on_serving=served.append)

    runner = threading.Thread(target=session, daemon=True)
    with launch_chromium() as browser:
        runner.start()
        while not served and runner.is_alive():
            time.sleep(0.01)
        page = browser.new_page()
        page.goto(served[0])
        runner.join()
        seen = page.evaluate("window.danmaskLive.stats")
    if "stats" not in result:
        raise DanmaskError("the live run with a page failed")
    screen = np.asarray(seen["screenMs"])
    return {**result["stats"].summary(), "page_frames": seen["shown"],
            "screen_ms_p50": round(float(np.percentile(screen, 50)), 1) if screen.size else None,
            "screen_ms_p95": round(float(np.percentile(screen, 95)), 1) if screen.size else None}


def bench_live(source: Path | None = None, seconds: float = 10.0, repeat: int = 2, model: str = FAST_MODEL,
               page: bool = False) -> dict:
    """Every run's summary (see `LiveStats.summary`) per height, with the clip and the machine; with `page`, one
    more run per height with the live page open in headless Chromium (`with_page`)."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="danmask-live-bench-") as work:
        for height in HEIGHTS:
            clip = Path(work) / f"{height}p.mp4"
            what = scaled_clip(source, height, seconds, clip)
            for run in range(repeat + page):
                load = round(os.getloadavg()[0], 2)
                summary = with_page(clip, model) if run == repeat else run_live(clip, model, realtime=True).summary()
                runs.append({"height": height, "clip": what, "load_avg_1m": load, **summary})
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": model,
            "machine": machine_description(), "runs": runs}


def markdown_section(result: dict) -> str:
    m = result["machine"]
    rows = "\n".join(
        f"| {r['clip']}{' + page' if 'page_frames' in r else ''} | {r['frames']} | {100 * r['masked_share']:.1f} % | "
        f"{r['latency_ms_p50']} | {r['latency_ms_p95']} | {r['fps']} | {_page_cell(r)} | {r['load_avg_1m']} |"
        for r in result["runs"])
    return f"""
## {result['date']}: live (`run_live`, realtime, {result['model']})

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, onnxruntime
{m['onnxruntime']}, OpenCV {m['opencv']}.
Latency runs from a frame's arrival (decoded, released at its own time) to its mask; frames the model had no time
for are dropped (the newest frame wins). Shared machine: runs vary with the load average (last column).

A "+ page" run has the live page open in headless Chromium: the frames it showed, and how long after its arrival
each frame was on the page (p50/p95: JPEG encoding, the WebSocket, decoding and drawing).

| clip | frames | masked | latency p50, ms | latency p95, ms | masks/s | page: frames, on screen p50/p95 ms | load avg |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}
"""


def _page_cell(run: dict) -> str:
    if "page_frames" not in run:
        return ""
    return f"{run['page_frames']}, {run['screen_ms_p50']} / {run['screen_ms_p95']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m danmask.live.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, help="real clip to scale (default: the shared data's clips)")
    parser.add_argument("--seconds", type=positive_float, default=10.0, help="seconds of the clip to play (default 10)")
    parser.add_argument("--repeat", type=int_at_least(1), default=2, help="runs per size (default 2)")
    parser.add_argument("-o", "--output", default="BENCHMARKS.md", help="file to append to (default BENCHMARKS.md)")
    parser.add_argument("--page", action="store_true",
                        help="one more run per size with the live page open in headless Chromium")
    parser.add_argument("--no-append", action="store_true", help="only print")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    source = args.video
    if source is None and (data := shared_data_dir()) is not None:
        source = next((data / "clips" / n for n in LIVE_CLIPS if (data / "clips" / n).is_file()), None)
    try:
        result = bench_live(source, args.seconds, args.repeat, page=args.page)
        section = markdown_section(result)
        if not args.no_append:
            append_section(Path(args.output), section)
    except DanmaskError as exc:
        print(f"danmask live bench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
