"""The player's HTTP server without a browser: byte ranges for seeking, fixed routes, CSP, schedule API."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from danmask.danmaku.comments import Comment
from danmask.danmaku.font import find_font
from danmask.danmaku.layout import LayoutConfig, LayoutError
from danmask.danmaku.player import PlayerContent, PlayerServer, _byte_range, config_from_query
from danmask.errors import FontError


@pytest.fixture()
def server(tmp_path):
    try:
        font = find_font()
    except FontError as exc:
        pytest.skip(str(exc))
    video = tmp_path / "v.mp4"
    video.write_bytes(bytes(range(256)) * 40)  # served as bytes; no decoding happens in the server
    comments = tuple(Comment(i * 0.5, "scroll", f"<img onerror=x>{i}") for i in range(20))
    content = PlayerContent(video=video, shape=(360, 640), comments=comments, config=LayoutConfig(duration_s=6),
                            font_file=font, title="v.mp4")
    with PlayerServer(content).start() as running:
        yield running


def get(server, path, headers=None):
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_binds_localhost_by_default(server):
    assert server.url.startswith("http://127.0.0.1:")


def test_byte_ranges(server):
    status, headers, body = get(server, "/media/video", {"Range": "bytes=100-199"})
    assert status == 206 and body == (bytes(range(256)) * 40)[100:200]
    assert headers["Content-Range"] == "bytes 100-199/10240" and headers["Accept-Ranges"] == "bytes"
    status, _, body = get(server, "/media/video", {"Range": "bytes=-16"})
    assert status == 206 and body == bytes(range(240, 256))
    status, _, body = get(server, "/media/video", {"Range": "bytes=10200-"})
    assert status == 206 and len(body) == 40
    status, headers, _ = get(server, "/media/video", {"Range": "bytes=20000-"})
    assert status == 416 and headers["Content-Range"] == "bytes */10240"
    status, _, body = get(server, "/media/video")
    assert status == 200 and len(body) == 10240


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-0", (0, 0)), ("bytes=5-", (5, 99)), ("bytes=-10", (90, 99)), ("bytes=50-500", (50, 99)),
    ("bytes=100-", "invalid"), ("bytes=9-3", "invalid"), ("bytes=-0", "invalid"), ("items=1-2", None),
    ("bytes=1-2,4-5", None), (None, None),
])
def test_range_parsing(header, expected):
    assert _byte_range(header, 100) == expected


def test_only_known_routes(server):
    for path in ("/../../etc/passwd", "/static/../player.py", "/media/track.dmask", "/player.py", "/media/"):
        assert get(server, path)[0] == 404, path
    status, headers, body = get(server, "/")
    assert status == 200 and b'<canvas id="danmaku"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert get(server, "/dmask.js")[0] == 200 and get(server, "/player.js")[0] == 200


def test_font_is_a_single_aligned_sfnt(server):
    status, headers, body = get(server, "/media/font")
    assert status == 200 and headers["Content-Type"] == "font/ttf"
    assert body[:4] in (b"\x00\x01\x00\x00", b"OTTO", b"true")
    num_tables = int.from_bytes(body[4:6], "big")
    offsets = [int.from_bytes(body[12 + 16 * i + 8:12 + 16 * i + 12], "big") for i in range(num_tables)]
    assert all(o % 4 == 0 for o in offsets)


def test_schedule_api(server):
    status, _, body = get(server, "/api/config")
    config = json.loads(body)
    assert config["width"] == 640 and config["track"] is None and config["settings"]["duration"] == 6
    status, _, body = get(server, "/api/schedule")
    full = json.loads(body)
    assert status == 200 and full["shown"] == 20 and full["items"][0]["text"] == "<img onerror=x>0"
    status, _, body = get(server, "/api/schedule?density=0.5&area=0.5")
    assert status == 200 and json.loads(body)["shown"] == 10
    status, _, body = get(server, "/api/schedule?density=2")
    assert status == 400 and "invalid layout setting density" in json.loads(body)["error"]


def test_config_from_query():
    base = LayoutConfig(speed_px_s=100, max_on_screen=5)
    changed = config_from_query(base, "duration=5&speed=none&max=&density=0.25&overlap=1&unknown=3")
    assert changed.duration_s == 5 and changed.speed_px_s is None and changed.max_on_screen is None
    assert changed.density == 0.25 and changed.anti_overlap is False
    with pytest.raises(LayoutError, match="not a number"):
        config_from_query(base, "area=half")


def test_play_command_serves_until_interrupted(tmp_path):
    """`danmask play` end to end as a user runs it: prints the address, serves, stops cleanly on Ctrl-C, even when
    started in the background."""
    import os
    import signal
    import subprocess
    import sys

    import numpy as np

    from danmask.synthetic import make_video
    from danmask.track import MaskTrack

    try:
        find_font()
    except FontError as exc:
        pytest.skip(str(exc))
    clip = make_video(tmp_path / "clip.mp4", frames=10, shape=(90, 160))
    MaskTrack(mask_size=(90, 160), source_size=(90, 160), time_base=clip.time_base,
              masks=[np.where(m, 255, 0).astype(np.uint8) for m in clip.masks], pts=clip.pts).save(tmp_path / "c.dmask")
    comments = tmp_path / "c.xml"
    comments.write_text('<i><d p="0.1,1,25,16777215">你好</d></i>', encoding="utf-8")
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "danmask.cli", "play", str(clip.path), "-c", str(comments),
                             "-t", str(tmp_path / "c.dmask"), "--port", "0", "--no-browser", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # as when started in the background (`&`): SIGINT comes in ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        assert line.startswith("danmask player: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/config", timeout=10) as response:
            assert json.loads(response.read())["comments"] == 1
        with urllib.request.urlopen(url + "media/track.dmask", timeout=10) as response:
            assert response.read() == (tmp_path / "c.dmask").read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0, proc.stderr.read()


def test_play_command_errors_are_one_line(tmp_path, capsys):
    from danmask.cli import main

    assert main(["play", str(tmp_path / "missing.mp4"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("danmask play: error:") and err.count("\n") == 1
