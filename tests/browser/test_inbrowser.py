"""Masks computed in the viewer's browser: onnxruntime-web runs our fast model, temporal.js is the Python temporal
stage; both checked against Python on the same inputs, in a real headless Chromium, the page under its own CSP."""
from __future__ import annotations

import gzip
import http.client
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from danmask.danmaku.comments import Comment
from danmask.danmaku.font import find_font
from danmask.danmaku.inbrowser import browser_model
from danmask.danmaku.layout import LayoutConfig
from danmask.danmaku.player import PlayerContent, PlayerServer
from danmask.errors import ModelError
from danmask.runtime import FAST_MODEL, load_model
from danmask.runtime.zoom import ZoomSettings, crop_region, mask_box, paste_crop, pixel_bounds
from danmask.synthetic import make_video, pan_frames, person_frame
from danmask.temporal import (JitterFilter, SceneCutDetector, StillDetector, aligned_ssim, pan_shift, smooth_edges,
                              thumbnail)

SHAPE = (360, 640)


def serve(tmp_path: Path, frames: int = 90) -> PlayerServer:
    clip = make_video(tmp_path / "clip.mp4", frames=frames, shape=SHAPE, fps=30)
    comments = tuple(Comment(0.05 * i, "scroll", "弹幕" * 6, size=36) for i in range(40))
    content = PlayerContent(video=clip.path, shape=SHAPE, comments=comments, config=LayoutConfig(),
                            font_file=find_font(), title="in-browser", browser_model=browser_model(FAST_MODEL))
    return PlayerServer(content).start()


def open_page(browser, url: str, bypass_csp: bool = False):
    """The player page, once ready; not bypassing the CSP proves the page's own policy lets WASM run."""
    page = browser.new_page(bypass_csp=bypass_csp)
    page.goto(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = page.evaluate("() => [document.documentElement.dataset.ready, document.documentElement.dataset.error]")
        if state[1]:
            raise AssertionError(f"player page failed: {state[1]}")
        if state[0] == "1":
            return page
        time.sleep(0.1)
    raise AssertionError("player page did not start in 60 s")


def wait_for(page, expression: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture()
def page(browser, tmp_path):
    server = serve(tmp_path)
    try:
        yield open_page(browser, server.url)
    finally:
        server.stop()


def moving_masks(n: int, shape: tuple[int, int] = (144, 256), seed: int = 0) -> list[np.ndarray]:
    """Soft blob masks that move, with pixel noise at the edge: what the jitter filter is for."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    masks = []
    for i in range(n):
        cx, cy = 90 + 4 * i, 70 + (i % 3)
        d = np.sqrt(((xx - cx) / 40.0) ** 2 + ((yy - cy) / 55.0) ** 2)
        soft = 1 / (1 + np.exp((d - 1) * 12)) + rng.normal(0, 0.06, shape)
        masks.append(np.clip(soft, 0, 1).astype(np.float32))
    return masks


def test_pan_is_no_cut_in_js_either(page):
    """A camera sweeping across one scene, then a new picture: temporal.js finds the same pan shifts, aligned SSIM
    and cut decisions as temporal.py (no cut during the pan, one at the new picture)."""
    thumbs = [thumbnail(f) for f in pan_frames(new_picture=3)]
    cuts = SceneCutDetector()
    py = {"cut": [cuts.update(t) for t in thumbs],
          "shift": [list(map(int, pan_shift(a, b))) for a, b in zip(thumbs, thumbs[1:])],
          "aligned": [aligned_ssim(a, b) for a, b in zip(thumbs, thumbs[1:])]}
    js = page.evaluate("""async (thumbs) => {
      const T = await import('./temporal.js');
      const t = thumbs.map((x) => Float32Array.from(x));
      const cuts = new T.SceneCutDetector();
      const out = { cut: t.map((x) => cuts.update(x)), shift: [], aligned: [] };
      for (let i = 0; i + 1 < t.length; i++) {
        out.shift.push(T.panShift(t[i], t[i + 1], T.THUMB_WIDTH, T.THUMB_HEIGHT));
        out.aligned.push(T.alignedSsim(t[i], t[i + 1], T.THUMB_WIDTH, T.THUMB_HEIGHT));
      }
      return out;
    }""", [t.ravel().tolist() for t in thumbs])
    assert py["cut"] == js["cut"] and [i for i, c in enumerate(py["cut"]) if c] == [8]
    assert py["shift"] == js["shift"] and py["shift"][0][0] < -5  # the picture moves left as the camera pans right
    assert np.allclose(py["aligned"], js["aligned"], atol=2e-3)


def test_temporal_js_matches_python(page):
    masks = moving_masks(10)
    times = [i / 30 for i in range(6)] + [0.25, 0.27, 0.30, 0.9]  # a gap: dt varies, as under VFR
    frames = [person_frame((144, 256), seed=s)[0] for s in (0, 0, 0, 1, 1, 1, 2, 2, 2, 2)]
    frames[1] = np.roll(frames[1], 3, axis=1)  # small motion within a shot
    thumbs = [thumbnail(f) for f in frames]
    jitter, cuts, still = JitterFilter(), SceneCutDetector(), StillDetector()
    py = {"jitter": [], "cut": [], "score": [], "still": [], "smooth": smooth_edges(masks[3]).tolist()}
    last = None
    for mask, thumb, t in zip(masks, thumbs, times):
        py["jitter"].append(jitter.update(mask, (t - last) if last is not None else 0.0))
        py["cut"].append(cuts.update(thumb))
        py["score"].append(cuts.last_score)
        py["still"].append(still.is_still(thumb, t))
        still.inferred(thumb, t)
        last = t
    rgba = [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]).ravel().tolist() for f in frames]
    js = page.evaluate("""async ([masks, rgba, times]) => {
      const T = await import('./temporal.js');
      const jitter = new T.JitterFilter(), cuts = new T.SceneCutDetector(), still = new T.StillDetector();
      const out = { jitter: [], cut: [], score: [], still: [], thumbs: [] };
      let last = null;
      for (let i = 0; i < masks.length; i++) {
        const thumb = T.thumbnail(Uint8ClampedArray.from(rgba[i]), 256, 144);
        out.thumbs.push(Array.from(thumb));
        out.jitter.push(Array.from(jitter.update(Float32Array.from(masks[i]), 256, 144,
                                                 last === null ? 0 : times[i] - last)));
        out.cut.push(cuts.update(thumb));
        out.score.push(cuts.lastScore);
        out.still.push(still.isStill(thumb, times[i]));
        still.inferred(thumb, times[i]);
        last = times[i];
      }
      out.smooth = Array.from(T.smoothEdges(Float32Array.from(masks[3]), 256, 144));
      return out;
    }""", [[m.ravel().tolist() for m in masks], rgba, times])
    for mine, theirs in zip(thumbs, js["thumbs"]):
        assert np.abs(mine.ravel() - np.array(theirs)).max() <= 1.0  # grey levels, rounding only
    assert js["cut"] == py["cut"] and sum(py["cut"]) == 2  # two shot changes, found by both
    assert js["still"] == py["still"] and any(py["still"])
    for mine, theirs, cut in zip(py["score"], js["score"], py["cut"]):
        # at a cut the score is SSIM after the best pan between two unrelated pictures: that shift is the peak of
        # noise, and thumbnails one grey level apart may pick another; both must stay far below the threshold
        assert (mine is None and theirs is None) or abs(mine - theirs) < 2e-3 or (cut and max(mine, theirs) < 0.2)
    for mine, theirs in zip(py["jitter"], js["jitter"]):
        diff = np.abs(mine.ravel() - np.array(theirs, np.float32))
        assert diff.max() < 1e-3 and diff.mean() < 1e-5
    assert np.abs(np.array(py["smooth"]).ravel() - np.array(js["smooth"])).max() < 1e-5


def test_model_in_the_browser_matches_onnxruntime_in_python(page):
    rgb = cv2.resize(person_frame((360, 640), seed=3)[0], (256, 144), interpolation=cv2.INTER_AREA)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    js = page.evaluate("""async (rgba) => {
      const seg = window.danmaskPlayer.state.segmenter;
      return Array.from(await seg.infer(Uint8ClampedArray.from(rgba)));
    }""", rgba.ravel().tolist())
    py = load_model(FAST_MODEL).predict(rgb)
    diff = np.abs(py.ravel() - np.array(js, np.float32))
    assert diff.max() < 2e-3, diff.max()


def test_zoom_js_matches_python(page):
    """zoom.js is danmask.runtime.zoom: the same crops, boxes and pasted masks on the same inputs."""
    settings = ZoomSettings(margin=1.3, min_side=0.3, refresh_s=0.5)
    boxes = [(300, 100, 340, 200), (10, 10, 14, 14), (-50, -50, 700, 400), (500.5, 30.25, 630.75, 350.5)]
    rng = np.random.default_rng(0)
    crop = rng.random((144, 256)).astype(np.float32)
    mask = np.zeros((144, 256), np.float32)
    mask[40:90, 100:130] = 0.9
    js = page.evaluate("""async ([boxes, crop, mask]) => {
      const Z = await import('./zoom.js');
      const settings = Z.zoomSettings({ extra: { zoom: { margin: 1.3, min_side: 0.3, refresh_s: 0.5 } } });
      const regions = boxes.map((b) => Z.cropRegion(b, 640, 360, 256 / 144, settings));
      const bounds = regions.map(Z.pixelBounds);
      const pasted = bounds.map((b) => Array.from(Z.pasteCrop(Float32Array.from(crop), 256, 144, b, 640, 360, 256, 144)));
      return { regions, bounds, pasted, box: Z.maskBox(Float32Array.from(mask), 256, 144, 640, 360),
               none: Z.zoomSettings({ extra: {} }) };
    }""", [boxes, crop.ravel().tolist(), mask.ravel().tolist()])
    assert js["none"] is None
    assert js["box"] == pytest.approx(mask_box(mask, (360, 640)))
    for box, region, bounds, pasted in zip(boxes, js["regions"], js["bounds"], js["pasted"]):
        mine = crop_region(box, (360, 640), 256 / 144, settings)
        assert region == pytest.approx(mine) and tuple(bounds) == pixel_bounds(mine)
        py = paste_crop(crop, pixel_bounds(mine), (360, 640), (144, 256))
        diff = np.abs(py.ravel() - np.array(pasted, np.float32))
        assert diff.mean() < 2e-3 and diff.max() < 0.05, (diff.mean(), diff.max())  # cv2 rounds to 1/32 px


def test_player_masks_the_video_as_it_plays(page):
    # looped: on a loaded machine the 3-s clip can end before 20 frames were segmented
    page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; v.loop = true; "
                  "return v.play(); }")
    stats = json.loads(wait_for(page, "() => window.danmaskPlayer.stats.segmented >= 20 && "
                                      "JSON.stringify(window.danmaskPlayer.stats)", 60))
    assert stats["masked"] > 0 and stats["notReadable"] is None
    assert "computed in this browser (mpft-cpu, wasm" in page.text_content("#status")
    assert page.evaluate("self.crossOriginIsolated")  # threads are possible
    seg = json.loads(page.evaluate("() => JSON.stringify(window.danmaskPlayer.state.segmenter.stats)"))
    assert seg["frames"] >= 20 and seg["inferred"] + seg["skipped"] == seg["frames"]
    # zoomed: after the first frame found the person, the model looks at crops; a refresh adds a whole-frame pass
    assert seg["crops"] > 0 and seg["inferred"] <= seg["passes"] <= seg["crops"] + seg["inferred"]


def test_a_cross_origin_video_is_reported_not_failed_silently(browser, tmp_path):
    """A page embedding the player with a video from another site that sends no CORS headers: the canvas is
    tainted, so masks cannot be computed; the page says why and keeps drawing comments without masks."""
    (tmp_path / "other").mkdir()
    player, other = serve(tmp_path), serve(tmp_path / "other")
    try:
        foreign = other.url + "media/video"  # another port: another origin

        def rewrite(route):
            body = route.fetch().json()
            body["video"] = foreign
            route.fulfill(json=body)

        page = browser.new_page(bypass_csp=True)  # an embedding page whose policy allows foreign media
        page.route("**/api/config", rewrite)
        page.goto(player.url)
        wait_for(page, "() => document.documentElement.dataset.ready === '1'", 60)
        page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; return v.play(); }")
        message = wait_for(page, "() => window.danmaskPlayer.stats.notReadable", 30)
        assert "another site" in message and "CORS" in message
        assert "masks off" in page.text_content("#status")
        assert page.is_disabled("#mask")
        wait_for(page, "() => window.danmaskPlayer.stats.drawn > 0", 30)  # comments go on, over everything
    finally:
        player.stop()
        other.stop()


def get(server: PlayerServer, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    host, port = server.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_runtime_files_are_served_compressed_and_pages_isolated(tmp_path):
    server = serve(tmp_path, frames=10)
    try:
        status, headers, body = get(server, "/ort/ort-wasm-simd-threaded.wasm", {"Accept-Encoding": "gzip, br"})
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert headers["content-type"] == "application/wasm" and gzip.decompress(body)[:4] == b"\0asm"
        status, headers, body = get(server, "/ort/ort-wasm-simd-threaded.wasm")
        assert status == 200 and "content-encoding" not in headers and body[:4] == b"\0asm"
        for bad in ("/ort/../player.py", "/ort/VERSION", "/ort/nothing.mjs", "/ort/%2e%2e/inbrowser.py"):
            assert get(server, bad)[0] == 404, bad
        status, headers, _ = get(server, "/")
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cross-origin-embedder-policy"] == "credentialless"
        assert "'wasm-unsafe-eval'" in headers["content-security-policy"]
        status, _, model = get(server, "/media/model.onnx")
        assert status == 200 and model == Path(browser_model(FAST_MODEL).path).read_bytes()
        config = json.loads(get(server, "/api/config")[2])
        assert config["model"]["spec"]["input_size"] == [144, 256] and config["track"] is None
    finally:
        server.stop()


def test_only_single_graph_models_run_in_the_browser():
    with pytest.raises(ModelError, match="cannot run in the browser"):
        browser_model("person-track")
    with pytest.raises(ModelError, match="cannot run in the browser"):
        browser_model("mediapipe-selfie")
