"""`danmask live`: a real stream on loopback (PyAV writing MPEG-TS to a UDP port), a file in real time, sources that
cannot be opened or stop, the page server over a real WebSocket, and the live page in headless Chromium."""
from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from danmask.cli import main
from danmask.danmaku.comments import Comment
from danmask.danmaku.layout import LayoutConfig
from danmask.synthetic import make_video
from danmask.video import iter_frames

from _oracle import TruthOracle, iou

pytest.importorskip("websockets", reason="the live page needs the serve extra: pip install 'danmask[serve]'")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UdpStream(threading.Thread):
    """PyAV sending a clip as MPEG-TS over UDP to 127.0.0.1, in real time, looping, until `stop` (or `frames`)."""

    def __init__(self, clip: Path, frames: int | None = None, restart_every: int | None = None) -> None:
        super().__init__(daemon=True)
        self.restart_every = restart_every  # frames per "broadcast": then a new muxer whose pts start again at 0
        self.port = free_port(socket.SOCK_DGRAM)
        self.url = f"udp://127.0.0.1:{self.port}"
        self.images = [f.rgb for f in iter_frames(clip)]
        self.frames, self.sent = frames, 0
        self.stopping = threading.Event()

    def _open(self):
        out = av.open(f"{self.url}?pkt_size=1316", "w", format="mpegts")
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = self.images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "10", "preset": "ultrafast", "tune": "zerolatency"}
        return out, stream

    def run(self) -> None:
        out, stream = self._open()
        start, pts = time.perf_counter(), 0
        while not self.stopping.is_set() and (self.frames is None or self.sent < self.frames):
            if self.restart_every and pts == self.restart_every:
                out.mux(stream.encode())
                out.close()
                (out, stream), pts = self._open(), 0
            frame = av.VideoFrame.from_ndarray(self.images[self.sent % len(self.images)], format="rgb24")
            frame.pts = pts
            out.mux(stream.encode(frame))
            self.sent, pts = self.sent + 1, pts + 1
            time.sleep(max(0.0, start + self.sent / 30 - time.perf_counter()))
        out.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("live") / "clip.mp4", frames=60, shape=(180, 320))


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "danmask.cli", "live", *args], capture_output=True, text=True,
                          timeout=timeout)


def check_stats(stats: dict) -> None:
    assert stats["frames"] == stats["masked"] + stats["dropped"]
    assert 0 < stats["latency_ms_p50"] <= stats["latency_ms_p95"] < 1000
    assert stats["fps"] > 0


def test_udp_stream_gives_json_stats(clip):
    sender = UdpStream(clip.path)
    sender.start()
    try:
        done = run_cli(sender.url, "--stop-after", "2", "--json", "--timeout", "10")
    finally:
        sender.stop()
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    check_stats(stats)
    assert 45 <= stats["frames"] <= 75  # 2 s of a 30 fps stream, joined mid-way at a keyframe
    assert stats["masked"] >= stats["frames"] // 2  # the fast model on 320x180 keeps up, even on a busy CI box


def test_a_restarted_broadcast_is_a_discontinuity_not_a_time_warp(clip):
    """The sender starts a new stream every second (pts back to 0): the session clock keeps going forward and the
    temporal stage starts afresh each time."""
    from danmask.live import run_live

    sender = UdpStream(clip.path, restart_every=30)
    sender.start()
    try:
        stats = run_live(sender.url, duration=3.2, timeout=10)
    finally:
        sender.stop()
    check_stats(stats.summary())
    assert stats.discontinuities >= 2
    assert stats.frames >= 75


def test_session_clock():
    from danmask.live.source import _Clock

    clock = _Clock(step_s=0.25)  # binary fractions: exact sums
    assert [clock.advance(t) for t in (10.0, 10.25, 10.25, 10.5)] == [(0.0, False), (0.25, False), None,
                                                                     (0.5, False)]
    assert clock.advance(0.0) == (0.75, True)  # pts restarted: one nominal frame later, flagged
    assert clock.advance(0.25) == (1.0, False)
    assert clock.advance(5.0) == (1.25, True)  # a jump forward of more than 2 s is not elapsed time either
    assert clock.advance(6.5) == (2.75, False)  # 1.5 s is (a stalled source)


def test_a_stream_that_stops_is_one_line(clip, capsys):
    sender = UdpStream(clip.path, frames=60)  # 2 s, then silence
    sender.start()
    try:
        assert main(["live", sender.url, "--timeout", "1", "--json"]) == 2
    finally:
        sender.stop()
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "the stream stopped" in err, err


def test_hls_over_http_ends_at_the_end_of_its_playlist(clip, tmp_path):
    """An HLS folder (FFmpeg's muxer, 1 s segments) served on loopback; a VOD playlist ends, which is a normal end."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    with av.open(str(tmp_path / "index.m3u8"), "w", format="hls",
                 options={"hls_time": "1", "hls_playlist_type": "vod"}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = 180, 320
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "30", "preset": "ultrafast"}
        for i, frame in enumerate(iter_frames(clip.path)):
            image = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
            image.pts = i
            out.mux(stream.encode(image))
        out.mux(stream.encode())
    handler = partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                      directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
        threading.Thread(target=http.serve_forever, daemon=True).start()
        done = run_cli(f"http://127.0.0.1:{http.server_address[1]}/index.m3u8", "--json")
        http.shutdown()
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    check_stats(stats)
    assert stats["frames"] == 60  # every frame arrived (a VOD playlist downloads faster than real time)


def test_ctrl_c_ends_cleanly_with_the_summary(clip):
    sender = UdpStream(clip.path)
    sender.start()
    proc = subprocess.Popen([sys.executable, "-m", "danmask.cli", "live", sender.url, "--json", "--serve", "--port",
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # printed once the first frame is masked and the page listens
        assert "page at http://127.0.0.1:" in line, line + proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        sender.stop()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    check_stats(json.loads(out))


@pytest.mark.parametrize("case", ["missing", "not a video", "file without --realtime", "nothing arrives",
                                  "no such camera"])
def test_a_source_that_cannot_be_opened_is_one_line(case, clip, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video at all\n" * 50)
    args = {"missing": [str(tmp_path / "missing.mp4"), "--realtime"],
            "not a video": [str(junk), "--realtime"],
            "file without --realtime": [str(clip.path)],
            "nothing arrives": [f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}", "--timeout", "0.5"],
            "no such camera": ["/dev/video987"]}[case]
    assert main(["live", *args, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("danmask live: error: "), err


def test_realtime_file_is_paced_and_burned_in_behind_the_person(clip, tmp_path):
    """A file played as a stream: every frame arrives at its own time, the masks are the frames' own (a perfect
    model), and the burn-in draws a comment over the background but never over the person."""
    from danmask.live import run_live

    oracle = TruthOracle(clip, size=(180, 320))
    big = Comment(0.0, "top", "弹幕弹幕弹幕", size=150)  # a top comment tall enough to cross the person's head
    out = tmp_path / "burned.mp4"
    stats = run_live(clip.path, oracle, realtime=True, output=out, comments=[big],
                     layout=LayoutConfig(fixed_duration_s=60))
    summary = stats.summary()
    check_stats(summary)
    assert summary["frames"] == 60
    assert summary["elapsed_s"] >= 59 / 30 - 0.05  # paced by pts, not decoded as fast as possible
    assert summary["masked"] >= 45
    times = np.array(clip.times)
    sources = [f.rgb for f in iter_frames(clip.path)]
    checked = 0
    for frame in iter_frames(out):
        i = int(np.argmin(np.abs(times - frame.time)))  # the session clock starts at the first frame: t = pts time
        assert abs(times[i] - frame.time) < 0.002
        rgb, person = sources[i], clip.masks[i]
        diff = np.abs(frame.rgb.astype(int) - rgb.astype(int)).max(axis=2)
        inner = cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        outer = cv2.dilate(person.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        drawn = diff > 60  # where the comment was drawn
        assert np.count_nonzero(drawn & outer) > 500  # the comment is there, over the background
        assert np.count_nonzero(drawn & inner) == 0  # and never over the person
        checked += 1
    assert 0 < checked == summary["written"] <= summary["masked"]


def test_run_live_is_public():
    import danmask
    from danmask.live import LiveStats, run_live

    assert {"run_live", "LiveStats"} <= set(danmask.__all__)
    assert danmask.run_live is run_live and danmask.LiveStats is LiveStats


def test_live_comments_land_where_a_layout_of_the_whole_list_puts_them():
    """Scheduled comments placed as the stream reaches them, viewers' comments at the present, one at a time: the
    same placements as laying out everything at once (so a placement, once broadcast, never has to move)."""
    from danmask.danmaku.layout import layout
    from danmask.live.comments import LiveComments

    config = LayoutConfig(density=0.75, duration_s=6)
    scheduled = [Comment(0.5 * i, ("scroll", "top", "bottom")[i % 3], f"弹幕 {i}") for i in range(40)]
    live = LiveComments((180, 320), config, scheduled=scheduled[::-1])
    offered, placed = [], []
    for k in range(40):
        t = 0.25 + 0.5 * k
        due, mine = live.add(t, "scroll", 0xFFFFFF, f"viewer {k}")
        placed += due + ([mine] if mine is not None else [])
        offered += [scheduled[k], Comment(t, "scroll", f"viewer {k}")]
    expected = layout(offered, (180, 320), config).placements
    assert [asdict(p) for p in placed] == [asdict(p) for p in expected]
    assert 0 < len(placed) < len(offered)  # some were thinned or found no room: not a vacuous comparison


def test_burn_in_to_a_growing_hls_playlist(clip, tmp_path):
    from danmask.live import run_live

    out = tmp_path / "hls" / "live.m3u8"
    out.parent.mkdir()
    stats = run_live(clip.path, realtime=True, output=out, comments=[Comment(0.0, "scroll", "弹幕")])
    playlist = out.read_text()
    segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert segments and all((out.parent / name).is_file() for name in segments)
    assert sum(1 for _ in iter_frames(out)) == stats.written > 0


# ------------------------------------------------------------------ the page server, over a real WebSocket


@pytest.fixture
def page_server():
    from danmask.live.comments import LiveComments
    from danmask.live.server import LiveServer

    with LiveServer(LiveComments((90, 160)), port=0, title="test", rate=(3, 60.0)) as server:
        yield server


def connect(server, origin: str | None = None):
    from websockets.sync.client import connect as ws_connect

    url = server.url.replace("http://", "ws://") + "ws"
    return ws_connect(url, origin=origin or server.url.rstrip("/"), open_timeout=5)


def receive_json(ws, kind: str) -> dict:
    while True:
        message = ws.recv(timeout=5)
        if isinstance(message, str) and json.loads(message)["type"] == kind:
            return json.loads(message)


def test_frames_reach_the_page_with_their_own_mask(page_server):
    from danmask.live.server import frame_message
    from danmask.live.source import Captured

    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[:, 80:] = (200, 40, 40)
    mask = np.zeros((45, 80), np.uint8)
    mask[10:30, 20:50] = 255
    with connect(page_server) as ws:
        hello = receive_json(ws, "hello")
        assert (hello["width"], hello["height"]) == (160, 90) and hello["max_chars"] == 100
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        page_server.publish(Captured(frame, 1234, Fraction(1, 90000), 0.5, time.perf_counter(), False, 0), mask, 7.5)
        data = ws.recv(timeout=5)
    length = struct.unpack(">I", data[:4])[0]
    header = json.loads(data[4:4 + length])
    assert (header["pts"], header["tb"], header["t"], header["latency_ms"]) == (1234, [1, 90000], 0.5, 7.5)
    jpeg = data[4 + length:4 + length + header["jpeg"]]
    png = data[4 + length + header["jpeg"]:]
    assert len(png) == header["mask"]
    picture = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(picture.astype(int) - rgb).mean() < 3
    alpha = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, 3]
    assert np.array_equal(alpha, mask)
    large = frame_message(1, Fraction(1, 30), 0.0, np.zeros((720, 1280, 3), np.uint8), mask, 1.0)
    length = struct.unpack(">I", large[:4])[0]
    jpeg = large[4 + length:4 + length + json.loads(large[4:4 + length])["jpeg"]]
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (540, 960, 3)  # the page scales it


def test_comments_are_checked_rate_limited_and_broadcast(page_server):
    page_server.now = 3.25
    with connect(page_server) as poster, connect(page_server) as viewer:
        receive_json(poster, "hello"), receive_json(viewer, "hello")
        poster.send(json.dumps({"type": "comment", "text": "<b>hi</b>", "mode": "scroll", "colour": "#ff0000"}))
        items = receive_json(viewer, "items")["items"]
        assert [(i["text"], i["start"], i["color"]) for i in items] == [("<b>hi</b>", 3.25, 0xFF0000)]
        assert receive_json(poster, "items")["items"] == items
        poster.send(json.dumps({"type": "comment", "text": "x" * 101}))
        assert "more than 100" in receive_json(poster, "error")["error"]
        poster.send("not json")
        assert receive_json(poster, "error")["error"] == "a message is a JSON object"
        for _ in range(2):
            poster.send(json.dumps({"type": "comment", "text": "again"}))
            receive_json(poster, "items")
        poster.send(json.dumps({"type": "comment", "text": "one too many"}))
        assert "too many comments" in receive_json(poster, "error")["error"]
    with connect(page_server) as late:
        assert [i["text"] for i in receive_json(late, "hello")["items"]] == ["<b>hi</b>", "again", "again"]


def test_scheduled_comments_reach_open_pages_when_due():
    from danmask.live.comments import LiveComments
    from danmask.live.server import LiveServer

    comments = LiveComments((90, 160), scheduled=[Comment(1.0, "scroll", "at one second")])
    with LiveServer(comments, port=0) as server, connect(server) as ws:
        receive_json(ws, "hello")
        server.announce(comments.advance(0.9))  # what the session does after every frame
        server.announce(comments.advance(1.0))
        assert [i["text"] for i in receive_json(ws, "items")["items"]] == ["at one second"]


def test_pages_of_other_sites_cannot_connect(page_server):
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    with pytest.raises((ConnectionClosed, InvalidStatus)):
        with connect(page_server, origin="http://evil.example") as ws:
            ws.recv(timeout=5)


def test_a_port_in_use_is_one_line(clip, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["live", str(clip.path), "--realtime", "--serve", "--port", str(port), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"cannot listen on 127.0.0.1:{port}" in err


# ------------------------------------------------------------------ the live page in Chromium


@pytest.fixture(scope="module")
def live_page(tmp_path_factory):
    """A 30 s clip served live by run_live with a perfect model (stopped when the tests are done), and a headless
    Chromium."""
    from danmask.danmaku.browser import BrowserError, find_chromium, launch_chromium
    from danmask.danmaku.font import find_font
    from danmask.live import run_live

    try:
        find_chromium()
        find_font()
        pytest.importorskip("playwright.sync_api", reason="needs Playwright")
    except Exception as exc:  # BrowserError, FontError
        pytest.skip(f"needs Chromium, Playwright and a CJK font: {exc}")
    video = make_video(tmp_path_factory.mktemp("page") / "clip.mp4", frames=300, shape=(180, 320), fps=10)
    big = Comment(0.0, "top", "弹幕弹幕弹幕", size=150)
    served, stop = [], threading.Event()
    result: dict = {}

    def session() -> None:
        try:
            result["stats"] = run_live(video.path, TruthOracle(video, size=(180, 320)), realtime=True, serve=True,
                                       port=0, comments=[big], layout=LayoutConfig(fixed_duration_s=60),
                                       stop=stop, on_serving=served.append)
        except Exception as exc:
            result["error"] = exc

    runner = threading.Thread(target=session, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not served and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served, result
    try:
        with launch_chromium() as browser:
            yield browser, served[0], video
    except BrowserError as exc:
        pytest.skip(str(exc))
    finally:
        stop.set()
        runner.join(10)
    assert "error" not in result, result


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 900, "height": 800}, bypass_csp=True)
    page.goto(url)
    page.wait_for_function("window.danmaskLive && window.danmaskLive.stats.shown > 0 && "
                           "document.documentElement.dataset.ready === '1'", timeout=15000)
    return page


_CHECK_FRAME_JS = """() => {
  // All in one task: the layer, the mask and the pts below are those of the frame on screen.
  const { state, stats } = window.danmaskLive;
  const layer = document.getElementById('danmaku');
  const { width, height } = layer;
  const drawn = layer.getContext('2d').getImageData(0, 0, width, height).data;
  const scaled = new OffscreenCanvas(width, height).getContext('2d');  // the mask as the layer's cut used it
  scaled.imageSmoothingEnabled = true;
  scaled.drawImage(state.shown.mask, 0, 0, width, height);
  const mask = scaled.getImageData(0, 0, width, height).data;
  let person = 0, comment = 0, over = 0;
  const personRows = [];
  for (let i = 3; i < drawn.length; i += 4) {
    if (mask[i] === 255) person++;  // a full person pixel: 'destination-out' leaves nothing of a comment there
    if (drawn[i] > 0) comment++;
    if (mask[i] === 255 && drawn[i] > 0) over++;
  }
  let bits = '';  // one string: Playwright moves a long array slowly
  for (let i = 3; i < mask.length; i += 4) bits += mask[i] >= 128 ? '1' : '0';
  return { pts: stats.pts, tb: stats.tb, maskPts: stats.maskPts, person, comment, over, bits, width, height, drawnItems: stats.drawn };
}"""


def test_masks_arrive_for_the_frames_on_screen(live_page):
    browser, url, video = live_page
    page = open_page(browser, url)
    times = np.array(video.times)
    checks = []
    for _ in range(5):
        page.wait_for_timeout(250)
        checks.append(page.evaluate(_CHECK_FRAME_JS))
    shown = page.evaluate("window.danmaskLive.stats")
    page.close()
    assert shown["shown"] >= 10
    on_screen = np.array(shown["screenMs"])  # a frame's arrival at the server -> drawn on the page (one clock)
    assert on_screen.min() > 0 and np.percentile(on_screen, 95) < 1000, on_screen
    for check in checks:
        assert check["pts"] == check["maskPts"]
        shown_at = check["pts"] * check["tb"][0] / check["tb"][1]
        i = int(np.argmin(np.abs(times - shown_at)))
        assert abs(times[i] - shown_at) < 1e-3  # a frame of the source, by its own pts
        assert check["drawnItems"] >= 1 and check["comment"] > 0
        assert check["person"] > 500 and check["over"] == 0  # the comment passes behind the person
        mask = (np.frombuffer(check["bits"].encode(), np.uint8) == ord("1")).reshape(check["height"], check["width"])
        here = iou(mask, video.masks[i])
        assert here > 0.85  # the mask of the very frame on screen: no other frame's fits better (the figure
        assert here >= max(iou(mask, truth) for truth in video.masks) - 0.01  # walks back, so some fit as well)


def test_a_posted_comment_reaches_a_second_page_within_a_second(live_page):
    browser, url, _ = live_page
    poster, viewer = open_page(browser, url), open_page(browser, url)
    text = '<img src=x onerror="window.pwned=1">好耶'
    poster.fill("#comment-text", text)
    poster.click("#comment-form button[type=submit]")
    arrived = viewer.wait_for_function("(t) => window.danmaskLive.state.items.find((item) => item.text === t)"
                                       "?.arrived", arg=text, timeout=5000).json_value()
    sent = poster.evaluate("window.danmaskLive.stats.sentAt")
    assert 0 <= arrived - sent < 1000  # ms, both pages on the wall clock: sent on one, shown by the other (on
    # loopback both can fall in the same millisecond)
    viewer.wait_for_function("(t) => [...document.querySelectorAll('#on-screen li')].some((li) => "
                             "li.textContent === t)", arg=text, timeout=2000)
    assert viewer.evaluate("document.querySelectorAll('#on-screen img').length") == 0
    assert viewer.evaluate("window.pwned === undefined")
    poster.close(), viewer.close()
