"""What `danmask batch` is given: video files, folders of videos, or text files listing one video per line."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ..errors import DanmaskError

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".flv", ".ts", ".mpg", ".mpeg",
                            ".wmv", ".3gp"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Every video the inputs name, in order, each once: a folder gives its videos (by suffix, recursively, sorted),
    a .txt/.lst file one path per line (blank lines and # comments skipped; relative to the list's folder), any
    other path is taken as a video (a missing or broken one fails its own manifest row, not the batch).

    Raises:
        DanmaskError: a list file that cannot be read, or inputs that name no video at all.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        elif item.suffix.lower() in LIST_SUFFIXES and item.is_file():
            found += _listed(item)
        else:
            found.append(item)
    unique = list(dict.fromkeys(p.absolute() for p in found))
    if not unique:
        raise DanmaskError(f"no videos in {', '.join(map(str, inputs))}")
    return unique


def _listed(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DanmaskError(f"{path}: cannot read the list ({exc})") from exc
    entries = (line.strip() for line in lines)
    return [path.parent / entry for entry in entries if entry and not entry.startswith("#")]


def output_names(videos: Sequence[Path]) -> dict[Path, str]:
    """A file-name stem per video: its own stem, plus a short hash of its path where two videos share one."""
    stems: dict[str, int] = {}
    for video in videos:
        stems[video.stem] = stems.get(video.stem, 0) + 1
    return {video: video.stem if stems[video.stem] == 1
            else f"{video.stem}-{hashlib.sha1(str(video).encode()).hexdigest()[:8]}" for video in videos}
