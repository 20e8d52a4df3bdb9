"""`danmask play`'s local web server: the page, the video (with HTTP Range for seeking), the mask track,
the font, and the layout schedule computed here in Python for whatever settings the page asks for.

It binds 127.0.0.1 by default and serves a fixed set of routes only (no directory listing, no paths taken from
the URL). Every response carries a strict Content-Security-Policy, so even a bug that put comment text into
HTML could not run script; the page itself only ever uses textContent and canvas fillText for comment text.
"""
from __future__ import annotations

import json
import mimetypes
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from ..errors import DanmaskError
from ..runtime.base import ModelSpec, SegModel
from ..segmenter import TemporalConfig
from .comments import Comment
from .font import find_font, web_font_bytes
from .inbrowser import ISOLATION_HEADERS, browser_model, model_config, ort_file
from .layout import LayoutConfig, LayoutError, layout

STATIC_DIR = Path(__file__).with_name("static")
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
# the modules of web/ the player page imports (tests/test_web_modules.py checks the list against the imports)
WEB_MODULES = ("dmask.js", "sprite.js", "segment.js", "temporal.js", "zoom.js")
STATIC_FILES = {"/": "index.html", "/player.js": "player.js", "/player.css": "player.css"}
CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
CHUNK = 1 << 16
# URL query name -> (LayoutConfig field, parser); what the page's controls may change
QUERY_FIELDS = {
    "duration": ("duration_s", float), "speed": ("speed_px_s", float), "fixed": ("fixed_duration_s", float),
    "scale": ("font_scale", float), "area": ("area", float), "density": ("density", float),
    "max": ("max_on_screen", int), "overlap": ("anti_overlap", lambda v: v not in ("1", "true")),
    "opacity": ("opacity", float),
}


@dataclass(frozen=True)
class PlayerContent:
    """What the page plays: a browser-playable video, its comments, an optional .dmask track, the font."""

    video: Path
    shape: tuple[int, int]  # (height, width) of the displayed video: the schedule's coordinate space
    comments: tuple[Comment, ...]
    config: LayoutConfig
    font_file: Path
    track: Path | None = None
    title: str = ""
    browser_model: ModelSpec | None = None  # computed in the viewer's browser when there is no track


def prepare_content(video: str | Path, workdir: Path, *, comments: str | Path | None = None,
                    track: str | Path | None = None, model: SegModel | str | None = None, mask: bool = True,
                    config: LayoutConfig | None = None, font: str | Path | None = None,
                    progress: bool = False, log: Callable[[str], object] = lambda line: None,
                    threads: int = 1, device: str = "auto", temporal: TemporalConfig | None = None,
                    mask_size: tuple[int, int] | None = None, in_browser: bool = False) -> PlayerContent:
    """Everything `danmask play` serves, made ready in `workdir` (a temporary folder the caller owns).

    A video the browser cannot play is re-encoded to H.264 MP4 (same timestamps); without `track`, and unless
    `mask` is False, the masks are computed now with `model` (run with `threads`, `device`, the `temporal` stage,
    at `mask_size`: see `pipeline.segment_video`) and saved as a .dmask in `workdir`, or with `in_browser` left
    to the viewer's browser (`model` must then be a whole-frame ONNX model named by path or registry name;
    default: the fast model). A loaded `model` (e.g. a person tracker set to protect everyone) is used as is.

    Raises:
        VideoError, TrackError, CommentError, FontError, ModelError: bad inputs, with one-line messages.
    """
    from ..pipeline import segment_video
    from ..runtime import DEFAULT_MODEL, FAST_MODEL
    from ..trackreader import TrackReader
    from ..video import probe
    from .comments import load_comments
    from .render import browser_incompatibility, check_track, reencode_for_browser

    video = Path(video)
    font_file = find_font(font)
    info = probe(video)
    loaded = load_comments(comments) if comments else None
    if loaded:
        log(f"comments: {loaded.summary()}")
    track_path = Path(track) if track else None
    browser_spec = None
    if in_browser and mask and not track_path:
        browser_spec = browser_model(model or FAST_MODEL)
        log(f"masks will be computed in the browser with {browser_spec.name}")
    if track_path:
        with TrackReader(track_path, people=False) as reader:  # the page reads the person layers itself
            check_track(reader, info)
    elif mask and not browser_spec:
        model = model or DEFAULT_MODEL
        name = model if isinstance(model, str) else model.spec.name
        log(f"computing masks with {name} (save them with `danmask segment` to skip this next time)")
        track_path = workdir / "track.dmask"
        segment_video(video, model, output=track_path, threads=threads, device=device, config=temporal,
                      mask_size=mask_size, progress=progress).close()
    playable = video
    reason = browser_incompatibility(video)
    if reason:
        log(f"re-encoding for the browser ({reason}) ...")
        playable = workdir / "video.mp4"
        reencode_for_browser(video, playable, progress=progress)
    return PlayerContent(video=playable, shape=(info.height, info.width),
                         comments=tuple(loaded.comments) if loaded else (), config=config or LayoutConfig(),
                         font_file=font_file, track=track_path, title=video.name, browser_model=browser_spec)


class PlayerServer:
    """A threaded HTTP server in a background thread; `url` is the page's address once started."""

    def __init__(self, content: PlayerContent, host: str = "127.0.0.1", port: int = 0) -> None:
        self.content = content
        schedule_json = lru_cache(maxsize=32)(lambda config: layout(
            list(content.comments), content.shape, config, content.font_file).to_json().encode("utf-8"))
        handler = type("Handler", (_Handler,), {"content": content, "schedule_json": staticmethod(schedule_json),
                                                "font_bytes": web_font_bytes(content.font_file)})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise DanmaskError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="danmask-player", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self) -> "PlayerServer":
        """Serve in the background (idempotent, so `with PlayerServer(...).start() as server` works)."""
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "PlayerServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def settings_json(cfg: LayoutConfig) -> dict:
    """The layout settings the page's controls start from (keys of QUERY_FIELDS)."""
    return {"duration": cfg.duration_s, "speed": cfg.speed_px_s, "fixed": cfg.fixed_duration_s,
            "scale": cfg.font_scale, "area": cfg.area, "density": cfg.density, "max": cfg.max_on_screen,
            "overlap": not cfg.anti_overlap, "opacity": cfg.opacity}


def config_from_query(base: LayoutConfig, query: str) -> LayoutConfig:
    """Apply the page's settings (e.g. `density=0.5&duration=6`) to the command line's; unknown keys ignored.

    Raises:
        LayoutError: a value that is not a number or out of range.
    """
    changes = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        if key not in QUERY_FIELDS:
            continue
        name, parse = QUERY_FIELDS[key]
        raw = values[-1]
        if raw in ("", "none") and name in ("speed_px_s", "max_on_screen"):
            changes[name] = None
            continue
        try:
            changes[name] = parse(raw)
        except ValueError:
            raise LayoutError(f"setting {key}={raw!r} is not a number") from None
    return replace(base, **changes)


class _Handler(BaseHTTPRequestHandler):
    content: PlayerContent
    schedule_json: staticmethod
    font_bytes: bytes
    server_version = "danmask"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Quiet: a player serving range requests would flood the terminal."""

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._route(head=False)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            if path in STATIC_FILES:
                self._send_file(STATIC_DIR / STATIC_FILES[path], head)
            elif path[1:] in WEB_MODULES:
                self._send_file(WEB_DIR / path[1:], head)
            elif path == "/media/video":
                self._send_file(self.content.video, head)
            elif path == "/media/track.dmask" and self.content.track is not None:
                self._send_file(self.content.track, head)
            elif path == "/media/model.onnx" and self.content.browser_model is not None:
                self._send_file(Path(self.content.browser_model.path), head, "application/octet-stream")
            elif path.startswith("/ort/") and (found := ort_file(path[5:], "gzip" in self.headers.get(
                    "Accept-Encoding", ""))):
                body, ctype, extra = found
                self._headers(HTTPStatus.OK, ctype, len(body), {**extra, "Cache-Control": "max-age=86400"})
                if not head:
                    self.wfile.write(body)
            elif path == "/media/font":
                self._send_bytes(self.font_bytes, "font/ttf", head, charset=False)
            elif path == "/favicon.ico":
                self._headers(HTTPStatus.NO_CONTENT, "image/x-icon", 0)
            elif path == "/api/config":
                self._send_bytes(self._config_json(), "application/json", head)
            elif path == "/api/schedule":
                self._send_schedule(url.query, head)
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser cancelled (seeking does this constantly)

    def _config_json(self) -> bytes:
        c = self.content
        cfg = c.config
        return json.dumps({
            "title": c.title, "width": c.shape[1], "height": c.shape[0], "video": "/media/video",
            "track": "/media/track.dmask" if c.track else None, "font": "/media/font",
            "settings": settings_json(cfg), "comments": len(c.comments),
            "model": model_config(c.browser_model, "/media/model.onnx") if c.browser_model else None,
            "ort": "/ort/",
        }, ensure_ascii=False).encode("utf-8")

    def _send_schedule(self, query: str, head: bool) -> None:
        try:
            config = config_from_query(self.content.config, query)
            body = self.schedule_json(config)
        except DanmaskError as exc:
            self._send_bytes(json.dumps({"error": str(exc)}).encode(), "application/json", head,
                             HTTPStatus.BAD_REQUEST)
            return
        self._send_bytes(body, "application/json", head)

    def _headers(self, status: HTTPStatus, ctype: str, length: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in {"Cache-Control": "no-store", **ISOLATION_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_bytes(self, body: bytes, ctype: str, head: bool, status: HTTPStatus = HTTPStatus.OK,
                    charset: bool = True) -> None:
        self._headers(status, ctype + "; charset=utf-8" if charset else ctype, len(body))
        if not head:
            self.wfile.write(body)

    def _send_file(self, path: Path, head: bool, ctype: str | None = None) -> None:
        """A file, whole or the one byte range asked for (what <video> needs to seek)."""
        try:
            size = path.stat().st_size
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        ctype = ctype or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype in ("text/html", "text/javascript", "application/javascript", "text/css"):
            ctype += "; charset=utf-8"
        span = _byte_range(self.headers.get("Range"), size)
        if span == "invalid":
            self._headers(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "text/plain", 0,
                          {"Content-Range": f"bytes */{size}"})
            return
        start, end = span if span else (0, size - 1)
        extra = {"Accept-Ranges": "bytes"}
        status = HTTPStatus.OK
        if span:
            status = HTTPStatus.PARTIAL_CONTENT
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._headers(status, ctype, end - start + 1 if size else 0, extra)
        if head or size == 0:
            return
        with path.open("rb") as fh:
            fh.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> (start, end) inclusive; None: whole file; "invalid": 416.

    Multi-range requests are answered with the whole file (allowed by RFC 9110; browsers do not send them).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or "," in header:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size else "invalid"
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "invalid"
    return start, end
