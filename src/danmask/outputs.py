"""Writing outputs without tracebacks: paths are checked before the work, and every OSError while writing
becomes an OutputError (one line and exit code 2 in the CLI).

Checking first matters because the work can take hours: `danmask segment` on a long video should not find out at
the end that the output folder does not exist.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


def error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line OutputError for an OSError on `path`."""
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


def check_file(path: str | Path) -> Path:
    """Fail now, not after the work, when the file `path` could not be written.

    Raises:
        OutputError: a folder in the way, a missing or read-only folder, a file that cannot be opened for writing.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{folder}: no such folder")
    existed = path.exists()
    try:
        with path.open("ab"):  # appends nothing: an existing file keeps its bytes
            pass
    except OSError as exc:
        raise error(path, exc) from exc
    if not existed:
        path.unlink(missing_ok=True)
    return path


def check_folder(path: str | Path) -> Path:
    """Create the folder `path` (and its parents) and prove that a file can be written in it.

    Raises:
        OutputError: a file in the way, or a folder that cannot be created or written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in this folder ({exc.strerror or exc})") from exc
    return path


def write_bytes(path: str | Path, data: bytes) -> int:
    """Write `data` to `path`; returns its length. A failed write leaves no half-written file behind (unless the
    path existed before, e.g. a device such as /dev/full, which is never removed).

    Raises:
        OutputError: any OSError (missing folder, read-only, a folder in the way, full disk).
    """
    path = Path(path)
    existed = path.exists()
    try:
        with path.open("wb") as fh:
            fh.write(data)
    except OSError as exc:
        if not existed and path.is_file():
            _remove(path)
        raise error(path, exc) from exc
    return len(data)


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except OSError:
        pass  # the write error is what the user needs to see
