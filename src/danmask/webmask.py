"""Bilibili's `.webmask`: the mask format its web player downloads, written and read byte-compatibly.

Layout (big-endian; checked against a real file, ../shared/data/webmask/bilibili-sample.webmask):

    "MASK"                    4 bytes
    version                   int32 = 1
    check code                4 bytes = 02 00 00 00
    N                         int32, number of segments
    N x (start ms, offset)    int64 + int64; offset counts from the start of the file
    N gzip members            one per ~10 s segment; inflated, a run of records:
                              int32 length, int64 timestamp ms, `length` bytes of
                              "data:image/svg+xml;base64," + base64(SVG) in 64-char lines,
                              each followed by "\n"

Each SVG is a black full-frame rectangle with the people cut out (even-odd holes), viewBox at mask
resolution, in the same potrace-style coordinates as Bilibili's (x10, y flipped by the group transform).
"""
from __future__ import annotations

import base64
import binascii
import gzip
import re
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import TrackError
from .outputs import atomic_file, check_file, copy_range, write_bytes
from .outputs import error as output_error
from .track import MaskTrack, Which
from .trackreader import TrackReader

MAGIC = b"MASK"
VERSION = 1
CHECK_CODE = b"\x02\x00\x00\x00"
SEGMENT_MS = 10_000
DATA_URI = b"data:image/svg+xml;base64,"
_HEAD = struct.Struct(">4si4si")
_ENTRY = struct.Struct(">qq")
_RECORD = struct.Struct(">iq")
_UNITS = 10  # path units per mask pixel, as in Bilibili's potrace output
_SIMPLIFY = 0.5  # Douglas-Peucker tolerance in half-pixels of the 2x traced mask (0.25 mask px)


@dataclass(frozen=True)
class Webmask:
    """A parsed .webmask: segment table and every (timestamp ms, SVG text) record in file order."""

    version: int
    segments: list[tuple[int, int]]  # (start ms, byte offset)
    records: list[tuple[int, str]]


def mask_to_svg(mask: np.ndarray) -> str:
    """Person mask (uint8, >= 128 is person) -> SVG: black frame with the people as even-odd holes.

    Contours are traced on the mask upscaled 2x, so in SVG space (pixel i spans [i, i+1)) every outline
    runs 0.25 px inside the pixel edges: sampling at pixel centres gives the mask back, and a single pixel
    still makes a polygon.
    """
    h, w = mask.shape
    big = cv2.resize((mask >= 128).astype(np.uint8), (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    parts = [f"M0 0 l0 {h * _UNITS} {w * _UNITS} 0 0 {-h * _UNITS}z"]
    for contour in contours:
        points = cv2.approxPolyDP(contour, _SIMPLIFY, True)[:, 0, :] if len(contour) > 4 else contour[:, 0, :]
        x = (points[:, 0] + 0.5) * (_UNITS / 2)
        y = h * _UNITS - (points[:, 1] + 0.5) * (_UNITS / 2)
        xy = np.round(np.stack([x, y], axis=1)).astype(np.int64)
        steps = np.diff(xy, axis=0).ravel().tolist()
        parts.append(f"M{xy[0, 0]} {xy[0, 1]}" + (" l" + " ".join(map(str, steps)) if steps else "") + "z")
    return (
        '<svg version="1.0" xmlns="http://www.w3.org/2000/svg"\n'
        f' width="{w:.6f}px" height="{h:.6f}px" viewBox="0 0 {w:.6f} {h:.6f}"\n'
        ' preserveAspectRatio="xMidYMid meet">\n'
        f'<g transform="translate(0.000000,{h:.6f}) scale(0.100000,-0.100000)"\n'
        'fill="#000000" stroke="none">\n'
        f'<path fill-rule="evenodd" d="{" ".join(parts)}"/>\n'
        "</g>\n</svg>\n"
    )


def write_webmask(track: MaskTrack | TrackReader, path: str | Path, people: Which = "salient") -> int:
    """Export a track as .webmask (one record per frame, timestamps = frame display times); returns bytes.

    Frames are read and written one at a time (a `TrackReader` keeps memory flat); `people` chooses whom the
    masks protect, as `MaskTrack.select`.

    Raises:
        OutputError: the file cannot be written.
        TrackError: a `people` selection the track cannot make.
    """
    with WebmaskWriter(path) as writer:
        for pts, mask in track.items(people):
            writer.add(int(round(float(pts * track.time_base) * 1000)), mask_to_svg(mask))
    return writer.size


def write_records(records: Sequence[tuple[int, str]], path: str | Path) -> int:
    """Write (timestamp ms, SVG) records, grouped into 10 s gzip segments; returns the file size.

    Raises:
        OutputError: the file cannot be written.
    """
    return write_bytes(path, encode_records(records))


def encode_records(records: Sequence[tuple[int, str]]) -> bytes:
    """The .webmask bytes of (timestamp ms, SVG) records, grouped into 10 s gzip segments."""
    groups: dict[int, list[bytes]] = {}
    for ms, svg in records:
        groups.setdefault(_segment_of(ms), []).append(_record(ms, svg))
    starts = sorted(groups)
    blobs = [_gzip_member(b"".join(groups[s])) for s in starts]
    return _head(starts, [len(b) for b in blobs]) + b"".join(blobs)


class WebmaskWriter:
    """Streams records (in time order) to a .webmask: each 10 s segment is gzipped as soon as it is complete and
    spooled to an anonymous temporary file; `close()` writes the head and the segments under the final name at
    once (`outputs.atomic_file`), so a crash leaves no partial .webmask. Leaving the `with` by an exception
    writes nothing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_file(path)
        try:
            self._spool = tempfile.TemporaryFile(dir=self.path.parent)
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        self._starts: list[int] = []
        self._sizes: list[int] = []
        self._records: list[bytes] = []
        self.size: int | None = None

    def add(self, ms: int, svg: str) -> None:
        """Append one record; its segment must not come before the previous record's."""
        start = _segment_of(ms)
        if self._starts and start < self._starts[-1]:
            raise TrackError(f"webmask records must come in time order: {ms} ms after {self._starts[-1]} ms")
        if not self._starts or start != self._starts[-1]:
            self._flush()
            self._starts.append(start)
        self._records.append(_record(ms, svg))

    def _flush(self) -> None:
        if self._records:
            blob = _gzip_member(b"".join(self._records))
            try:
                self._spool.write(blob)
            except OSError as exc:
                raise output_error(self.path, exc) from exc
            self._sizes.append(len(blob))
            self._records = []

    def close(self) -> int:
        """Write the file; returns its size in bytes."""
        if self.size is None:
            self._flush()
            with self._spool, atomic_file(self.path) as out:
                head = _head(self._starts, self._sizes)
                out.write(head)
                copy_range(self._spool, out, 0, sum(self._sizes))
            self.size = len(head) + sum(self._sizes)
        return self.size

    def __enter__(self) -> WebmaskWriter:
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._spool.close()


def _segment_of(ms: int) -> int:
    return int(ms) // SEGMENT_MS * SEGMENT_MS


def _record(ms: int, svg: str) -> bytes:
    payload = DATA_URI + _wrapped_base64(svg.encode("utf-8"))
    return _RECORD.pack(len(payload), ms) + payload


def _head(starts: Sequence[int], sizes: Sequence[int]) -> bytes:
    """Magic, version, check code and the segment table for segments of `sizes` bytes that follow it."""
    offset = _HEAD.size + _ENTRY.size * len(starts)
    index = b""
    for start, size in zip(starts, sizes):
        index += _ENTRY.pack(start, offset)
        offset += size
    return _HEAD.pack(MAGIC, VERSION, CHECK_CODE, len(starts)) + index


def _gzip_member(data: bytes, mtime: int = 0) -> bytes:
    """gzip with the header bytes Bilibili's files carry (XFL 2 = best compression, OS 255 = unknown);
    the Python gzip module writes another OS byte. mtime 0 keeps our output reproducible."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    return (b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime) + b"\x02\xff" + body
            + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


def _wrapped_base64(data: bytes) -> bytes:
    """Base64 in 64-character lines, each ending in a newline, exactly as in Bilibili's files."""
    flat = base64.b64encode(data)
    return b"".join(flat[i:i + 64] + b"\n" for i in range(0, len(flat), 64))


def parse_webmask(data: bytes, name: str = "webmask") -> Webmask:
    """Validate and decode a whole .webmask held in memory."""
    if len(data) < _HEAD.size:
        raise TrackError(f"{name}: too short for a webmask header ({len(data)} bytes)")
    magic, version, check, count = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise TrackError(f"{name}: not a webmask (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION or check != CHECK_CODE:
        raise TrackError(f"{name}: unsupported webmask version {version} / check code {check.hex()}")
    table_end = _HEAD.size + count * _ENTRY.size
    if count < 0 or table_end > len(data):
        raise TrackError(f"{name}: segment table of {count} entries does not fit in {len(data)} bytes")
    segments = [_ENTRY.unpack_from(data, _HEAD.size + i * _ENTRY.size) for i in range(count)]
    ends = [off for _, off in segments[1:]] + [len(data)]
    records: list[tuple[int, str]] = []
    for i, ((start, offset), end) in enumerate(zip(segments, ends)):
        if not table_end <= offset < end <= len(data):
            raise TrackError(f"{name}: segment {i} has a bad byte offset {offset}")
        records += _segment_records(data[offset:end], f"{name}: segment {i} ({start} ms)")
    return Webmask(version, [(int(s), int(o)) for s, o in segments], records)


def _segment_records(blob: bytes, where: str) -> list[tuple[int, str]]:
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as exc:
        raise TrackError(f"{where}: cannot inflate ({exc})") from exc
    records, pos = [], 0
    while pos < len(raw):
        if pos + _RECORD.size > len(raw):
            raise TrackError(f"{where}: record header cut off at byte {pos}")
        length, ms = _RECORD.unpack_from(raw, pos)
        payload = raw[pos + _RECORD.size: pos + _RECORD.size + length]
        if length < len(DATA_URI) or len(payload) != length or not payload.startswith(DATA_URI):
            raise TrackError(f"{where}: malformed record at byte {pos}")
        try:
            body = payload[len(DATA_URI):].replace(b"\n", b"").replace(b"\r", b"")
            svg = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TrackError(f"{where}: record at {ms} ms has a bad SVG payload ({exc})") from exc
        records.append((int(ms), svg))
        pos += _RECORD.size + length
    return records


def read_webmask(path: str | Path) -> list[tuple[int, str]]:
    """All (timestamp ms, SVG text) records of a .webmask file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrackError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse_webmask(data, str(path)).records


_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKENS = re.compile(rf"[MmLlCcZz]|{_NUMBER}")


def svg_to_mask(svg: str, size: tuple[int, int]) -> np.ndarray:
    """Rasterise a webmask SVG (ours or Bilibili's: M/L/C/Z paths under a translate+scale group) at (h, w).

    Returns uint8 person mask (255 where the black shape is absent), sampled at pixel centres.
    Curves are flattened to 8 segments.
    """
    h, w = size
    view = re.search(rf'viewBox="\s*({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})', svg)
    if not view:
        raise TrackError("SVG has no viewBox")
    vx, vy, vw, vh = map(float, view.groups())
    if vw <= 0 or vh <= 0:
        raise TrackError("SVG viewBox has no area")
    tx, ty, sx, sy = _group_transform(svg)
    edges = []
    for d in re.findall(r'\sd="([^"]*)"', svg):
        for poly in _path_polygons(d):
            xs = (poly[:, 0] * sx + tx - vx) * (w / vw)
            ys = (poly[:, 1] * sy + ty - vy) * (h / vh)
            pts = np.stack([xs, ys], 1)
            edges.append(np.concatenate([pts, np.roll(pts, -1, axis=0)], axis=1))
    black = _fill_even_odd(np.concatenate(edges) if edges else np.zeros((0, 4)), h, w)
    return np.where(black, 0, 255).astype(np.uint8)


def _fill_even_odd(edges: np.ndarray, h: int, w: int) -> np.ndarray:
    """Scanline fill sampled at pixel centres (SVG pixel i spans [i, i+1)), even-odd rule.

    edges: (n, 4) x0, y0, x1, y1 in pixels. OpenCV's fillPoly would also paint every pixel an edge
    touches, which eats one pixel off each hole.
    """
    inside = np.zeros((h, w), bool)
    centres = np.arange(w) + 0.5
    x0, y0, x1, y1 = edges.T
    for row in range(h):
        yc = row + 0.5
        crossing = (y0 <= yc) != (y1 <= yc)
        if not crossing.any():
            continue
        t = (yc - y0[crossing]) / (y1[crossing] - y0[crossing])
        xs = np.sort(x0[crossing] + t * (x1[crossing] - x0[crossing]))
        inside[row] = np.searchsorted(xs, centres, side="right") % 2 == 1
    return inside


def _group_transform(svg: str) -> tuple[float, float, float, float]:
    translate = re.search(rf"translate\(\s*({_NUMBER})[\s,]+({_NUMBER})\s*\)", svg)
    scale = re.search(rf"scale\(\s*({_NUMBER})(?:[\s,]+({_NUMBER}))?\s*\)", svg)
    tx, ty = map(float, translate.groups()) if translate else (0.0, 0.0)
    sx = float(scale.group(1)) if scale else 1.0
    sy = float(scale.group(2)) if scale and scale.group(2) else sx
    return tx, ty, sx, sy


def _path_polygons(d: str) -> list[np.ndarray]:
    """Absolute polygons of a path using M/m, L/l, C/c (flattened), Z/z; implicit repeats allowed."""
    tokens = _TOKENS.findall(d)
    polygons, current, pos, start, i, cmd = [], [], np.zeros(2), np.zeros(2), 0, None
    while i < len(tokens):
        if tokens[i] in "MmLlCcZz":
            cmd, i = tokens[i], i + 1
            if cmd in "Zz":
                if len(current) > 2:
                    polygons.append(np.array(current))
                current, pos = [], start.copy()
                continue
        if cmd is None or cmd in "Zz":
            raise TrackError(f"SVG path has a number where a command belongs: {d[:40]!r}")
        n = 6 if cmd in "Cc" else 2
        if i + n > len(tokens):
            raise TrackError(f"SVG path ends inside a '{cmd}' command")
        try:
            vals = np.array([float(v) for v in tokens[i:i + n]])
        except ValueError as exc:
            raise TrackError(f"SVG path has a command where a number belongs ({exc})") from exc
        i += n
        base = pos if cmd.islower() else np.zeros(2)
        if cmd in "Mm":
            if len(current) > 2:
                polygons.append(np.array(current))
            pos = base + vals
            start, current = pos.copy(), [pos.copy()]
            cmd = "l" if cmd == "m" else "L"  # further pairs after a moveto are lineto
        elif cmd in "Ll":
            pos = base + vals
            current.append(pos.copy())
        else:
            c1, c2, end = base + vals[:2], base + vals[2:4], base + vals[4:]
            for t in np.linspace(0.125, 1.0, 8):
                u = 1 - t
                current.append(u**3 * pos + 3 * u * u * t * c1 + 3 * u * t * t * c2 + t**3 * end)
            pos = end
    if len(current) > 2:
        polygons.append(np.array(current))
    return polygons
