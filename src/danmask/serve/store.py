"""Service state: videos (status, progress, error) and their comments, in SQLite (default) or PostgreSQL.

Plain SQL through the standard library's sqlite3 or psycopg 3, one connection behind a lock (requests are short;
the segmentation itself runs elsewhere). `sqlite:///PATH` or `postgresql://...` URLs.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ..errors import DanmaskError

STATUSES = ("queued", "running", "done", "failed")
_SCHEMA = {
    "sqlite": ["""CREATE TABLE IF NOT EXISTS videos (id TEXT PRIMARY KEY, filename TEXT NOT NULL, status TEXT NOT NULL,
               progress REAL NOT NULL DEFAULT 0, error TEXT, frames INTEGER, created REAL NOT NULL, updated REAL NOT NULL)""",
               """CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY AUTOINCREMENT, video_id TEXT NOT NULL,
               time REAL NOT NULL, mode TEXT NOT NULL, colour INTEGER NOT NULL, text TEXT NOT NULL, client TEXT NOT NULL,
               created REAL NOT NULL)"""],
    "postgresql": ["""CREATE TABLE IF NOT EXISTS videos (id TEXT PRIMARY KEY, filename TEXT NOT NULL, status TEXT NOT NULL,
                   progress DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT, frames INTEGER,
                   created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)""",
                   """CREATE TABLE IF NOT EXISTS comments (id BIGSERIAL PRIMARY KEY, video_id TEXT NOT NULL,
                   time DOUBLE PRECISION NOT NULL, mode TEXT NOT NULL, colour INTEGER NOT NULL, text TEXT NOT NULL,
                   client TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)"""],
}
_INDEX = "CREATE INDEX IF NOT EXISTS comments_by_video ON comments (video_id, time)"
VIDEO_FIELDS = ("id", "filename", "status", "progress", "error", "frames", "created", "updated")
COMMENT_FIELDS = ("id", "time", "mode", "colour", "text")


class Store:
    """The database of one server (and of its job processes, each with its own Store on the same URL).

    Raises:
        DanmaskError: an unsupported URL, or a database that cannot be opened.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        try:
            if url.startswith("sqlite:///"):
                self.kind = "sqlite"
                self._conn = sqlite3.connect(url[len("sqlite:///"):], check_same_thread=False, timeout=30,
                                             isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
            elif url.startswith(("postgresql://", "postgres://")):
                import psycopg

                self.kind = "postgresql"
                self._conn = psycopg.connect(url, autocommit=True, client_encoding="utf-8")
            else:
                raise DanmaskError(f"database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
            for statement in _SCHEMA[self.kind] + [_INDEX]:
                self._run(statement)
        except DanmaskError:
            raise
        except Exception as exc:  # sqlite3.Error, psycopg.Error, ImportError: one line for the CLI
            raise DanmaskError(f"cannot open the database {_safe(url)}: {str(exc).splitlines()[0]}") from exc

    def _run(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def add_video(self, video_id: str, filename: str) -> None:
        now = time.time()
        self._run("INSERT INTO videos (id, filename, status, progress, created, updated) VALUES (?, ?, 'queued', 0, ?, ?)",
                  (video_id, filename, now, now))

    def video(self, video_id: str) -> dict | None:
        rows = self._run(f"SELECT {', '.join(VIDEO_FIELDS)} FROM videos WHERE id = ?", (video_id,))
        return dict(zip(VIDEO_FIELDS, rows[0])) if rows else None

    def update(self, video_id: str, *, status: str | None = None, progress: float | None = None,
               error: str | None = None, frames: int | None = None) -> None:
        """Change what is given (status, progress, error, frames) of one video."""
        changes = {k: v for k, v in (("status", status), ("progress", progress), ("error", error),
                                     ("frames", frames)) if v is not None}
        if status in ("queued", "running"):
            changes["error"] = None
        assignments = ", ".join(f"{k} = ?" for k in changes)
        self._run(f"UPDATE videos SET {assignments}, updated = ? WHERE id = ?",
                  (*changes.values(), time.time(), video_id))

    def unfinished(self) -> list[str]:
        """Videos queued or running, oldest first: the jobs a restarted server takes up again."""
        return [r[0] for r in self._run("SELECT id FROM videos WHERE status IN ('queued', 'running') ORDER BY created")]

    def add_comment(self, video_id: str, t: float, mode: str, colour: int, text: str, client: str) -> int:
        rows = self._run("INSERT INTO comments (video_id, time, mode, colour, text, client, created) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id", (video_id, t, mode, colour, text, client,
                                                                        time.time()))
        return int(rows[0][0])

    def comments(self, video_id: str) -> list[dict]:
        rows = self._run(f"SELECT {', '.join(COMMENT_FIELDS)} FROM comments WHERE video_id = ? ORDER BY time, id",
                         (video_id,))
        return [dict(zip(COMMENT_FIELDS, r)) for r in rows]

    def comment_count(self, video_id: str) -> int:
        return int(self._run("SELECT COUNT(*) FROM comments WHERE video_id = ?", (video_id,))[0][0])

    def close(self) -> None:
        self._conn.close()


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url
