"""Writing outputs without tracebacks: paths are checked before the work, and every OSError while writing
becomes an OutputError (one line and exit code 2 in the CLI).

Checking first matters because the work can take hours: `danmask segment` on a long video should not find out at
the end that the output folder does not exist.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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


def written_through(path: Path) -> bool:
    """A link, a device such as /dev/full, a pipe: written to as it is, never replaced by a renamed file."""
    return path.is_symlink() or (path.exists() and not path.is_file())


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears under `path` only once complete: written to a temporary name in the same folder,
    flushed to disk, then renamed. An error or a crash leaves nothing under `path` (a crash may leave the hidden
    `.NAME.*.tmp`, which no reader takes for an output). A path that is a link or not a regular file (a device,
    a pipe) is written through instead, never replaced.

    Raises:
        OutputError: any OSError while writing or renaming.
    """
    path = Path(path)
    if written_through(path):
        try:
            with path.open("wb") as fh:
                yield fh
        except OSError as exc:
            raise error(path, exc) from exc
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise error(path, exc) from exc
    finally:
        _remove(tmp)


def copy_range(src: BinaryIO, dst: BinaryIO, offset: int, size: int, chunk: int = 1 << 20) -> None:
    """Copy `size` bytes of `src` from `offset` into `dst`, a chunk at a time."""
    src.seek(offset)
    while size > 0:
        data = src.read(min(size, chunk))
        if not data:
            raise OSError(f"{getattr(src, 'name', 'spool')}: ends {size} bytes early")
        dst.write(data)
        size -= len(data)


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # the write error is what the user needs to see
