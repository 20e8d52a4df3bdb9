"""Mask track: one person mask per displayed frame, keyed by PTS, stored as a compact `.dmask` file.

The byte layout is specified in docs/mask-track.md (the JavaScript reader in web/dmask.js follows it).
In short: 1-bit masks (threshold 128) at mask resolution, grouped in blocks of about one second; rows are
coded as edge positions predicted from the previous frame or the row above (danmask.maskcode), each block
is zlib-compressed and carries a CRC32, and an index of (first pts, byte offset) per block gives random access.

Version 2 adds who is who: after each block's union (the protected people, coded exactly as in version 1) a
second zlib stream holds one binary layer per tracked person with their id and, per frame, whether they were
salient. A reader that only wants the union never inflates it. Tracks without person layers stay version 1.
"""
from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import TrackError
from .maskcode import decode_frames, encode_frames
from .outputs import write_bytes

MAGIC = b"DMSK"
VERSION = 2  # the newest version read and written; a track without person layers is written as version 1
FLAG_PEOPLE = 1  # header flag (version 2): every block carries person layers, the person table follows the index
FLAG_JOURNAL = 1 << 31  # header flag (version 2): a journal, the file of a streaming writer that has not finished
JOURNAL_ENTRY = struct.Struct("<qQII")  # a journal record head: first pts, block offset, frame count, CRC32 of those
HEADER = struct.Struct("<4sHHHHHHIIIIII")  # see docs/mask-track.md
INDEX_ENTRY = struct.Struct("<qQI")  # first pts, byte offset, frame count
PEOPLE_ENTRY = struct.Struct("<III")  # person id, frames present, frames salient
BLOCK_HEAD = struct.Struct("<II")  # compressed size, CRC32 of the compressed bytes
BLOCK_SECONDS = 1.0
ZLIB_LEVEL = 9
PRESENT, SALIENT = 1, 2  # a person's state byte in one frame of a block; 0: absent
MAX_ID = 0xFFFFFFFF
MAX_MASK_PIXELS = 4096 * 4096  # a mask is never larger (--mask-size goes to 4096x4096): a hostile header cannot
# make a reader allocate gigabytes


class PersonLayer(NamedTuple):
    """One tracked person in one frame: stable id, whether protected (part of the union), uint8 0/255 mask."""

    id: int
    salient: bool
    mask: np.ndarray


# In memory a frame's people are (id, salient, np.packbits(mask >= 128, axis=1)) sorted by id: they are only
# ever used at 1 bit, and packed they take an eighth of the memory of the uint8 union.
_Packed = tuple[tuple[int, bool, np.ndarray], ...]
Which = str | Iterable[int]  # "salient", "all", or person ids


@dataclass
class MaskTrack:
    """Person masks of a video, one per displayed frame, in presentation order.

    `masks[i]` (uint8 0..255, shape `mask_size` (h, w)) is shown from `times[i]` until `times[i+1]`: the union
    of the protected (salient) people. Saving stores 1 bit per pixel (>= 128 is person), so a loaded track
    holds 0/255 masks. A track made by a person-tracking model also has person layers: every tracked person of
    every frame with a stable id (`people_at`, `ids`, `select`).
    """

    mask_size: tuple[int, int]  # (h, w) of every mask
    source_size: tuple[int, int]  # (h, w) of the displayed video frames
    time_base: Fraction
    masks: list[np.ndarray] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    _times: list[float] = field(default_factory=list, init=False, repr=False, compare=False)
    damage: list[str] = field(default_factory=list, compare=False)  # blocks skipped by a salvaging load
    _people: list[_Packed] | None = field(default=None, init=False, repr=False, compare=False)  # None: no layers
    _counts: dict[int, list[int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.mask_size = _check_size(self.mask_size, "mask_size")
        self.source_size = _check_size(self.source_size, "source_size")
        if self.mask_size[0] * self.mask_size[1] > MAX_MASK_PIXELS:
            raise TrackError(f"mask_size {self.mask_size} has more than {MAX_MASK_PIXELS} pixels")
        self.time_base = Fraction(self.time_base)
        if self.time_base <= 0:
            raise TrackError(f"time_base must be positive, got {self.time_base}")
        if len(self.masks) != len(self.pts):
            raise TrackError(f"{len(self.masks)} masks but {len(self.pts)} timestamps")
        masks, pts = list(self.masks), list(self.pts)
        self.masks, self.pts, self._times = [], [], []
        for p, m in zip(pts, masks):
            self.append(p, m)

    def append(self, pts: int, mask: np.ndarray,
               people: Iterable[tuple[int, bool, np.ndarray]] | None = None) -> None:
        """Add the mask of the next displayed frame; pts must increase.

        `people` lists every tracked person of the frame as (id, salient, uint8 mask), or is None for a track
        without person layers. Once a frame has a list the track has person layers, and frames given None
        (before or after) have nobody in them.
        """
        check_mask(mask, self.mask_size, "mask")
        if self.pts and int(pts) <= self.pts[-1]:
            raise TrackError(f"pts must increase: {pts} after {self.pts[-1]}")
        self._add(int(pts), mask, None if people is None else pack_people(people, self.mask_size))

    def _add(self, pts: int, mask: np.ndarray, people: _Packed | None) -> None:
        if people is not None and self._people is None:
            self._people = [()] * len(self.masks)
        if self._people is not None:
            self._people.append(people or ())
            for pid, salient, _ in people or ():
                counts = self._counts.setdefault(pid, [0, 0])
                counts[0] += 1
                counts[1] += salient
        self.masks.append(mask)
        self.pts.append(pts)
        self._times.append(float(pts * self.time_base))

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def times(self) -> list[float]:
        """Display time of each mask in seconds."""
        return list(self._times)

    @property
    def duration_s(self) -> float:
        """Time from the first frame to the last one plus a typical frame duration."""
        if not self.pts:
            return 0.0
        step = (self.pts[-1] - self.pts[0]) / (len(self.pts) - 1) if len(self.pts) > 1 else 0
        return float((self.pts[-1] - self.pts[0] + step) * self.time_base)

    def index_at(self, t: float) -> int:
        """Index of the frame displayed at t seconds (last frame with time <= t); before the first -> 0."""
        if not self.pts:
            raise TrackError("mask track is empty")
        return max(0, bisect.bisect_right(self._times, float(t)) - 1)

    def mask_at(self, t: float) -> np.ndarray:
        """The mask of the frame displayed at t seconds."""
        return self.masks[self.index_at(t)]

    @property
    def has_people(self) -> bool:
        """Whether the track has person layers (made by a person-tracking model)."""
        return self._people is not None

    @property
    def version(self) -> int:
        """The .dmask version `save` writes: 2 with person layers, else 1 (which every danmask reads)."""
        return 2 if self.has_people else 1

    def ids(self) -> list[int]:
        """Every person id in the track, ascending (none without person layers)."""
        return sorted(self._counts)

    def person_frames(self) -> dict[int, tuple[int, int]]:
        """Person id -> (frames they appear in, frames in which they are salient)."""
        return {pid: (c[0], c[1]) for pid, c in sorted(self._counts.items())}

    def people_at(self, index: int) -> list[PersonLayer]:
        """Every tracked person of frame `index` by id, with 0/255 masks; [] without person layers."""
        if self._people is None:
            return []
        return [PersonLayer(pid, salient, _unpack(bits, self.mask_size[1]).astype(np.uint8) * np.uint8(255))
                for pid, salient, bits in self._people[index]]

    def select(self, index: int, which: Which = "salient") -> np.ndarray:
        """The mask that protects `which` people in frame `index`.

        "salient" is the stored union. A set of ids is the union of those people's layers (nothing where none
        of them is in the frame). "all" is every tracked person plus the stored union, so it never uncovers
        anyone "salient" protects; without person layers it is the stored union.

        Raises:
            TrackError: an id the track does not have, or an unknown selection name.
        """
        ids = resolve_selection(which, self._counts, self.has_people)
        return select_mask(self.masks[index], self._people[index] if self._people is not None else (), which, ids)

    def items(self, which: Which = "salient") -> Iterator[tuple[int, np.ndarray]]:
        """(pts, select(i, which)) of every frame in order: what writers of other formats consume."""
        resolve_selection(which, self._counts, self.has_people)
        for i, pts in enumerate(self.pts):
            yield pts, self.select(i, which)

    def selected(self, which: Which) -> MaskTrack:
        """A track (without person layers) whose masks are `select(i, which)`: what export writes."""
        resolve_selection(which, self._counts, self.has_people)
        return MaskTrack(self.mask_size, self.source_size, self.time_base,
                         [self.select(i, which) for i in range(len(self))], list(self.pts))

    def save(self, path: str | Path) -> int:
        """Write the .dmask file; returns its size in bytes.

        Raises:
            OutputError: the file cannot be written (missing or read-only folder, a folder in the way, full disk).
        """
        return write_bytes(path, encode_track(self))

    @classmethod
    def load(cls, path: str | Path, salvage: bool = False, people: bool = True) -> MaskTrack:
        """Read a whole .dmask file (version 1 or 2), verifying every checksum.

        With `salvage`, damaged blocks are skipped and described in `track.damage` instead of failing the load,
        so every intact frame of a damaged file can still be used; a damaged header or index still fails.
        `people=False` reads the union only (person layers are neither inflated nor checked): less work for
        callers that never look at who is who, such as the burn-in.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrackError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        try:
            return decode_track(data, salvage, people)
        except TrackError as exc:
            raise TrackError(f"{path}: {exc}") from exc


def resolve_selection(which: Which, counts: dict[int, object], has_people: bool) -> frozenset[int] | None:
    """The ids `which` names in a track whose people are `counts` (id -> anything); None: the stored union.

    Raises:
        TrackError: an id the track does not have, or an unknown selection name.
    """
    if isinstance(which, str):
        if which == "salient" or (which == "all" and not has_people):
            return None
        if which == "all":
            return frozenset(counts)
        raise TrackError(f"unknown selection {which!r}: use 'all', 'salient' or person ids")
    ids = frozenset(int(i) for i in which)
    unknown = sorted(ids - counts.keys())
    if unknown:
        have = (f"its person ids: {', '.join(map(str, sorted(counts)))}" if counts
                else "it has person layers but nobody in them" if has_people
                else "it has no person layers; segment with a person-tracking model")
        raise TrackError(f"no person {', '.join(map(str, unknown))} in this track ({have})")
    return ids


def select_mask(union: np.ndarray, people: _Packed, which: Which, ids: frozenset[int] | None) -> np.ndarray:
    """One frame's mask for `which` (ids from resolve_selection): the union, the chosen layers, or both for "all"."""
    if ids is None:
        return union
    out = union.copy() if isinstance(which, str) else np.zeros_like(union)  # "all" keeps the union
    for pid, _, bits in people:
        if pid in ids:
            out[_unpack(bits, union.shape[1])] = 255
    return out


def check_mask(mask: np.ndarray, size: tuple[int, int], what: str) -> None:
    """A mask handed to a track must be uint8 at the track's (h, w)."""
    if mask.shape != size or mask.dtype != np.uint8:
        raise TrackError(f"{what} must be uint8 {size}, got {mask.dtype} {mask.shape}")


def pack_people(people: Iterable[tuple[int, bool, np.ndarray]], size: tuple[int, int]) -> _Packed:
    """(id, salient, uint8 mask) of one frame -> the packed, id-sorted form tracks keep; ids checked."""
    packed = []
    for pid, salient, mask in people:
        if not (isinstance(pid, (int, np.integer)) and 0 <= pid <= MAX_ID):
            raise TrackError(f"person id must be an integer in 0..{MAX_ID}, got {pid!r}")
        check_mask(mask, size, f"mask of person {pid}")
        packed.append((int(pid), bool(salient), np.packbits(mask >= 128, axis=1)))
    packed.sort(key=lambda p: p[0])
    if any(a[0] == b[0] for a, b in zip(packed, packed[1:])):
        raise TrackError(f"person ids repeat within a frame: {[p[0] for p in packed]}")
    return tuple(packed)


def _check_size(size: Sequence[int], name: str) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and 0 < v <= 65535 for v in size):
        raise TrackError(f"{name} must be (height, width) with 1..65535 pixels, got {size}")
    return int(size[0]), int(size[1])


def _unpack(bits: np.ndarray, width: int) -> np.ndarray:
    """Packed person mask -> bool (h, width)."""
    return np.unpackbits(bits, axis=1, count=width).view(bool)


@dataclass(frozen=True)
class Header:
    """Fixed-size start of a .dmask file."""

    mask_size: tuple[int, int]
    source_size: tuple[int, int]
    time_base: Fraction
    frames: int
    blocks: int
    people: bool = False  # person layers present (version 2, FLAG_PEOPLE)
    journal: bool = False  # an unfinished streaming write (version 2, FLAG_JOURNAL): records, no index


@dataclass(frozen=True)
class BlockEntry:
    """One row of the index: where a block starts in time and in the file."""

    first_pts: int
    offset: int
    frames: int


def pack_header(h: Header) -> bytes:
    """The 40 header bytes with their CRC: version 1 unless person layers or a journal need version 2."""
    flags = (FLAG_PEOPLE if h.people else 0) | (FLAG_JOURNAL if h.journal else 0)
    version = 2 if flags else 1
    fields_ = (MAGIC, version, HEADER.size, h.mask_size[1], h.mask_size[0], h.source_size[1], h.source_size[0],
               h.time_base.numerator, h.time_base.denominator, h.frames, h.blocks, flags)
    body = HEADER.pack(*fields_, 0)[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_header(data: bytes) -> Header:
    if len(data) < HEADER.size:
        raise TrackError(f"not a mask track: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, head_size, mw, mh, sw, sh, num, den, frames, blocks, flags, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TrackError(f"not a mask track (magic {magic!r}, expected {MAGIC!r})")
    if not 1 <= version <= VERSION:
        raise TrackError(f"unsupported mask track version {version} (this danmask reads 1 to {VERSION})")
    if zlib.crc32(data[: HEADER.size - 4]) != crc:
        raise TrackError("header checksum mismatch: the file is damaged")
    if head_size != HEADER.size or not (mw and mh and sw and sh and num and den):
        raise TrackError("header has zero sizes or time base: the file is damaged")
    if mw * mh > MAX_MASK_PIXELS:
        raise TrackError(f"header says {mw}x{mh} masks, larger than any danmask writes: the file is damaged")
    known = FLAG_PEOPLE | FLAG_JOURNAL
    if version >= 2 and flags & ~known:
        raise TrackError(f"unknown header flags {flags:#x} (this danmask knows {known:#x})")
    flags = flags if version >= 2 else 0
    return Header((mh, mw), (sh, sw), Fraction(num, den), frames, blocks, bool(flags & FLAG_PEOPLE),
                  bool(flags & FLAG_JOURNAL))


def _pack_stream(raw: bytes) -> bytes:
    """Block head + zlib stream: the unit every checksum covers."""
    packed = zlib.compress(raw, ZLIB_LEVEL)
    return BLOCK_HEAD.pack(len(packed), zlib.crc32(packed)) + packed


def _read_stream(data: bytes, at: int, where: str) -> bytes:
    """Check and inflate the stream whose head is at byte `at`."""
    if at + BLOCK_HEAD.size > len(data):
        raise TrackError(f"truncated: {where} lies beyond the end of the file ({len(data)} bytes)")
    size, crc = BLOCK_HEAD.unpack_from(data, at)
    packed = data[at + BLOCK_HEAD.size: at + BLOCK_HEAD.size + size]
    if len(packed) != size:
        raise TrackError(f"truncated: {where} needs {size} bytes, {len(packed)} left")
    if zlib.crc32(packed) != crc:
        raise TrackError(f"{where}: checksum mismatch, the file is damaged")
    try:
        return zlib.decompress(packed)
    except zlib.error as exc:
        raise TrackError(f"{where}: cannot inflate ({exc})") from exc


def encode_block(pts: Sequence[int], masks: Sequence[np.ndarray], people: Sequence[_Packed] | None,
                 size: tuple[int, int]) -> bytes:
    """One block's bytes (union stream, then the person stream when `people` is not None); masks are bool."""
    modes, values = encode_frames(masks)
    union = _pack_stream(np.asarray(pts, "<i8").tobytes() + modes + values)
    return union if people is None else union + _pack_stream(_encode_people(people, size))


def _encode_people(frames: Sequence[_Packed], size: tuple[int, int]) -> bytes:
    """Person payload of one block: ids, layer sizes, state table, then every person's frames (maskcode)."""
    ids = sorted({pid for frame in frames for pid, _, _ in frame})
    column = {pid: k for k, pid in enumerate(ids)}
    states = np.zeros((len(frames), len(ids)), np.uint8)
    empty = np.zeros(size, bool)
    layers = [[empty] * len(frames) for _ in ids]
    for f, frame in enumerate(frames):
        for pid, salient, bits in frame:
            states[f, column[pid]] = SALIENT if salient else PRESENT
            layers[column[pid]][f] = _unpack(bits, size[1])
    coded = [encode_frames(layer) for layer in layers]
    return b"".join([struct.pack("<I", len(ids)), np.asarray(ids, "<u4").tobytes(),
                     np.asarray([len(values) for _, values in coded], "<u4").tobytes(), states.tobytes(),
                     *(modes for modes, _ in coded), *(values for _, values in coded)])


def _decode_people(raw: bytes, frames: int, size: tuple[int, int]) -> list[_Packed]:
    """Inverse of _encode_people: per frame, its people (id, salient, packed mask) by id."""
    n, h = frames, size[0]
    if len(raw) < 4:
        raise TrackError("person payload too short")
    count = struct.unpack_from("<I", raw)[0]
    if len(raw) < 4 + count * (8 + n + n * h):
        raise TrackError(f"person payload too short for {count} people")
    ids = np.frombuffer(raw, "<u4", count, 4).tolist()
    sizes = np.frombuffer(raw, "<u4", count, 4 + 4 * count).tolist()
    states = np.frombuffer(raw, np.uint8, n * count, 4 + 8 * count).reshape(n, count)
    modes_at = 4 + 8 * count + n * count
    values_at = modes_at + count * n * h
    if any(b <= a for a, b in zip(ids, ids[1:])) or (states > SALIENT).any():
        raise TrackError("person ids out of order or a bad state byte")
    if len(raw) != values_at + sum(sizes):
        raise TrackError(f"person payload has {len(raw)} bytes, its layers need {values_at + sum(sizes)}")
    out: list[list] = [[] for _ in range(n)]
    for k, pid in enumerate(ids):
        layer = decode_frames(raw[modes_at + k * n * h: modes_at + (k + 1) * n * h],
                              raw[values_at: values_at + sizes[k]], n, size)
        values_at += sizes[k]
        for f in np.flatnonzero(states[:, k]):
            out[f].append((pid, bool(states[f, k] == SALIENT), np.packbits(layer[f], axis=1)))
    return [tuple(frame) for frame in out]


def _block_ranges(pts: Sequence[int], time_base: Fraction) -> Iterator[tuple[int, int]]:
    """[start, end) frame ranges of about BLOCK_SECONDS each, cut by time (VFR-safe)."""
    span = BLOCK_SECONDS / float(time_base)
    start = 0
    for i in range(1, len(pts) + 1):
        if i == len(pts) or pts[i] - pts[start] >= span:
            yield start, i
            start = i


def pack_people_table(counts: dict[int, tuple[int, int]]) -> bytes:
    body = struct.pack("<I", len(counts)) + b"".join(PEOPLE_ENTRY.pack(pid, *c) for pid, c in counts.items())
    return body + struct.pack("<I", zlib.crc32(body))


def encode_track(track: MaskTrack) -> bytes:
    """Serialise a track (layout: docs/mask-track.md)."""
    blocks, entries = [], []
    people = track._people
    for start, end in _block_ranges(track.pts, track.time_base):
        blocks.append(encode_block(track.pts[start:end], [m >= 128 for m in track.masks[start:end]],
                                    people[start:end] if people is not None else None, track.mask_size))
        entries.append((track.pts[start], end - start))
    header = pack_header(Header(track.mask_size, track.source_size, track.time_base, len(track), len(blocks),
                                 track.has_people))
    table = pack_people_table(track.person_frames()) if track.has_people else b""
    offset = len(header) + len(entries) * INDEX_ENTRY.size + 4 + len(table)
    index = b""
    for (first_pts, n), block in zip(entries, blocks):
        index += INDEX_ENTRY.pack(first_pts, offset, n)
        offset += len(block)
    return header + index + struct.pack("<I", zlib.crc32(index)) + table + b"".join(blocks)


def read_index(data: bytes, salvage: bool = False) -> tuple[Header, list[BlockEntry]]:
    """Header and block index, checksums verified; blocks are not touched (cheap random access).

    A journal (an unfinished streaming write) has no index: with `salvage` its records give the blocks written
    before the writer stopped, without it the file is refused.
    """
    header = unpack_header(data)
    if header.journal:
        if not salvage:
            raise TrackError("unfinished track: its writer stopped before the end (salvage reads its complete "
                             "blocks)")
        return header, journal_entries(lambda at, n: data[at:at + n], len(data), header.people)
    start = HEADER.size
    end = start + header.blocks * INDEX_ENTRY.size
    if len(data) < end + 4:
        raise TrackError(f"truncated: the index of {header.blocks} blocks does not fit in {len(data)} bytes")
    index = data[start:end]
    if zlib.crc32(index) != struct.unpack_from("<I", data, end)[0]:
        raise TrackError("index checksum mismatch: the file is damaged")
    entries = [BlockEntry(*INDEX_ENTRY.unpack_from(index, i * INDEX_ENTRY.size)) for i in range(header.blocks)]
    if sum(e.frames for e in entries) != header.frames:
        raise TrackError("index frame counts do not add up to the header's: the file is damaged")
    return header, entries


def journal_record(entry: BlockEntry) -> bytes:
    """The head written before each block of a journal: the block's index entry and its CRC32."""
    body = INDEX_ENTRY.pack(entry.first_pts, entry.offset, entry.frames)
    return body + struct.pack("<I", zlib.crc32(body))


def journal_entries(read: Callable[[int, int], bytes], size: int, people: bool) -> list[BlockEntry]:
    """The blocks of a journal of `size` bytes, up to the last one written whole (a crash cuts the rest).

    `read(at, n)` gives n bytes of the file at byte `at`: only record and stream heads are read.
    """
    entries, at = [], HEADER.size
    while at + JOURNAL_ENTRY.size <= size:
        head = read(at, JOURNAL_ENTRY.size)
        first_pts, offset, frames, crc = JOURNAL_ENTRY.unpack(head)
        if zlib.crc32(head[:INDEX_ENTRY.size]) != crc or offset != at + JOURNAL_ENTRY.size or not frames:
            break
        end = offset
        for _ in range(2 if people else 1):
            if end + BLOCK_HEAD.size > size:
                return entries
            end += BLOCK_HEAD.size + BLOCK_HEAD.unpack(read(end, BLOCK_HEAD.size))[0]
        if end > size:
            break
        entries.append(BlockEntry(first_pts, offset, frames))
        at = end
    return entries


def read_people_table(data: bytes, header: Header) -> dict[int, tuple[int, int]]:
    """The person table after the index (version 2 with person layers): id -> (frames present, salient)."""
    start = HEADER.size + header.blocks * INDEX_ENTRY.size + 4
    count = struct.unpack_from("<I", data, start)[0] if len(data) >= start + 4 else 0
    end = start + 4 + count * PEOPLE_ENTRY.size
    if len(data) < end + 4:
        raise TrackError(f"truncated: the person table does not fit in {len(data)} bytes")
    if zlib.crc32(data[start:end]) != struct.unpack_from("<I", data, end)[0]:
        raise TrackError("person table checksum mismatch: the file is damaged")
    rows = [PEOPLE_ENTRY.unpack_from(data, start + 4 + i * PEOPLE_ENTRY.size) for i in range(count)]
    if any(b[0] <= a[0] for a, b in zip(rows, rows[1:])):
        raise TrackError("person table ids out of order: the file is damaged")
    return {pid: (frames, salient) for pid, frames, salient in rows}


def decode_block(data: bytes, header: Header, entry: BlockEntry, number: int,
                 base: int = 0) -> tuple[list[int], list[np.ndarray]]:
    """Timestamps and 0/255 union masks of one block, after checking its CRC32 (person layers untouched).

    `data` holds the file's bytes from offset `base` on (the whole file, or one block read on demand).
    """
    where = f"block {number} (at byte {entry.offset})"
    raw = _read_stream(data, entry.offset - base, where)
    n, h = entry.frames, header.mask_size[0]
    if len(raw) < n * (8 + h):
        raise TrackError(f"{where}: payload too short for {n} frames")
    pts = np.frombuffer(raw, "<i8", n).tolist()
    if pts and pts[0] != entry.first_pts:
        raise TrackError(f"block {number}: first pts {pts[0]} differs from the index ({entry.first_pts})")
    if any(b <= a for a, b in zip(pts, pts[1:])):
        raise TrackError(f"block {number}: pts do not increase")
    try:
        bits = decode_frames(raw[8 * n: 8 * n + n * h], raw[8 * n + n * h:], n, header.mask_size)
    except TrackError as exc:
        raise TrackError(f"{where}: {exc}") from exc
    return pts, [b.astype(np.uint8) * np.uint8(255) for b in bits]


def decode_block_people(data: bytes, header: Header, entry: BlockEntry, number: int,
                        base: int = 0) -> list[_Packed]:
    """Per frame of one block, its people (id, salient, np.packbits mask) by id; the stream follows the union's."""
    at = entry.offset - base
    if at + BLOCK_HEAD.size > len(data):
        raise TrackError(f"truncated: block {number} (at byte {entry.offset}) lies beyond the end of the file")
    at += BLOCK_HEAD.size + BLOCK_HEAD.unpack_from(data, at)[0]
    where = f"block {number} person layers (at byte {at + base})"
    raw = _read_stream(data, at, where)
    try:
        return _decode_people(raw, entry.frames, header.mask_size)
    except TrackError as exc:
        raise TrackError(f"{where}: {exc}") from exc


def decode_track(data: bytes, salvage: bool = False, people: bool = True) -> MaskTrack:
    """Parse a whole .dmask file, verifying every checksum; see MaskTrack.load for `salvage` and `people`."""
    header, entries = read_index(data, salvage)
    people = people and header.people
    table = read_people_table(data, header) if people and not header.journal else None
    track = MaskTrack(header.mask_size, header.source_size, header.time_base)
    if people:
        track._people = []
    for number, entry in enumerate(entries):
        try:
            pts, masks = decode_block(data, header, entry, number)
            frame_people = decode_block_people(data, header, entry, number) if people else [None] * len(pts)
        except TrackError as exc:
            if not salvage:
                raise
            track.damage.append(f"{exc} ({entry.frames} frames lost)")
            continue
        if track.pts and pts[0] <= track.pts[-1]:
            raise TrackError(f"block {number}: pts {pts[0]} does not increase")
        for p, m, who in zip(pts, masks, frame_people):
            track._add(p, m, who)
    if table is not None and not track.damage and table != track.person_frames():
        raise TrackError("person table disagrees with the blocks: the file is damaged")
    return track
