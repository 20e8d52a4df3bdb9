"""The live page's server (`danmask live --serve`): FastAPI + uvicorn in a background thread.

The video reaches the page as JPEG frames over one WebSocket, each in a single binary message with its pts and
the PNG of its own mask (alpha = person). The page draws the frame and cuts the person out of the danmaku layer
with the mask from the same message, so the mask always belongs to the frame on screen: there is no clock to
synchronise and nothing to look up, and what a slow page skips it skips as frame+mask pairs. (HLS would add
seconds of segment latency and a second timeline to align; JPEG costs more bytes, which a loopback or LAN page
can afford.) Every page gets the newest frame only: a page that falls behind skips frames, never lags.

Viewers post comments over the same WebSocket; they are checked and rate-limited as in `danmask serve`, laid out
by the one engine (`comments.LiveComments`) and the new placement is broadcast to every open page at once. Text
reaches the page as JSON strings only, which it draws with canvas text and shows with textContent. The socket only
accepts pages of this server (the Origin header must name this host), every HTTP response carries the player's
strict Content-Security-Policy, and the server binds the loopback interface unless told otherwise.
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..danmaku.font import web_font_bytes
from ..danmaku.player import CSP, WEB_DIR
from ..errors import CommentError, DanmaskError
from ..pipeline import default_mask_size
from ..serve.comments import MAX_CHARS, RateLimit, check_comment
from ..danmaku.layout import Placement
from .comments import LiveComments
from .newest import Newest
from .source import Captured

STATIC_DIR = Path(__file__).with_name("static")
PAGE_FILES = {"/": (STATIC_DIR / "live.html", "text/html"), "/live.js": (STATIC_DIR / "live.js", "text/javascript"),
              "/live.css": (STATIC_DIR / "live.css", "text/css"),
              "/sprite.js": (WEB_DIR / "sprite.js", "text/javascript")}
# The picture the pages get: at most 960 px on the long side, JPEG quality 75: 8-24 Mbit/s at 25 fps on real
# 720p clips (textured grass is the worst), about half of full-size quality-80 frames. The page scales it to the
# canvas, whose coordinates (the layout's) stay the source's.
PAGE_LONG_SIDE = 960
JPEG_QUALITY = 75
MAX_MESSAGE_BYTES = 1 << 14  # what a page may send: one comment
START_TIMEOUT_S = 10.0


def frame_message(pts: int, time_base, t: float, rgb: np.ndarray, mask: np.ndarray, latency_ms: float,
                  arrived_ms: float = 0.0) -> bytes:
    """One binary message: u32 header length (big-endian), JSON header, JPEG of the frame (at most PAGE_LONG_SIDE
    px on the long side), PNG of its mask (alpha).

    The header carries pts (with time_base as [num, den]), the session time t, the byte lengths, the mask's
    capture-to-ready latency, and when the frame arrived (ms since the epoch: a page on the same machine can tell
    how long after its arrival a frame reached the screen).
    """
    h, w = default_mask_size(rgb.shape[:2], PAGE_LONG_SIDE)
    if (h, w) != rgb.shape[:2]:
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    alpha = np.zeros((*mask.shape, 4), np.uint8)
    alpha[:, :, 3] = mask
    ok2, png = cv2.imencode(".png", alpha, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not (ok and ok2):
        raise DanmaskError("cannot encode a frame for the live page")
    header = json.dumps({"pts": pts, "tb": [time_base.numerator, time_base.denominator], "t": t,
                         "jpeg": len(jpeg), "mask": len(png), "latency_ms": round(latency_ms, 2),
                         "arrived_ms": round(arrived_ms, 1)}).encode()
    return struct.pack(">I", len(header)) + header + jpeg.tobytes() + png.tobytes()


class _Viewer:
    """One open page: every text message in order, and only the newest frame."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.texts: deque[str] = deque()
        self.frame: bytes | None = None
        self.wake = asyncio.Event()

    async def pump(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.texts:
                    await self.ws.send_text(self.texts.popleft())
                if self.frame is not None:
                    data, self.frame = self.frame, None
                    await self.ws.send_bytes(data)
        except Exception:  # the page went away mid-send: its receive loop ends the connection
            return


class Hub:
    """The open pages; frames come from the encoder thread, placements from the session and the comment workers."""

    def __init__(self) -> None:
        self.viewers: set[_Viewer] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def send_frame(self, data: bytes) -> None:
        """From any thread."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._frame, data)

    def _frame(self, data: bytes) -> None:
        for viewer in self.viewers:
            viewer.frame = data
            viewer.wake.set()

    def announce(self, placements: list[Placement]) -> None:
        """From any thread: new placements to every open page (a page that opens later gets them in its hello)."""
        if placements and self.loop is not None:
            text = json.dumps({"type": "items", "items": [asdict(p) for p in placements]}, ensure_ascii=False)
            self.loop.call_soon_threadsafe(self._text, text)

    def _text(self, text: str) -> None:
        for viewer in self.viewers:
            viewer.texts.append(text)
            viewer.wake.set()


def create_app(comments: LiveComments, hub: Hub, now: Callable[[], float], title: str,
               rate: tuple[int, float]) -> FastAPI:
    """The page, its script and font, and the WebSocket at /ws."""
    app = FastAPI(title="danmask live", docs_url=None, redoc_url=None, openapi_url=None)
    limiter = RateLimit(*rate)
    font = web_font_bytes(comments.font_file)
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
               "Cache-Control": "no-store"}

    def hello() -> dict:
        h, w = comments.shape
        items = [asdict(p) for p in comments.placements() if p.end > now()]
        return {"type": "hello", "title": title, "width": w, "height": h, "opacity": comments.config.opacity,
                "font": "media/font", "max_chars": MAX_CHARS, "items": items}

    for route, (path, media_type) in PAGE_FILES.items():
        body = path.read_bytes()
        app.add_api_route(route, lambda body=body, media_type=media_type: Response(
            body, media_type=f"{media_type}; charset=utf-8", headers=headers), methods=["GET"])
    app.add_api_route("/media/font", lambda: Response(font, media_type="font/ttf", headers=headers),
                      methods=["GET"])

    @app.websocket("/ws")
    async def live_socket(ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != ws.headers.get("host"):
            await ws.close(code=1008)  # another site's page in this browser: no frames, no posting
            return
        await ws.accept()
        hub.loop = asyncio.get_running_loop()
        viewer = _Viewer(ws)
        viewer.texts.append(json.dumps(hello(), ensure_ascii=False))
        viewer.wake.set()
        hub.viewers.add(viewer)
        pump = asyncio.create_task(viewer.pump())
        client = ws.client.host if ws.client else "unknown"
        try:
            while True:  # the layout runs in a worker thread: the loop keeps sending frames meanwhile
                reply = await run_in_threadpool(_comment, await ws.receive_text(), client)
                if reply is not None:
                    viewer.texts.append(json.dumps(reply, ensure_ascii=False))
                    viewer.wake.set()
        except WebSocketDisconnect:
            pass
        finally:
            hub.viewers.discard(viewer)
            pump.cancel()

    def _comment(message: str, client: str) -> dict | None:
        """Post one comment (its placement is announced to every page); an error goes to the poster alone."""
        try:
            body = json.loads(message)
        except ValueError:
            return {"type": "error", "error": "a message is a JSON object"}
        if not isinstance(body, dict) or body.get("type") != "comment":
            return {"type": "error", "error": "unknown message (expected type: comment)"}
        t = now()
        try:
            _, mode, colour, text = check_comment({**body, "time": t}, None)
        except CommentError as exc:
            return {"type": "error", "error": str(exc)}
        if not limiter.allow(client):
            return {"type": "error", "error": "too many comments: wait a few seconds"}
        due, placed = comments.add(t, mode, colour, text)
        hub.announce([*due, placed] if placed is not None else due)  # to every page, the poster's too
        return None if placed is not None else {"type": "error", "error": "no room on screen for that comment now"}

    return app


class LiveServer:
    """The page server in a background thread, and the encoder thread that turns the newest masked frame into the
    message every page gets."""

    def __init__(self, comments: LiveComments, host: str = "127.0.0.1", port: int = 0, title: str = "",
                 rate: tuple[int, float] = (5, 10.0)) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise DanmaskError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
        self.hub = Hub()
        self.now = 0.0  # session time of the newest masked frame: when a posted comment starts
        app = create_app(comments, self.hub, lambda: self.now, title, rate)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="off",
                                                    ws_max_size=MAX_MESSAGE_BYTES))
        self._serving = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                         name="danmask-live-server", daemon=True)
        self.frames: Newest[tuple] = Newest()
        self._encoding = threading.Thread(target=self._encode, name="danmask-live-encode", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self) -> LiveServer:
        self._serving.start()
        self._encoding.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._serving.is_alive() or time.monotonic() > deadline:
                raise DanmaskError("the live page server did not start")
            time.sleep(0.02)
        return self

    def announce(self, placements: list[Placement]) -> None:
        """Scheduled comments the stream has reached, to every open page."""
        self.hub.announce(placements)

    def publish(self, item: Captured, mask: np.ndarray, latency_ms: float) -> None:
        """Hand the newest masked frame to the pages. The encoder thread converts it from YUV straight to the
        page's size and encodes it, off the model's thread; nothing is done while nobody watches, and a frame the
        encoder had no time for is replaced by the next."""
        self.now = item.t
        if self.hub.viewers:
            arrived_ms = time.time() * 1000.0 - latency_ms  # the mask is ready now
            self.frames.put((item, mask, latency_ms, arrived_ms))

    def _encode(self) -> None:
        while (queued := self.frames.get()) is not None:
            item, mask, latency_ms, arrived_ms = queued
            page = default_mask_size(item.shape, PAGE_LONG_SIDE)
            rgb = item.rgb(page if page != item.shape else None)
            self.hub.send_frame(frame_message(item.pts, item.time_base, item.t, rgb, mask, latency_ms, arrived_ms))

    def stop(self) -> None:
        self.frames.close()
        self.server.should_exit = True
        self._serving.join(5)
        self._encoding.join(5)
        self.sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
