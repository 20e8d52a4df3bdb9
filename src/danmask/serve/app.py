"""The routes of `danmask serve` (OpenAPI at /docs): uploads, job status, mask files, comments and the player.

Rules kept here: a video id is 32 hex digits made by the server (uuid4) and is checked against that pattern before
any path is built from it; writes (uploads) need `Authorization: Bearer TOKEN`, reads do not; comments are viewer
posts, without the token but with text limits and a per-client rate limit; comment text only ever leaves as JSON
strings or escaped XML character data, and every response carries a strict Content-Security-Policy.
"""
from __future__ import annotations

import hmac
import os
import re
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..danmaku.inbrowser import ISOLATION_HEADERS, browser_model, model_config, ort_file
from ..danmaku.player import CSP, STATIC_DIR, WEB_DIR, WEB_MODULES, config_from_query, settings_json
from ..errors import CommentError, DanmaskError
from ..runtime import FAST_MODEL
from .comments import RateLimit, bilibili_xml, check_comment, to_comments
from .jobs import JobRunner
from .store import Store
from .uploads import NotAVideo, UploadTooLarge, receive_upload, sniff

VIDEO_ID = re.compile(r"[0-9a-f]{32}")
PLAYER_FILES = {"player.js": (STATIC_DIR / "player.js", "text/javascript"),
                "player.css": (STATIC_DIR / "player.css", "text/css"),
                **{name: (WEB_DIR / name, "text/javascript") for name in WEB_MODULES}}
MEDIA_TYPES = {".dmask": "application/octet-stream", ".webmask": "application/octet-stream"}
DEFAULT_UPLOAD_LIMIT = 2 << 30
OPEN_PATHS = ("/docs", "/redoc", "/openapi.json")  # Swagger UI's page needs its own scripts


@dataclass(frozen=True)
class Settings:
    """What one server was started with (`danmask serve` flags)."""

    data: Path
    db_url: str
    token: str | None
    model: str
    workers: int = 1
    address: str | None = None
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    comment_rate: tuple[int, float] = (5, 10.0)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI application; opening the store and resuming unfinished jobs happen at start-up."""
    state: dict = {}
    limiter = RateLimit(*settings.comment_rate)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for sub in ("videos", "uploads"):
            (settings.data / sub).mkdir(parents=True, exist_ok=True)
        for stale in (settings.data / "uploads").glob("*.upload"):  # a killed server's half-received uploads
            stale.unlink(missing_ok=True)
        store = Store(settings.db_url)
        runner = JobRunner(settings.data, settings.db_url, settings.model, settings.workers, settings.address)
        unfinished = store.unfinished()
        for video_id in unfinished:
            store.update(video_id, status="queued", progress=0.0)
        runner.resume(unfinished)
        state.update(store=store, runner=runner)
        yield
        runner.close()
        store.close()

    app = FastAPI(title="danmask", summary="person masks and danmaku for a video site", lifespan=lifespan)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith(OPEN_PATHS):
            response.headers["Content-Security-Policy"] = CSP
            response.headers.update(ISOLATION_HEADERS)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def store() -> Store:
        return state["store"]

    def video_row(video_id: str) -> dict:
        """The video's row; 404 for anything but a known id (never a path built from what the client sent)."""
        row = store().video(video_id) if VIDEO_ID.fullmatch(video_id) else None
        if row is None:
            raise HTTPException(404, "no such video")
        return row

    def folder(video_id: str) -> Path:
        return settings.data / "videos" / video_row(video_id)["id"]

    def require_token(request: Request) -> None:
        if not settings.token:
            raise HTTPException(403, "uploads are off: start the server with --token or DANMASK_TOKEN")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            raise HTTPException(401, "a write needs Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})

    @app.post("/v1/videos", status_code=202, summary="upload a video (multipart field `file`; needs the token)",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["file"],
                  "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
    async def upload(request: Request) -> dict:
        require_token(request)
        try:
            tmp, filename = await receive_upload(request, settings.upload_limit, settings.data / "uploads")
        except UploadTooLarge as exc:
            raise HTTPException(413, str(exc)) from exc
        except NotAVideo as exc:
            raise HTTPException(415, str(exc)) from exc
        try:
            suffix = await run_in_threadpool(sniff, tmp)
        except NotAVideo as exc:
            tmp.unlink(missing_ok=True)
            raise HTTPException(415, str(exc)) from exc
        video_id = uuid.uuid4().hex
        target = settings.data / "videos" / video_id
        target.mkdir()
        os.replace(tmp, target / f"source{suffix}")
        store().add_video(video_id, Path(filename).name[:200])
        state["runner"].submit(video_id)
        return {"id": video_id, "status": "queued"}

    @app.get("/v1/videos/{video_id}", summary="status (queued, running, done, failed), progress and error")
    def status(video_id: str) -> dict:
        row = video_row(video_id)
        return {k: row[k] for k in ("id", "filename", "status", "progress", "error", "frames")}

    def done_file(video_id: str, name: str) -> FileResponse:
        row = video_row(video_id)
        if row["status"] != "done":
            raise HTTPException(409, f"masks not ready: the video is {row['status']}")
        return FileResponse(folder(video_id) / name, media_type=MEDIA_TYPES[Path(name).suffix])

    @app.get("/v1/videos/{video_id}/mask.dmask", summary="the .dmask track (byte ranges)")
    def dmask(video_id: str) -> FileResponse:
        return done_file(video_id, "mask.dmask")

    @app.get("/v1/videos/{video_id}/mask.webmask", summary="Bilibili's .webmask (byte ranges)")
    def webmask(video_id: str) -> FileResponse:
        return done_file(video_id, "mask.webmask")

    @app.get("/v1/videos/{video_id}/video", summary="the uploaded video (byte ranges)")
    def video(video_id: str) -> FileResponse:
        source = next(folder(video_id).glob("source.*"), None)
        if source is None:
            raise HTTPException(404, "the video file is gone")
        return FileResponse(source, media_type="video/mp4" if source.suffix == ".mp4" else None)

    @app.get("/v1/videos/{video_id}/comments", summary="the comments, as JSON (default) or Bilibili XML")
    def comments(video_id: str, format: str = "json") -> Response:  # noqa: A002 - the query parameter's name
        rows = store().comments(video_row(video_id)["id"])
        if format == "xml":
            return Response(bilibili_xml(rows), media_type="application/xml")
        if format != "json":
            raise HTTPException(400, "format must be json or xml")
        return JSONResponse(rows)

    @app.post("/v1/videos/{video_id}/comments", status_code=201,
              summary="post a comment {time, mode, colour, text} (rate-limited per client)")
    async def post_comment(video_id: str, request: Request) -> dict:
        row = video_row(video_id)
        try:
            body = await request.json()
        except ValueError as exc:
            raise HTTPException(400, "the body must be a JSON object") from exc
        try:
            t, mode, colour, text = check_comment(body, None)
        except CommentError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not limiter.allow(request.client.host if request.client else "unknown"):
            raise HTTPException(429, "too many comments: wait a few seconds", {"Retry-After": "5"})
        comment_id = store().add_comment(row["id"], t, mode, colour, text, request.client.host if request.client
                                         else "unknown")
        return {"id": comment_id, "time": t, "mode": mode, "colour": colour, "text": text}

    # ------------------------------------------------------------ the web player bound to one video

    @app.get("/v1/videos/{video_id}/player", summary="the web player for this video, with a live comment box")
    def player(video_id: str) -> RedirectResponse:
        return RedirectResponse(f"/v1/videos/{video_row(video_id)['id']}/player/")

    @app.get("/v1/videos/{video_id}/player/", include_in_schema=False)
    def player_page(video_id: str) -> FileResponse:
        video_row(video_id)
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

    @app.get("/v1/videos/{video_id}/player/{name}", include_in_schema=False)
    def player_file(video_id: str, name: str) -> FileResponse:
        video_row(video_id)
        if name not in PLAYER_FILES:
            raise HTTPException(404, "no such file")
        path, media_type = PLAYER_FILES[name]
        return FileResponse(path, media_type=f"{media_type}; charset=utf-8")

    @app.get("/v1/videos/{video_id}/player/api/config", include_in_schema=False)
    def player_config(video_id: str) -> dict:
        from ..danmaku.layout import LayoutConfig

        row = video_row(video_id)
        height, width = _shape(folder(video_id))
        base = f"/v1/videos/{row['id']}"
        done = row["status"] == "done"
        return {"title": row["filename"], "width": width, "height": height, "video": f"{base}/video",
                "track": f"{base}/mask.dmask" if done else None, "font": "/v1/font",
                "settings": settings_json(LayoutConfig()), "comments": store().comment_count(row["id"]),
                "post": f"{base}/comments",
                # until the job is done, the viewer's browser computes the masks itself
                "model": None if done else model_config(browser_model(FAST_MODEL), "/v1/model.onnx"),
                "ort": "/v1/ort/"}

    @app.get("/v1/videos/{video_id}/player/api/schedule", include_in_schema=False)
    def player_schedule(video_id: str, request: Request) -> Response:
        from ..danmaku.layout import LayoutConfig

        row = video_row(video_id)
        try:
            config = config_from_query(LayoutConfig(), request.url.query)
            rows = store().comments(row["id"])
            body = _schedule(tuple(tuple(sorted(r.items())) for r in rows), _shape(folder(video_id)), config)
        except DanmaskError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return Response(body, media_type="application/json")

    @app.get("/v1/model.onnx", include_in_schema=False)
    def model_file() -> FileResponse:
        return FileResponse(browser_model(FAST_MODEL).path, media_type="application/octet-stream")

    @app.get("/v1/ort/{name}", include_in_schema=False)
    def ort_runtime(name: str, request: Request) -> Response:
        found = ort_file(name, "gzip" in request.headers.get("accept-encoding", ""))
        if found is None:
            raise HTTPException(404, "no such file")
        body, media_type, headers = found
        return Response(body, media_type=media_type, headers={**headers, "Cache-Control": "max-age=86400"})

    @app.get("/v1/font", include_in_schema=False)
    def font() -> Response:
        from ..danmaku.font import find_font, web_font_bytes

        try:
            return Response(web_font_bytes(find_font()), media_type="font/ttf")
        except DanmaskError as exc:
            raise HTTPException(503, str(exc)) from exc

    return app


@lru_cache(maxsize=256)
def _shape(folder: Path) -> tuple[int, int]:
    """(h, w) of the video in `folder` (probed once)."""
    from ..video import probe

    info = probe(next(folder.glob("source.*")))
    return info.height, info.width


@lru_cache(maxsize=64)
def _schedule(rows: tuple, shape: tuple[int, int], config) -> bytes:
    """The player's layout of these comments (the same engine as the burn-in), cached until a comment is added."""
    from ..danmaku.font import find_font
    from ..danmaku.layout import layout

    return layout(to_comments([dict(r) for r in rows]), shape, config, find_font()).to_json().encode("utf-8")
