"""In-browser masks, measured: `danmask bench --in-browser` plays a 640x360 clip in the player in headless Chromium
with the masks computed by the page (onnxruntime-web + temporal.js), and times the same model in Python on the same
frames, in the same run.

Figures: frames segmented per second while the video plays (capped by the clip's own frame rate; frames that
arrive while the model is busy are dropped, the newest wins), the page's time per frame (read, model, temporal
stage), the model alone back to back in the browser, and the model alone and the whole Segmenter in Python.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..runtime import FAST_MODEL
from .bench import machine_description, shared_data_dir

SHAPE = (360, 640)
# Real clips with people at >= 25 fps first (the bar is 25 frames segmented per second; a 24 fps clip caps it).
CLIPS = ("bedroom.mp4", "juggle.mp4", "bikes.mp4")
# The page's settings compared in each run: no masks (the video alone), the default threads (half the cores),
# two threads.
VARIANTS = ("masks=off", "", "threads=2")
_PAGE_JS = """async (seconds) => {
  const video = document.getElementById('video');
  const stats = window.danmaskPlayer.stats;
  const seg = window.danmaskPlayer.state.segmenter;
  video.muted = true;
  await video.play();
  await new Promise((r) => setTimeout(r, 1000));  // warm up
  const s0 = { ...stats }, g0 = seg && { ...seg.stats }, t0 = performance.now();
  const span = Math.min(seconds, video.duration - video.currentTime - 0.3);  // only while the clip plays
  await new Promise((r) => setTimeout(r, span * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  video.pause();
  if (!seg) return { seconds: elapsed, video_fps: (stats.frames - s0.frames) / elapsed, backend: null };
  const segmented = stats.segmented - s0.segmented, passes = seg.stats.passes - g0.passes;
  // the model alone, back to back, on the frame now on screen
  const rgba = seg.read(video);
  for (let i = 0; i < 5; i++) await seg.infer(rgba);
  const times = [];
  for (let i = 0; i < 60; i++) {
    const t = performance.now();
    await seg.infer(rgba);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    seconds: elapsed,
    video_fps: (stats.frames - s0.frames) / elapsed,
    segmented_fps: segmented / elapsed,
    dropped: stats.segmentDropped - s0.segmentDropped,
    step_ms_mean: segmented ? (stats.segmentMs - s0.segmentMs) / segmented : null,
    infer_ms_mean: passes ? (seg.stats.inferMs - g0.inferMs) / passes : null,
    skipped: seg.stats.skipped - g0.skipped,
    model_ms_median: times[times.length >> 1],
    backend: seg.backend, threads: seg.threads, isolated: self.crossOriginIsolated,
  };
}"""


def browser_figures(clip: Path, seconds: float, model: str, query: str = "") -> dict:
    """Play `clip` in the player with in-browser masks for `seconds` in headless Chromium; see _PAGE_JS.
    `query`: the page's options (`threads=N`, `backend=wasm|webgpu`, `masks=off`)."""
    from ..danmaku.browser import launch_chromium
    from ..danmaku.player import prepare_content, PlayerServer

    with tempfile.TemporaryDirectory(prefix="danmask-inbrowser-") as work:
        content = prepare_content(clip, Path(work), in_browser=True, model=model)
        with PlayerServer(content) as server, launch_chromium() as browser:
            page = browser.new_page()
            page.goto(server.url + ("?" + query if query else ""))
            deadline = time.monotonic() + 120
            while page.evaluate("() => document.documentElement.dataset.ready") != "1":
                error = page.evaluate("() => document.documentElement.dataset.error || null")
                if error or time.monotonic() > deadline:
                    raise RuntimeError(f"player page failed: {error or 'not ready in 120 s'}")
                time.sleep(0.1)
            result = page.evaluate(_PAGE_JS, seconds)
            result["browser"] = browser.version
            return result


def python_figures(clip: Path, model: str, runs: int = 60) -> dict:
    """The same model in Python on the same clip: `predict` alone (median, 1 and 2 threads) and the Segmenter's
    whole step (model + temporal stage) per frame."""
    from ..runtime import load_model
    from ..segmenter import Segmenter
    from ..video import iter_frames

    frames = list(iter_frames(clip))
    out: dict = {}
    for threads in (1, 2):
        seg_model = load_model(model, threads=threads, device="cpu")
        rgb = frames[len(frames) // 2].rgb
        for _ in range(5):
            seg_model.predict(rgb)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            seg_model.predict(rgb)
            times.append(1000 * (time.perf_counter() - t))
        out[f"model_ms_median_{threads}t"] = float(np.median(times))
    segmenter = Segmenter(load_model(model, threads=1, device="cpu"))
    started = time.perf_counter()
    for frame in frames:
        segmenter.step(frame.rgb, frame.time)
    out["step_ms_mean"] = 1000 * (time.perf_counter() - started) / len(frames)
    out["frames"] = len(frames)
    return out


def run_inbrowser(source: Path | None = None, seconds: float = 10.0, model: str = FAST_MODEL,
                  variants: tuple[str, ...] = VARIANTS) -> dict:
    """Both sides on one 640x360 clip (real footage when there is some, else synthetic), one after the other:
    the page once per entry of `variants`, then Python."""
    from ..live.bench import scaled_clip

    if source is None and (data := shared_data_dir()) is not None:
        source = next((data / "clips" / n for n in CLIPS if (data / "clips" / n).is_file()), None)
    with tempfile.TemporaryDirectory(prefix="danmask-inbrowser-clip-") as work:
        clip = Path(work) / "360p.mp4"
        what = scaled_clip(source, SHAPE[0], seconds + 3, clip)
        browser = []
        for query in variants:
            load = round(os.getloadavg()[0], 2)
            browser.append({"page": query or "defaults", "load_avg_1m": load,
                            **browser_figures(clip, seconds, model, query)})
        python = python_figures(clip, model)
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": model, "clip": what,
            "machine": machine_description(), "browser": browser, "python": python}


def format_inbrowser(r: dict) -> str:
    return "\n".join(_rows(r)) + f"\n(clip: {r['clip']})"


def _rows(r: dict) -> list[str]:
    p = r["python"]
    rows = []
    for b in r["browser"]:
        if b["backend"] is None:
            rows.append(f"browser ({b['page']}; load {b['load_avg_1m']}): {b['video_fps']:.1f} frames shown/s")
            continue
        rows.append(
            f"browser ({b['page']}: {b['backend']}, {b['threads']} thread(s); load {b['load_avg_1m']}): "
            f"{b['segmented_fps']:.1f} frames segmented/s of {b['video_fps']:.1f} shown/s ({b['dropped']} dropped, "
            f"{b['skipped']} still); page step {b['step_ms_mean']:.1f} ms (model {b['infer_ms_mean']:.1f} ms); "
            f"model alone {b['model_ms_median']:.1f} ms = x{p['model_ms_median_2t'] / b['model_ms_median']:.2f} "
            "the speed of Python's")
    rows.append(f"python: model alone {p['model_ms_median_1t']:.1f} ms at 1 thread, {p['model_ms_median_2t']:.1f} ms "
                f"at 2; whole Segmenter step {p['step_ms_mean']:.1f} ms")
    return rows


def markdown_inbrowser(r: dict) -> str:
    m, b, p = r["machine"], r["browser"], r["python"]
    lines = "\n".join(f"- {line}" for line in _rows(r))
    return f"""
## {r['date']}: masks in the browser (`danmask bench --in-browser`, {r['model']})

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; {b[0]['browser']} headless (Chromium),
onnxruntime-web from the package; Python {m['python']}, onnxruntime {m['onnxruntime']}. Clip: {r['clip']}.
Each browser line: frames segmented per second while the clip plays at its own speed (frames that came while the
model was busy are dropped: the newest wins), the page's time per segmented frame and the model's share, and the
model alone back to back, as a ratio to onnxruntime in Python at 2 threads (the last line), same run.

{lines}

```json
{json.dumps({"browser": b, "python": p})}
```
"""
