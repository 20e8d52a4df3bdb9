"""Streaming `.dmask` writer: masks go to disk block by block as they come, so memory does not grow with the video.

While it runs the writer appends to a **journal** (`OUT.dmask.part`, docs/mask-track.md "Journal"): the header with
the JOURNAL flag, then each block preceded by its index entry and that entry's CRC32. Blocks are encoded and
written in a thread, so encoding overlaps decoding and inference. `close()` writes the finished track (header,
index, person table, the blocks copied from the journal) to a temporary name, renames it to OUT.dmask and removes
the journal. A crash leaves only the journal, which `MaskTrack.load(..., salvage=True)` and `TrackReader(...,
salvage=True)` read up to its last complete block; no partial file ever carries the final name.
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
import zlib
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import OutputError, TrackError
from .outputs import atomic_file, check_file, copy_range, error, written_through
from .track import (BLOCK_SECONDS, HEADER, INDEX_ENTRY, JOURNAL_ENTRY, BlockEntry, Header, MaskTrack, _check_size,
                    check_mask, encode_block, journal_record, pack_header, pack_people, pack_people_table)

_QUEUE_BLOCKS = 2  # blocks waiting for the encoder thread (about 2 s of masks)
_DONE = object()


def journal_path(path: str | Path) -> Path:
    """Where the writer of `path` keeps its journal until the track is complete: OUT.dmask.part beside it, or in
    the temporary folder when `path` is a device or a link (nothing is created beside /dev/full)."""
    path = Path(path)
    if written_through(path):
        return Path(tempfile.gettempdir()) / f"danmask-{os.getpid()}-{id(path)}.dmask.part"
    return path.with_name(path.name + ".part")


class TrackWriter:
    """Write a mask track frame by frame (same arguments and rules as `MaskTrack` and `MaskTrack.append`).

    Use as a context manager: leaving it normally finishes the file, leaving it by an exception removes the
    journal (nothing is written under the final name). `close()` finishes explicitly and returns the size.

    Raises:
        OutputError: the file cannot be written (checked when opened, and while writing).
        TrackError: a bad mask, pts that do not increase, person layers after frames written without them.
    """

    def __init__(self, path: str | Path, mask_size: tuple[int, int], source_size: tuple[int, int],
                 time_base: Fraction) -> None:
        self.path = check_file(path)
        self.journal = journal_path(self.path)
        self.mask_size = _check_size(mask_size, "mask_size")
        self.source_size = _check_size(source_size, "source_size")
        self.time_base = Fraction(time_base)
        MaskTrack(self.mask_size, self.source_size, self.time_base)  # the same checks as an in-memory track
        self.people: bool | None = None  # decided by the first block: whether its frames came with people
        self.frames = 0
        self.counts: dict[int, list[int]] = {}
        self.entries: list[BlockEntry] = []  # offsets in the journal
        self._span = BLOCK_SECONDS / float(self.time_base)
        self._pts: list[int] = []
        self._masks: list[np.ndarray] = []
        self._frame_people: list = []
        self._last_pts: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=_QUEUE_BLOCKS)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._file = None
        self.size: int | None = None  # set once the track is complete

    def append(self, pts: int, mask: np.ndarray,
               people: Iterable[tuple[int, bool, np.ndarray]] | None = None) -> None:
        """Add the mask of the next displayed frame (and its people, as `MaskTrack.append`)."""
        self._raise_thread_error()
        check_mask(mask, self.mask_size, "mask")
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise TrackError(f"pts must increase: {pts} after {self._last_pts}")
        packed = None if people is None else pack_people(people, self.mask_size)
        if packed is not None and self.people is False:
            raise TrackError("person layers cannot start after frames written without them")
        if self._pts and pts - self._pts[0] >= self._span:
            self._flush()
        self._pts.append(pts)
        self._masks.append(mask >= 128)
        self._frame_people.append(packed)
        self._last_pts = pts
        self.frames += 1
        for pid, salient, _ in packed or ():
            count = self.counts.setdefault(pid, [0, 0])
            count[0] += 1
            count[1] += salient

    def _flush(self) -> None:
        if self.people is None:
            self.people = any(p is not None for p in self._frame_people)
            self._start()
        people = [p or () for p in self._frame_people] if self.people else None
        if not self._put((self._pts, self._masks, people)):
            self._raise_thread_error()
        self._pts, self._masks, self._frame_people = [], [], []

    def _start(self) -> None:
        try:
            self._file = self.journal.open("wb")
            self._file.write(pack_header(self._header(journal=True)))
        except OSError as exc:
            raise error(self.journal, exc) from exc
        self._thread = threading.Thread(target=self._encode_loop, name="danmask-track-writer", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Hand `item` to the encoder thread; False when the thread has stopped (its error says why)."""
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _encode_loop(self) -> None:
        """The encoder thread: one block at a time, encoded, then appended to the journal with its record."""
        try:
            while (item := self._queue.get()) is not _DONE:
                pts, masks, people = item
                block = encode_block(pts, masks, people, self.mask_size)
                entry = BlockEntry(pts[0], self._file.tell() + JOURNAL_ENTRY.size, len(pts))
                self._file.write(journal_record(entry) + block)
                self._file.flush()
                self.entries.append(entry)
        except BaseException as exc:  # handed to the caller's thread at its next append or close
            self._error = exc

    def _raise_thread_error(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise error(self.journal, exc) if isinstance(exc, OSError) else exc

    def _header(self, journal: bool = False) -> Header:
        return Header(self.mask_size, self.source_size, self.time_base, 0 if journal else self.frames,
                      0 if journal else len(self.entries), bool(self.people), journal)

    def close(self) -> int:
        """Write the last block, then the finished track under its own name; returns its size in bytes."""
        if self.size is not None:
            return self.size
        if self.people is None and not self._pts:
            self.people = False  # an empty track
            self._start()
        if self._pts:
            self._flush()
        self._stop()
        self._raise_thread_error()
        try:
            self.size = self._assemble()
        except (OSError, OutputError) as exc:
            if self.journal.parent != self.path.parent:  # a journal in the temporary folder helps nobody
                self.journal.unlink(missing_ok=True)
            if isinstance(exc, OutputError):
                raise
            raise error(self.path, exc) from exc
        return self.size

    def _stop(self) -> None:
        if self._thread is not None:
            self._put(_DONE)
            self._thread.join()
        if self._file is not None:
            self._file.close()

    def _assemble(self) -> int:
        """Header, index and person table, then the journal's blocks without their records: the v1/v2 layout."""
        table = pack_people_table({pid: tuple(c) for pid, c in sorted(self.counts.items())}) if self.people else b""
        offset = HEADER.size + len(self.entries) * INDEX_ENTRY.size + 4 + len(table)
        sizes = [b.offset for b in self.entries[1:]] + [self.journal.stat().st_size + JOURNAL_ENTRY.size]
        sizes = [end - JOURNAL_ENTRY.size - e.offset for e, end in zip(self.entries, sizes)]
        index = b""
        for entry, size in zip(self.entries, sizes):
            index += INDEX_ENTRY.pack(entry.first_pts, offset, entry.frames)
            offset += size
        with atomic_file(self.path) as out, self.journal.open("rb") as src:
            out.write(pack_header(self._header()) + index + zlib.crc32(index).to_bytes(4, "little") + table)
            for entry, size in zip(self.entries, sizes):
                copy_range(src, out, entry.offset, size)
        self.journal.unlink(missing_ok=True)
        return offset

    def abort(self) -> None:
        """Stop without a track: the journal is removed and nothing is left under the final name."""
        if self.size is None:
            self._stop()
            self.journal.unlink(missing_ok=True)

    def __enter__(self) -> TrackWriter:
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
