"""Lazy `.dmask` reader: random access by time with one block decoded on demand, so memory does not grow with
the video's length (a 2-hour film at 25 fps is 180,000 masks; `MaskTrack.load` would hold them all).

Opening reads the header, the block index and the person table only; `mask_at(t)` decodes the block that holds
time t and keeps the last few decoded blocks (LRU), so playback and burn-in, which move forward, decode each
block once. `items()` walks the whole track block after block for writers of other formats.
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from .errors import TrackError
from .track import (HEADER, INDEX_ENTRY, PEOPLE_ENTRY, BlockEntry, MaskTrack,
                    PersonLayer, Which, _Packed, _unpack, decode_block, decode_block_people, journal_entries,
                    read_index, read_people_table, resolve_selection, select_mask, unpack_header)

CACHE_BLOCKS = 4


class _Block(NamedTuple):
    pts: list[int]
    masks: list[np.ndarray]
    people: list[_Packed] | None


class TrackReader:
    """A .dmask file (version 1 or 2, or a journal with `salvage`) read block by block.

    The reading side of `MaskTrack` (`len`, `index_at`, `mask_at`, `people_at`, `select`, `ids`, `person_frames`,
    `has_people`, `version`, `duration_s`), plus `items()` and `to_track()`.

    With `salvage`, every block's checksums are verified when the file is opened (one pass, one block in memory at
    a time) and the damaged ones are left out and described in `damage`, as `MaskTrack.load` does. `people=False`
    reads the union only.

    Raises:
        TrackError: unreadable file, damaged header, index or person table; a damaged block when it is decoded.
    """

    def __init__(self, path: str | Path, *, salvage: bool = False, people: bool = True,
                 cache_blocks: int = CACHE_BLOCKS) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = self.path.open("rb")
        except OSError as exc:
            raise TrackError(f"{self.path}: cannot read ({exc.strerror or exc})") from exc
        self._cache: OrderedDict[int, _Block] = OrderedDict()
        self._cache_blocks = max(1, cache_blocks)
        try:
            self._open(salvage, people)
        except TrackError as exc:
            self._file.close()
            raise TrackError(f"{self.path}: {exc}") from exc

    def _open(self, salvage: bool, people: bool) -> None:
        self._size = self.path.stat().st_size
        head = self._read(0, HEADER.size)
        self.header = unpack_header(head)
        if self.header.journal:
            read_index(head, salvage)  # refuses a journal unless salvaging
            entries = journal_entries(self._read, self._size, self.header.people)
        else:
            index_end = HEADER.size + self.header.blocks * INDEX_ENTRY.size + 4
            head = self._read(0, index_end + 4)
            if self.header.people:
                count = int.from_bytes(head[index_end:index_end + 4].ljust(4, b"\0"), "little")
                head = self._read(0, index_end + 4 + count * PEOPLE_ENTRY.size + 4)
            entries = read_index(head)[1]
        self.people_read = people and self.header.people
        self.damage: list[str] = []
        table = read_people_table(head, self.header) if self.people_read and not self.header.journal else None
        self._counts: dict[int, tuple[int, int]] = table or {}
        if salvage:
            entries = self._scan(entries)
            if table is not None and not self.damage and table != self._counts:
                raise TrackError("person table disagrees with the blocks: the file is damaged")
        self.entries = entries
        self._ends = [e.offset for e in entries[1:]] + [self._size]
        self._starts = np.cumsum([0] + [e.frames for e in entries]).tolist()
        self._first_times = [float(e.first_pts * self.header.time_base) for e in entries]

    def _read(self, at: int, size: int) -> bytes:
        """Bytes [at, at + size), cut at the end of the file: a damaged count never allocates what is not there."""
        size = min(size, self._size - at)
        if at < 0 or size <= 0:
            return b""
        self._file.seek(at)
        return self._file.read(size)

    def _scan(self, entries: list[BlockEntry]) -> list[BlockEntry]:
        """Salvage: decode every block once; keep those that decode, describe the others in `damage`, and count
        who is in the kept ones (a journal has no person table, a damaged file's table counts lost frames)."""
        kept, counts = [], {}
        ends = [e.offset for e in entries[1:]] + [self._size]
        for number, (entry, end) in enumerate(zip(entries, ends)):
            try:
                block = self._decode(number, entry, end)
            except TrackError as exc:
                self.damage.append(f"{exc} ({entry.frames} frames lost)")
                continue
            kept.append(entry)
            for frame in block.people or ():
                for pid, salient, _ in frame:
                    count = counts.setdefault(pid, [0, 0])
                    count[0] += 1
                    count[1] += salient
        if self.people_read:
            self._counts = {pid: (c[0], c[1]) for pid, c in sorted(counts.items())}
        return kept

    def _decode(self, number: int, entry: BlockEntry, end: int) -> _Block:
        blob = self._read(entry.offset, max(0, end - entry.offset))
        pts, masks = decode_block(blob, self.header, entry, number, base=entry.offset)
        people = decode_block_people(blob, self.header, entry, number, base=entry.offset) if self.people_read else None
        return _Block(pts, masks, people)

    def _block(self, number: int) -> _Block:
        block = self._cache.get(number)
        if block is None:
            try:
                block = self._decode(number, self.entries[number], self._ends[number])
            except TrackError as exc:
                raise TrackError(f"{self.path}: {exc}") from exc
            if number + 1 < len(self.entries) and block.pts[-1] >= self.entries[number + 1].first_pts:
                raise TrackError(f"{self.path}: block {number + 1}: pts {self.entries[number + 1].first_pts} "
                                 "does not increase")
            self._cache[number] = block
            if len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(number)
        return block

    def _locate(self, index: int) -> tuple[_Block, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} of a track of {len(self)}")
        number = bisect.bisect_right(self._starts, index) - 1
        return self._block(number), index - self._starts[number]

    # --------------------------------------------------------------- the reading side of MaskTrack

    mask_size = property(lambda self: self.header.mask_size)
    source_size = property(lambda self: self.header.source_size)
    time_base = property(lambda self: self.header.time_base)

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def has_people(self) -> bool:
        return self.people_read

    @property
    def version(self) -> int:
        return 2 if self.header.people else 1

    def ids(self) -> list[int]:
        return sorted(self._counts)

    def person_frames(self) -> dict[int, tuple[int, int]]:
        return dict(sorted(self._counts.items()))

    @property
    def duration_s(self) -> float:
        """As `MaskTrack.duration_s`: first frame to last plus a typical frame duration."""
        n = len(self)
        if not n:
            return 0.0
        first, last = self.entries[0].first_pts, self.pts_at(n - 1)
        step = (last - first) / (n - 1) if n > 1 else 0
        return float((last - first + step) * self.time_base)

    def pts_at(self, index: int) -> int:
        block, k = self._locate(index)
        return block.pts[k]

    def index_at(self, t: float) -> int:
        """Index of the frame displayed at t seconds (last frame with time <= t); before the first -> 0."""
        if not len(self):
            raise TrackError(f"{self.path}: mask track is empty")
        number = max(0, bisect.bisect_right(self._first_times, float(t)) - 1)
        times = [float(p * self.time_base) for p in self._block(number).pts]
        return self._starts[number] + max(0, bisect.bisect_right(times, float(t)) - 1)

    def mask_at(self, t: float) -> np.ndarray:
        """The mask of the frame displayed at t seconds (one block decoded, then cached)."""
        block, k = self._locate(self.index_at(t))
        return block.masks[k]

    def people_at(self, index: int) -> list[PersonLayer]:
        block, k = self._locate(index)
        return [] if block.people is None else self._layers(block.people[k])

    def _layers(self, packed: _Packed) -> list[PersonLayer]:
        return [PersonLayer(pid, salient, _unpack(bits, self.mask_size[1]).astype(np.uint8) * np.uint8(255))
                for pid, salient, bits in packed]

    def select(self, index: int, which: Which = "salient") -> np.ndarray:
        ids = resolve_selection(which, self._counts, self.has_people)
        block, k = self._locate(index)
        return select_mask(block.masks[k], block.people[k] if block.people else (), which, ids)

    def items(self, which: Which = "salient") -> Iterator[tuple[int, np.ndarray]]:
        """(pts, mask protecting `which`) of every frame in order, one block in memory at a time."""
        ids = resolve_selection(which, self._counts, self.has_people)
        for number in range(len(self.entries)):
            block = self._block(number)
            for k, pts in enumerate(block.pts):
                yield pts, select_mask(block.masks[k], block.people[k] if block.people else (), which, ids)

    def records(self) -> Iterator[tuple[int, np.ndarray, list[PersonLayer] | None]]:
        """(pts, union mask, people or None) of every frame in order: what `TrackWriter.append` takes."""
        for number in range(len(self.entries)):
            block = self._block(number)
            for k, pts in enumerate(block.pts):
                yield pts, block.masks[k], None if block.people is None else self._layers(block.people[k])

    def to_track(self) -> MaskTrack:
        """The whole track in memory (short clips, tests)."""
        track = MaskTrack(self.mask_size, self.source_size, self.time_base)
        track.damage = list(self.damage)
        if self.has_people:
            track._people = []
        for number in range(len(self.entries)):
            block = self._block(number)
            for k, pts in enumerate(block.pts):
                track._add(pts, block.masks[k], block.people[k] if block.people else None)
        return track

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrackReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
