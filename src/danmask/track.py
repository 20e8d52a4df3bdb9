"""Mask track: one person mask per displayed frame, keyed by PTS, stored as a compact `.dmask` file.

The byte layout is specified in docs/mask-track.md (the JavaScript reader in web/dmask.js follows it).
In short: 1-bit masks (threshold 128) at mask resolution, grouped in blocks of about one second; rows are
coded as edge positions predicted from the previous frame or the row above (danmask.maskcode), each block
is zlib-compressed and carries a CRC32, and an index of (first pts, byte offset) per block gives random access.
"""
from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import TrackError
from .maskcode import decode_frames, encode_frames

MAGIC = b"DMSK"
VERSION = 1
HEADER = struct.Struct("<4sHHHHHHIIIIII")  # see docs/mask-track.md
INDEX_ENTRY = struct.Struct("<qQI")  # first pts, byte offset, frame count
BLOCK_HEAD = struct.Struct("<II")  # compressed size, CRC32 of the compressed bytes
BLOCK_SECONDS = 1.0
ZLIB_LEVEL = 9


@dataclass
class MaskTrack:
    """Person masks of a video, one per displayed frame, in presentation order.

    `masks[i]` (uint8 0..255, shape `mask_size` (h, w)) is shown from `times[i]` until `times[i+1]`.
    Saving stores 1 bit per pixel (>= 128 is person), so a loaded track holds 0/255 masks.
    """

    mask_size: tuple[int, int]  # (h, w) of every mask
    source_size: tuple[int, int]  # (h, w) of the displayed video frames
    time_base: Fraction
    masks: list[np.ndarray] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    _times: list[float] = field(default_factory=list, init=False, repr=False, compare=False)
    damage: list[str] = field(default_factory=list, compare=False)  # blocks skipped by a salvaging load

    def __post_init__(self) -> None:
        self.mask_size = _check_size(self.mask_size, "mask_size")
        self.source_size = _check_size(self.source_size, "source_size")
        self.time_base = Fraction(self.time_base)
        if self.time_base <= 0:
            raise TrackError(f"time_base must be positive, got {self.time_base}")
        if len(self.masks) != len(self.pts):
            raise TrackError(f"{len(self.masks)} masks but {len(self.pts)} timestamps")
        masks, pts = list(self.masks), list(self.pts)
        self.masks, self.pts, self._times = [], [], []
        for p, m in zip(pts, masks):
            self.append(p, m)

    def append(self, pts: int, mask: np.ndarray) -> None:
        """Add the mask of the next displayed frame; pts must increase."""
        if mask.shape != self.mask_size or mask.dtype != np.uint8:
            raise TrackError(f"mask must be uint8 {self.mask_size}, got {mask.dtype} {mask.shape}")
        if self.pts and int(pts) <= self.pts[-1]:
            raise TrackError(f"pts must increase: {pts} after {self.pts[-1]}")
        self.masks.append(mask)
        self.pts.append(int(pts))
        self._times.append(float(int(pts) * self.time_base))

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

    def save(self, path: str | Path) -> int:
        """Write the .dmask file; returns its size in bytes."""
        data = encode_track(self)
        Path(path).write_bytes(data)
        return len(data)

    @classmethod
    def load(cls, path: str | Path, salvage: bool = False) -> MaskTrack:
        """Read a whole .dmask file, verifying every checksum.

        With `salvage`, damaged blocks are skipped and described in `track.damage` instead of failing the load,
        so every intact frame of a damaged file can still be used; a damaged header or index still fails.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrackError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        try:
            return decode_track(data, salvage)
        except TrackError as exc:
            raise TrackError(f"{path}: {exc}") from exc


def _check_size(size: Sequence[int], name: str) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and 0 < v <= 65535 for v in size):
        raise TrackError(f"{name} must be (height, width) with 1..65535 pixels, got {size}")
    return int(size[0]), int(size[1])


@dataclass(frozen=True)
class Header:
    """Fixed-size start of a .dmask file."""

    mask_size: tuple[int, int]
    source_size: tuple[int, int]
    time_base: Fraction
    frames: int
    blocks: int


@dataclass(frozen=True)
class BlockEntry:
    """One row of the index: where a block starts in time and in the file."""

    first_pts: int
    offset: int
    frames: int


def _pack_header(h: Header) -> bytes:
    fields_ = (MAGIC, VERSION, HEADER.size, h.mask_size[1], h.mask_size[0], h.source_size[1], h.source_size[0],
               h.time_base.numerator, h.time_base.denominator, h.frames, h.blocks, 0)
    body = HEADER.pack(*fields_, 0)[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def _unpack_header(data: bytes) -> Header:
    if len(data) < HEADER.size:
        raise TrackError(f"not a mask track: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, head_size, mw, mh, sw, sh, num, den, frames, blocks, _flags, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TrackError(f"not a mask track (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise TrackError(f"unsupported mask track version {version} (this danmask reads {VERSION})")
    if zlib.crc32(data[: HEADER.size - 4]) != crc:
        raise TrackError("header checksum mismatch: the file is damaged")
    if head_size != HEADER.size or not (mw and mh and sw and sh and num and den):
        raise TrackError("header has zero sizes or time base: the file is damaged")
    return Header((mh, mw), (sh, sw), Fraction(num, den), frames, blocks)


def _encode_block(pts: Sequence[int], masks: Sequence[np.ndarray]) -> bytes:
    modes, values = encode_frames([m >= 128 for m in masks])
    packed = zlib.compress(np.asarray(pts, "<i8").tobytes() + modes + values, ZLIB_LEVEL)
    return BLOCK_HEAD.pack(len(packed), zlib.crc32(packed)) + packed


def _block_ranges(pts: Sequence[int], time_base: Fraction) -> Iterator[tuple[int, int]]:
    """[start, end) frame ranges of about BLOCK_SECONDS each, cut by time (VFR-safe)."""
    span = BLOCK_SECONDS / float(time_base)
    start = 0
    for i in range(1, len(pts) + 1):
        if i == len(pts) or pts[i] - pts[start] >= span:
            yield start, i
            start = i


def encode_track(track: MaskTrack) -> bytes:
    """Serialise a track (layout: docs/mask-track.md)."""
    blocks, entries = [], []
    for start, end in _block_ranges(track.pts, track.time_base):
        blocks.append(_encode_block(track.pts[start:end], track.masks[start:end]))
        entries.append((track.pts[start], end - start))
    header = _pack_header(Header(track.mask_size, track.source_size, track.time_base, len(track), len(blocks)))
    offset = len(header) + len(entries) * INDEX_ENTRY.size + 4
    index = b""
    for (first_pts, n), block in zip(entries, blocks):
        index += INDEX_ENTRY.pack(first_pts, offset, n)
        offset += len(block)
    return header + index + struct.pack("<I", zlib.crc32(index)) + b"".join(blocks)


def read_index(data: bytes) -> tuple[Header, list[BlockEntry]]:
    """Header and block index, checksums verified; blocks are not touched (cheap random access)."""
    header = _unpack_header(data)
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


def decode_block(data: bytes, header: Header, entry: BlockEntry, number: int) -> tuple[list[int], list[np.ndarray]]:
    """Timestamps and 0/255 masks of one block, after checking its CRC32."""
    where = f"block {number} (at byte {entry.offset})"
    if entry.offset + BLOCK_HEAD.size > len(data):
        raise TrackError(f"truncated: {where} lies beyond the end of the file ({len(data)} bytes)")
    size, crc = BLOCK_HEAD.unpack_from(data, entry.offset)
    packed = data[entry.offset + BLOCK_HEAD.size: entry.offset + BLOCK_HEAD.size + size]
    if len(packed) != size:
        raise TrackError(f"truncated: {where} needs {size} bytes, {len(packed)} left")
    if zlib.crc32(packed) != crc:
        raise TrackError(f"{where}: checksum mismatch, the file is damaged")
    try:
        raw = zlib.decompress(packed)
    except zlib.error as exc:
        raise TrackError(f"{where}: cannot inflate ({exc})") from exc
    n, h = entry.frames, header.mask_size[0]
    if len(raw) < n * (8 + h):
        raise TrackError(f"{where}: payload too short for {n} frames")
    pts = np.frombuffer(raw, "<i8", n).tolist()
    try:
        bits = decode_frames(raw[8 * n: 8 * n + n * h], raw[8 * n + n * h:], n, header.mask_size)
    except TrackError as exc:
        raise TrackError(f"{where}: {exc}") from exc
    return pts, [b.astype(np.uint8) * np.uint8(255) for b in bits]


def decode_track(data: bytes, salvage: bool = False) -> MaskTrack:
    """Parse a whole .dmask file, verifying every checksum; see MaskTrack.load for `salvage`."""
    header, entries = read_index(data)
    track = MaskTrack(header.mask_size, header.source_size, header.time_base)
    for number, entry in enumerate(entries):
        try:
            pts, masks = decode_block(data, header, entry, number)
            if pts and pts[0] != entry.first_pts:
                raise TrackError(f"block {number}: first pts {pts[0]} differs from the index ({entry.first_pts})")
        except TrackError as exc:
            if not salvage:
                raise
            track.damage.append(f"{exc} ({entry.frames} frames lost)")
            continue
        for p, m in zip(pts, masks):
            track.append(p, m)
    return track

