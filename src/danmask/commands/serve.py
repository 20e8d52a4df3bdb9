"""`danmask serve`: the HTTP service for a video site: uploads, masks, comments, the player (FastAPI + uvicorn)."""
from __future__ import annotations

import argparse
import os
import sys

from ._argtypes import int_at_least, int_between
from ._flags import add_model

DESCRIPTION = """\
Serve masks and danmaku to players (OpenAPI at /docs):
  POST /v1/videos                         upload a video (multipart field `file`; Authorization: Bearer TOKEN)
  GET  /v1/videos/{id}                    status: queued, running, done or failed; progress; error
  GET  /v1/videos/{id}/mask.dmask         the mask track; /mask.webmask Bilibili's; /video the upload (ranges)
  GET  /v1/videos/{id}/comments           comments as JSON, or ?format=xml for Bilibili XML
  POST /v1/videos/{id}/comments           a viewer's comment {time, mode, colour, text} (rate-limited per client)
  GET  /v1/videos/{id}/player             the web player bound to the video, with a live comment box

Uploads need the token (--token or $DANMASK_TOKEN; without one, uploads are refused); reads do not. Jobs run on
a bounded pool of local worker processes, or on Ray with --address. Files live under --data; state in SQLite
(DATA/danmask.db) unless --db gives sqlite:///PATH or postgresql://USER@HOST/DB. A server killed mid-job takes the
job up again when it starts.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="HTTP service: uploads, masks, comments, player (FastAPI)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int_between(0, 65535), default=8766, help="port (default 8766)")
    p.add_argument("--data", default="danmask-data", help="folder for uploads and masks (default ./danmask-data)")
    p.add_argument("--db", metavar="URL", help="database URL: sqlite:///PATH or postgresql://... (default sqlite:///DATA/danmask.db)")
    p.add_argument("--token", metavar="T", help="bearer token for writes (default $DANMASK_TOKEN)")
    p.add_argument("--address", metavar="A", help="run jobs on this Ray cluster (auto, ray://HOST:PORT) instead of locally")
    add_model(p, "segmentation model (default: the runtime default)")
    p.add_argument("--workers", type=int_at_least(1), default=1, metavar="N", help="local job processes (default 1)")
    p.add_argument("--max-upload-mb", type=int_at_least(1), default=2048, metavar="MB", help="upload size limit (default 2048)")
    p.add_argument("--comment-rate", default="5/10", metavar="N/SECONDS",
                   help="comments one client may post per window (default 5/10)")
    p.set_defaults(func=run)


def comment_rate(text: str) -> tuple[int, float]:
    from ..errors import DanmaskError

    try:
        count, seconds = text.split("/")
        rate = int(count), float(seconds)
    except ValueError:
        raise DanmaskError(f"--comment-rate: expected N/SECONDS such as 5/10, got {text!r}") from None
    if rate[0] < 1 or not rate[1] > 0:
        raise DanmaskError(f"--comment-rate: N >= 1 and SECONDS > 0, got {text!r}")
    return rate


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import DanmaskError
    from ..outputs import check_folder
    from ..runtime import DEFAULT_MODEL

    try:
        import uvicorn

        from ..serve.app import Settings, create_app
        from ..serve.store import Store, sqlite_url
    except ModuleNotFoundError as exc:
        raise DanmaskError(f"danmask serve needs the serve extra ({exc.name} is missing): "
                           "pip install 'danmask[serve]'") from exc
    data = check_folder(Path(args.data).absolute())
    settings = Settings(data=data, db_url=args.db or sqlite_url(data / "danmask.db"),
                        token=args.token or os.environ.get("DANMASK_TOKEN") or None,
                        model=args.model or DEFAULT_MODEL, workers=args.workers, address=args.address,
                        upload_limit=args.max_upload_mb << 20, comment_rate=comment_rate(args.comment_rate))
    Store(settings.db_url).close()  # a bad URL or an unreachable database: one line now, not a traceback later
    if not settings.token:
        print("danmask serve: warning: no --token or DANMASK_TOKEN: uploads are refused", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"danmask serve: warning: listening on {args.host}: other machines can reach it", file=sys.stderr)
    try:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise DanmaskError(f"cannot listen on {args.host}:{args.port}") from exc
    return 0
