"""Driving the web player in a real Chromium (Playwright): the browser tests' launcher and the page benchmark.

Debian's Chromium is used as it is (`apt-get install chromium`); Playwright's own browser download is never
needed. Playwright is an optional dependency, imported only here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DanmaskError

CHROMIUM_ENV = "DANMASK_CHROMIUM"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


class BrowserError(DanmaskError):
    """Chromium or Playwright is missing, or the page failed to start."""


def find_chromium() -> str:
    """$DANMASK_CHROMIUM, else the first Chromium/Chrome on PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise BrowserError(f"{CHROMIUM_ENV}={explicit}: no such file")
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("Chromium not found (Debian/Ubuntu: apt-get install chromium, or set DANMASK_CHROMIUM)")


@contextmanager
def launch_chromium() -> Iterator[object]:
    """A headless Chromium `Browser` (Playwright sync API), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserError("the Python package 'playwright' is not installed (pip install playwright; "
                           "its browser download is not needed)") from exc
    executable = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_player(browser, url: str, viewport: tuple[int, int] = (1400, 1000), timeout_s: float = 30.0,
                requests: list[str] | None = None):
    """A new page on the player at `url`, returned once the video, track, font and schedule are loaded.

    The page is opened with the Content-Security-Policy bypassed so that Playwright can evaluate scripts;
    this also makes the hostile-text tests stricter (nothing but the page's own code stands in the way).
    `requests`, when given, receives the URL of every request the page makes, from the first one on.
    """
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, bypass_csp=True)
    if requests is not None:
        page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.ready === '1' || "
                           "document.documentElement.dataset.error !== undefined", timeout=timeout_s * 1000)
    error = page.evaluate("document.documentElement.dataset.error || null")
    if error:
        raise BrowserError(f"player page failed: {error}")
    page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; }")
    return page


_MEASURE_JS = """async (seconds) => {
  const video = document.getElementById('video');
  const stats = window.danmaskPlayer.stats;
  await video.play();
  await new Promise((r) => setTimeout(r, 500));  // let playback settle
  const draws0 = stats.draws, ms0 = stats.drawMs, frames0 = stats.frames;
  let ticks = 0, onScreen = [], intervals = [], last = null, run = true;
  const tick = (now) => {
    ticks++; onScreen.push(stats.drawn);
    if (last !== null) intervals.push(now - last);
    last = now;
    if (run) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  run = false;
  const elapsed = (performance.now() - t0) / 1000;
  video.pause();
  intervals.sort((a, b) => a - b);
  const draws = stats.draws - draws0;
  return {
    page_fps: ticks / elapsed,
    video_fps: (stats.frames - frames0) / elapsed,
    draw_ms_mean: draws ? (stats.drawMs - ms0) / draws : null,
    frame_ms_p95: intervals.length ? intervals[Math.floor(0.95 * (intervals.length - 1))] : null,
    comments_on_screen_min: Math.min(...onScreen),
    comments_on_screen_mean: onScreen.reduce((a, b) => a + b, 0) / onScreen.length,
    seconds: elapsed,
  };
}"""


def measure_player_fps(comments_on_screen: int = 300, seconds: float = 5.0, shape: tuple[int, int] = (720, 1280),
                       fps: int = 30) -> dict:
    """Frame rate of the player page with `comments_on_screen` comments visible, in headless Chromium.

    A synthetic clip (a moving person) of `shape` (height, width) with its true mask track is played for
    `seconds`; the page's requestAnimationFrame rate, the video frames presented, the mean time of one danmaku
    draw (text + mask) and the number of comments on screen are reported.

    Raises:
        BrowserError: Chromium or Playwright missing, or the page did not start.
    """
    import numpy as np

    from ..synthetic import make_video
    from ..track import MaskTrack
    from .comments import Comment
    from .font import find_font
    from .layout import LayoutConfig
    from .player import PlayerContent, PlayerServer

    with tempfile.TemporaryDirectory(prefix="danmask-bench-") as workdir:
        frames = int((seconds + 3) * fps)
        clip = make_video(Path(workdir) / "clip.mp4", frames=frames, shape=shape, fps=fps)
        track_path = Path(workdir) / "clip.dmask"
        MaskTrack(mask_size=shape, source_size=shape, time_base=clip.time_base,
                  masks=[np.where(m, 255, 0).astype(np.uint8) for m in clip.masks], pts=clip.pts).save(track_path)
        texts = ["前方高能！！", "哈哈哈哈哈哈", "弹幕护体", "this is fine", "233333", "好耶 (≧▽≦)"]
        comments = tuple(Comment(0.001 * i, ("scroll", "scroll", "reverse", "top", "bottom")[i % 5],
                                 texts[i % len(texts)] * (1 + i % 3), size=(18, 25, 36)[i % 3],
                                 color=(i * 2654435761) % 0x1000000) for i in range(comments_on_screen))
        # everything stays on screen for the whole run: no anti-overlap, slow crossing, long fixed time
        config = LayoutConfig(duration_s=seconds + 60, fixed_duration_s=seconds + 60, anti_overlap=False)
        content = PlayerContent(video=clip.path, shape=shape, comments=comments, config=config,
                                font_file=find_font(), track=track_path, title="benchmark")
        with PlayerServer(content) as server, launch_chromium() as browser:
            page = open_player(browser, server.url)
            started = time.perf_counter()
            result = page.evaluate(_MEASURE_JS, seconds)
            result["wall_s"] = time.perf_counter() - started
            result["browser"] = browser.version
            result["size"] = f"{shape[1]}x{shape[0]}"
            return result
