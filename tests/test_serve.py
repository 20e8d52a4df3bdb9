"""`danmask serve` as a site runs it: the real uvicorn server on a loopback port, driven over HTTP, with SQLite and
with a PostgreSQL server the test starts itself; a server SIGKILLed mid-job and restarted; a bounded load test."""
from __future__ import annotations

import base64
import gzip
import json
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from glob import glob
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="danmask serve needs the serve extra: pip install 'danmask[serve]'")

from danmask.serve.loadtest import TOKEN, Server, free_port, load_test, multipart  # noqa: E402
from danmask.synthetic import make_video  # noqa: E402


def independent_webmask_records(data: bytes) -> list[int]:
    """A webmask reader written from Bilibili's layout alone (not danmask's): the record timestamps."""
    magic, version, check, count = struct.unpack_from(">4si4si", data)
    assert (magic, version, check) == (b"MASK", 1, b"\x02\x00\x00\x00")
    offsets = [struct.unpack_from(">qq", data, 16 + 16 * i)[1] for i in range(count)] + [len(data)]
    stamps = []
    for start, end in zip(offsets, offsets[1:]):
        raw, pos = gzip.decompress(data[start:end]), 0
        while pos < len(raw):
            length, ms = struct.unpack_from(">iq", raw, pos)
            payload = raw[pos + 12: pos + 12 + length]
            assert payload.startswith(b"data:image/svg+xml;base64,")
            assert base64.b64decode(payload[26:].replace(b"\n", b"")).startswith(b"<svg")
            stamps.append(ms)
            pos += 12 + length
    return stamps


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=45, shape=(90, 160)).path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("data"), "--max-upload-mb", "1", "--comment-rate", "3/60").start()
    yield s
    s.stop()


def test_upload_to_done_and_every_read(server, clip):
    status, body, _ = server.upload(clip.read_bytes())
    assert status == 202 and json.loads(body)["status"] == "queued"
    video_id = json.loads(body)["id"]
    state = server.wait_done(video_id)
    assert state["status"] == "done" and state["frames"] == 45 and state["progress"] == 1.0, state
    status, data, _ = server.get(f"/v1/videos/{video_id}/mask.webmask")
    assert status == 200 and len(independent_webmask_records(data)) == 45
    status, part, headers = server.get(f"/v1/videos/{video_id}/mask.dmask", {"Range": "bytes=0-3"})
    assert status == 206 and part == b"DMSK" and headers["Content-Range"].startswith("bytes 0-3/")
    status, video, _ = server.get(f"/v1/videos/{video_id}/video")
    assert status == 200 and video == clip.read_bytes()
    status, page, headers = server.get(f"/v1/videos/{video_id}/player/")
    assert status == 200 and b'id="comment-form"' in page and "script-src 'self'" in headers["Content-Security-Policy"]
    config = json.loads(server.get(f"/v1/videos/{video_id}/player/api/config")[1])
    assert config["track"].endswith("/mask.dmask") and config["post"].endswith("/comments")
    assert config["model"] is None  # the track is there: no masks computed in the browser
    assert server.get("/docs")[0] == 200 and "/v1/videos" in json.loads(server.get("/openapi.json")[1])["paths"]


def test_in_browser_runtime_is_served_and_pages_are_isolated(server):
    """What the player needs to compute masks itself while a job runs: the model and onnxruntime-web's files,
    looked up by name (never a path), the wasm gzip-compressed; pages cross-origin isolated for WASM threads."""
    status, body, headers = server.get("/v1/ort/ort-wasm-simd-threaded.wasm", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(body)[:4] == b"\0asm"
    assert server.get("/v1/ort/ort.wasm.min.mjs")[0] == 200
    for bad in ("/v1/ort/..%2fapp.py", "/v1/ort/VERSION", "/v1/ort/NOTICE", "/v1/ort/x.wasm"):
        assert server.get(bad)[0] == 404, bad
    status, model, headers = server.get("/v1/model.onnx")
    assert status == 200 and len(model) > 100_000
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "credentialless"


def test_writes_need_the_token_and_uploads_must_be_videos(server, clip):
    assert server.upload(clip.read_bytes(), token=None)[0] == 401
    assert server.upload(clip.read_bytes(), token="wrong")[0] == 401
    status, body, _ = server.upload(b"<html><script>alert(1)</script></html>", name="clip.mp4")
    assert status == 415 and json.loads(body)["detail"] == "not a video: the upload is markup (HTML or XML)"
    status, body, _ = server.upload(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)
    assert status == 415 and "\n" not in json.loads(body)["detail"]
    body, headers = multipart("big.mp4", os.urandom(2 << 20))  # --max-upload-mb 1
    assert raw_post(server, headers, [body], length=len(body)).startswith(b"HTTP/1.1 413")  # refused from the header
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536]) for i in range(0, len(body), 65536)]
    assert raw_post(server, headers, chunks).startswith(b"HTTP/1.1 413")  # chunked: counted as it arrives
    assert not list((server.data / "uploads").iterdir())


def raw_post(server: Server, headers: dict, chunks: list[bytes], length: int | None = None) -> bytes:
    """POST /v1/videos by hand, sending what the server still reads, then its answer (a refusal may come before
    the body is all sent, which urllib reports as a broken pipe)."""
    head = ["POST /v1/videos HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Authorization: Bearer {TOKEN}",
            *(f"{k}: {v}" for k, v in headers.items()),
            f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            if length is None:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed early
        return sock.recv(65536)


def test_ids_never_reach_the_filesystem(server):
    for path in ("/v1/videos/..%2F..%2Fetc%2Fpasswd", "/v1/videos/%2e%2e", "/v1/videos/" + "0" * 32,
                 "/v1/videos/../../etc/passwd/video", "/v1/videos/" + "a" * 31 + "%2F/mask.dmask",
                 "/v1/videos/" + "0" * 32 + "/player/..%2F..%2Fstore.py"):
        assert server.get(path)[0] == 404, path


def test_comments_are_stored_served_and_never_html(server, clip):
    video_id = json.loads(server.upload(clip.read_bytes())[1])["id"]
    hostile = '<img src=x onerror="alert(1)">&amp;]]>'
    status, body, _ = server.comment(video_id, time=0.5, mode="top", colour="#ff8000", text=hostile)
    assert status == 201 and json.loads(body)["text"] == hostile
    assert server.comment(video_id, time=0.7, mode=1, colour=0xFFFFFF, text="x" * 101)[0] == 422
    assert server.comment(video_id, time=-1, mode=1, colour=0, text="ok")[0] == 422
    assert server.comment(video_id, time=1.0, mode="sideways", colour=0, text="ok")[0] == 422
    rows = json.loads(server.get(f"/v1/videos/{video_id}/comments")[1])
    assert [(r["text"], r["mode"], r["colour"]) for r in rows] == [(hostile, "top", 0xFF8000)]
    status, xml, headers = server.get(f"/v1/videos/{video_id}/comments?format=xml")
    assert status == 200 and b"<img" not in xml and headers["Content-Type"].startswith("application/xml")
    from danmask.danmaku.comments import load_comments

    path = Path(tempfile.mkdtemp()) / "c.xml"
    path.write_bytes(xml)
    (back,) = load_comments(path).comments
    assert (back.text, back.mode, back.color, back.time_s) == (hostile, "top", 0xFF8000, 0.5)
    # --comment-rate 3/60: the fourth post in a minute is refused
    assert [server.comment(video_id, time=1.0, text=f"c{i}")[0] for i in range(3)] == [201, 201, 429]
    schedule = json.loads(server.get(f"/v1/videos/{video_id}/player/api/schedule")[1])
    assert hostile in [item["text"] for item in schedule["items"]]


def test_a_server_killed_mid_job_finishes_it_after_a_restart(tmp_path):
    long = make_video(tmp_path / "long.mp4", frames=900, shape=(180, 320)).path
    server = Server(tmp_path / "data").start()
    try:
        video_id = json.loads(server.upload(long.read_bytes())[1])["id"]
        deadline = time.monotonic() + 120
        while json.loads(server.get(f"/v1/videos/{video_id}")[1])["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        server.kill()
        time.sleep(1.5)  # the job's worker notices its server is gone and ends
        folder = tmp_path / "data" / "videos" / video_id
        assert not (folder / "mask.dmask").exists() and not (folder / "mask.webmask").exists()  # only the journal
        server.start()  # same data, same database
        state = server.wait_done(video_id, timeout=300)
        assert state["status"] == "done" and state["frames"] == 900
    finally:
        server.stop()


# ---------------------------------------------------------------- PostgreSQL, started by the test


def postgres_bin() -> Path:
    for candidate in [shutil.which("pg_ctl"), *sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)]:
        if candidate and Path(candidate).with_name("initdb").exists():
            return Path(candidate).parent
    pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster on a free loopback port (run as `nobody` when the tests run as root, since
    PostgreSQL refuses to run as root)."""
    bindir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="danmask-pg-"))
    as_user: Callable[[], None] | None = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(root, user.pw_uid, user.pw_gid)

        def drop_root() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        as_user = drop_root

    port = free_port()
    run = dict(preexec_fn=as_user, capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C"})
    subprocess.run([bindir / "initdb", "-D", root / "db", "-U", "danmask", "-A", "trust", "-E", "UTF8", "--no-sync"], **run)
    subprocess.run([bindir / "pg_ctl", "-D", root / "db", "-l", root / "log", "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], **run)
    try:
        yield f"postgresql://danmask@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", root / "db", "-m", "immediate", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_backed_server(postgres_url, clip, tmp_path):
    server = Server(tmp_path / "data", "--db", postgres_url).start()
    try:
        video_id = json.loads(server.upload(clip.read_bytes())[1])["id"]
        assert server.comment(video_id, time=0.2, text="hello from postgres")[0] == 201
        assert server.wait_done(video_id)["status"] == "done"
        assert json.loads(server.get(f"/v1/videos/{video_id}/comments")[1])[0]["text"] == "hello from postgres"
    finally:
        server.stop()
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT status FROM videos WHERE id = %s", (video_id,)).fetchone() == ("done",)


def test_bad_database_url_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "danmask.cli", "serve", "--data", str(tmp_path), "--db",
                           "mysql://x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "sqlite:///PATH" in proc.stderr


# ---------------------------------------------------------------- load


def test_load_on_loopback(clip, tmp_path):
    server = Server(tmp_path / "data", "--comment-rate", "100000/1", "--workers", "1").start()
    try:
        result = load_test(server, clip)
    finally:
        server.stop()
    print(json.dumps({k: v for k, v in result.items() if k != "errors"}))
    assert not result["errors"] and result["comments_lost"] == 0
    assert result["uploads_done"] == result["uploads"] and result["requests"] > 50


def test_the_player_posts_from_its_comment_box(clip, tmp_path):
    """The service's player page in headless Chromium: the viewer's comment goes through the box, is stored, laid
    out and drawn, and its markup stays text. (Its own server: the shared one's comment rate is spent.)"""
    from danmask.danmaku.browser import BrowserError, find_chromium
    from danmask.danmaku.font import find_font
    from danmask.errors import FontError

    try:
        import playwright  # noqa: F401

        find_chromium()
        find_font()
    except (ImportError, BrowserError, FontError) as exc:
        pytest.skip(f"needs Chromium, Playwright and a CJK font: {exc}")
    server = Server(tmp_path / "data").start()
    try:
        post_from_the_page(server, clip)
    finally:
        server.stop()


def post_from_the_page(server: Server, clip: Path) -> None:
    from danmask.danmaku.browser import launch_chromium, open_player

    video_id = json.loads(server.upload(clip.read_bytes())[1])["id"]
    assert server.wait_done(video_id)["status"] == "done"
    hostile = '<img src=x onerror="window.__pwned=1">弹幕'
    with launch_chromium() as chromium:
        page = open_player(chromium, f"{server.base}/v1/videos/{video_id}/player")
        assert page.evaluate("window.danmaskPlayer.state.track !== null")  # the .dmask came from the service
        page.fill("#comment-text", hostile)
        page.click("#comment-form button")
        page.wait_for_function("window.danmaskPlayer.state.items.length === 1")
        assert page.evaluate("window.danmaskPlayer.state.items[0].text") == hostile
        assert page.evaluate("window.__pwned === undefined && document.querySelectorAll('img').length === 0")
        page.close()
    rows = json.loads(server.get(f"/v1/videos/{video_id}/comments")[1])
    assert [r["text"] for r in rows] == [hostile]
