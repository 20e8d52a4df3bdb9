"""The batch manifest: one JSON object per video and line (`manifest.jsonl` in the output folder).

Fields: input, output (.dmask), webmask, frames, seconds (worker time spent on it), video_seconds, model, status
(done or failed), error (one line, or null). The file is rewritten whole, through a temporary name, after each
video, so it is never half written; a rerun keeps the rows of the videos it skips.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..outputs import atomic_file

FIELDS = ("input", "output", "webmask", "frames", "seconds", "video_seconds", "model", "status", "error")


def row(input: Path, *, output: Path | None = None, webmask: Path | None = None, frames: int | None = None,
        seconds: float | None = None, video_seconds: float | None = None, model: str, status: str,
        error: str | None = None) -> dict:
    """One manifest row (paths as strings, the error on one line)."""
    return {"input": str(input), "output": str(output) if output else None, "webmask": str(webmask) if webmask else None,
            "frames": frames, "seconds": None if seconds is None else round(seconds, 3),
            "video_seconds": None if video_seconds is None else round(video_seconds, 3), "model": model,
            "status": status, "error": None if error is None else " ".join(str(error).split())}


def read_manifest(path: Path) -> dict[str, dict]:
    """Rows of an existing manifest by input; lines that do not parse (a foreign file) are ignored."""
    rows: dict[str, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return rows
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("input"), str):
            rows[item["input"]] = item
    return rows


def write_manifest(path: Path, rows: Iterable[dict]) -> None:
    """Replace the manifest with `rows` (atomically)."""
    with atomic_file(path) as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
