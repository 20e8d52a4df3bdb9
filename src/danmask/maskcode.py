"""Row-transition coding of binary masks: the payload of a .dmask block (docs/mask-track.md, "Block payload").

A mask row is stored as the x positions where it switches between background and person (scanning from
x = 0, starting in background). Each row picks the cheapest of four modes: unchanged from the previous
frame, small deltas against the previous frame's row or against the row above, or explicit positions.
Person edges move little between frames and rows, so the values are mostly 0 or +-1 and deflate shrinks
them well: about 3x smaller than XOR bitmaps + deflate on our clips (numbers in docs/mask-track.md).
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from .errors import TrackError

SAME, FROM_PREVIOUS, FROM_ABOVE, EXPLICIT = 0, 1, 2, 3  # mode byte; EXPLICIT + k means k explicit positions
EXPLICIT_ESCAPE = 255  # explicit positions whose count (> 251) follows as a varint
_MAX_INLINE = EXPLICIT_ESCAPE - EXPLICIT - 1
_EXPLICIT_PENALTY = 64  # explicit positions are absolute, so prefer deltas unless they are much larger


def render_rows(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    """Per-row transition positions -> bool (h, width) mask."""
    h = len(rows)
    toggles = np.zeros((h, width + 1), np.int8)
    counts = [len(xs) for xs in rows]
    toggles[np.repeat(np.arange(h), counts), np.fromiter((x for xs in rows for x in xs), np.int64, sum(counts))] = 1
    return (np.cumsum(toggles, axis=1)[:, :width] & 1).astype(bool)


def _zigzag(values: np.ndarray) -> list[int]:
    return [2 * v if v >= 0 else -2 * v - 1 for v in values.tolist()]


def _put_varints(out: bytearray, values: list[int]) -> None:
    for v in values:
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)


def _row_code(xs: np.ndarray, previous: np.ndarray | None, above: np.ndarray | None) -> tuple[int, np.ndarray]:
    """(mode, signed values) of the cheapest mode for one row."""
    if previous is not None and len(previous) == len(xs):
        delta = xs - previous
        if not delta.any():
            return SAME, delta[:0]
        best = (int(np.abs(delta).sum()), FROM_PREVIOUS, delta)
    else:
        best = None
    if above is not None and len(above) == len(xs) and len(xs):
        delta = xs - above
        cost = int(np.abs(delta).sum())
        if best is None or cost < best[0]:
            best = (cost, FROM_ABOVE, delta)
    gaps = np.diff(xs, prepend=0)
    if best is None or int(gaps.sum()) + _EXPLICIT_PENALTY < best[0]:
        return EXPLICIT, gaps
    return best[1], best[2]


def encode_frames(masks: Sequence[np.ndarray]) -> tuple[bytes, bytes]:
    """bool masks of one block (the first coded without reference) -> (mode bytes, varint values).

    Every row of a frame is coded at once with numpy (the rules of `_row_code`, vectorised): a Python loop over
    rows cost about 7 ms per 320x180 frame, more than the model. A frame with a row of more than 251 transitions
    (noise, never a person) takes the row-by-row path.
    """
    modes, values = bytearray(), bytearray()
    previous: _Edges | None = None
    for mask in masks:
        edges = _Edges(mask)
        if edges.counts.max(initial=0) > _MAX_INLINE:
            _encode_rows(edges.rows(), previous.rows() if previous else None, modes, values)
        else:
            frame_modes, frame_values = _encode_frame(edges, previous)
            modes += frame_modes
            values += frame_values
        previous = edges
    return bytes(modes), bytes(values)


class _Edges:
    """One mask's transitions: positions `xs` row after row, each entry's row `ys`, per-row `counts` and `starts`."""

    def __init__(self, mask: np.ndarray) -> None:
        h, w = mask.shape
        padded = np.zeros((h, w + 2), np.int8)
        padded[:, 1:-1] = mask
        self.ys, xs = np.nonzero(np.diff(padded, axis=1))
        self.xs = xs.astype(np.int64)
        self.counts = np.bincount(self.ys, minlength=h)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def rows(self) -> list[np.ndarray]:
        """Per row, the sorted x positions (0..w) where the value changes (even count)."""
        return np.split(self.xs, np.cumsum(self.counts)[:-1])


def _encode_frame(cur: _Edges, prev: _Edges | None) -> tuple[bytes, bytes]:
    """Mode bytes and varints of one frame, every row at once (same choices as `_row_code`)."""
    h = len(cur.counts)
    ys, xs, counts = cur.ys, cur.xs, cur.counts
    rank = np.arange(len(xs)) - cur.starts[ys]
    inf = np.full(h, np.inf)

    def row_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(ys, weights=np.abs(values), minlength=h)

    if prev is not None:
        has_prev = counts == prev.counts
        d_prev = xs - prev.xs[np.minimum(prev.starts[ys] + rank, max(0, len(prev.xs) - 1))] if len(prev.xs) else xs
        d_prev = np.where(has_prev[ys], d_prev, 0)
        cost_prev = row_sum(d_prev)
    else:
        has_prev, d_prev, cost_prev = np.zeros(h, bool), np.zeros_like(xs), inf
    has_above = np.zeros(h, bool)
    has_above[1:] = (counts[1:] == counts[:-1]) & (counts[1:] > 0)
    d_above = np.where(has_above[ys], xs - xs[np.maximum(cur.starts[np.maximum(ys - 1, 0)] + rank, 0)], 0)
    cost_above = row_sum(d_above)
    gaps = np.where(rank > 0, xs - np.roll(xs, 1), xs)
    cost_explicit = row_sum(gaps) + _EXPLICIT_PENALTY

    best = np.where(has_prev, cost_prev, inf)
    mode = np.where(has_prev, FROM_PREVIOUS, -1)
    above = has_above & (cost_above < best)
    best = np.where(above, cost_above, best)
    mode = np.where(above, FROM_ABOVE, mode)
    mode = np.where((mode < 0) | (cost_explicit < best), EXPLICIT + counts, mode)
    mode = np.where(has_prev & (cost_prev == 0), SAME, mode)

    entry_mode = mode[ys]
    vals = np.where(entry_mode == FROM_PREVIOUS, d_prev, np.where(entry_mode == FROM_ABOVE, d_above, gaps))
    vals = vals[entry_mode != SAME]
    return mode.astype(np.uint8).tobytes(), _varints((vals << 1) ^ (vals >> 63))


def _varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 of every value (zigzagged already), vectorised."""
    v = values.astype(np.uint64)
    sizes = np.ones(len(v), np.int64)
    for j in range(1, 10):
        sizes += v >= np.uint64(1 << (7 * j))
    owner = np.repeat(np.arange(len(v)), sizes)
    group = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    byte = (v[owner] >> (7 * group).astype(np.uint64)) & np.uint64(0x7F)
    more = (group < sizes[owner] - 1).astype(np.uint64) << np.uint64(7)
    return (byte | more).astype(np.uint8).tobytes()


def _encode_rows(rows: list[np.ndarray], previous: list[np.ndarray] | None, modes: bytearray,
                 values: bytearray) -> None:
    """One frame row by row (the reference coder; frames with very long rows)."""
    for y, xs in enumerate(rows):
        mode, vals = _row_code(xs, previous[y] if previous else None, rows[y - 1] if y else None)
        if mode == EXPLICIT:
            if len(xs) <= _MAX_INLINE:
                modes.append(EXPLICIT + len(xs))
            else:
                modes.append(EXPLICIT_ESCAPE)
                _put_varints(values, [len(xs)])
        else:
            modes.append(mode)
        _put_varints(values, _zigzag(vals))


class _Reader:
    """Cursor over the varint stream with bounds checks (damage must raise, not read garbage)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            if self.pos >= len(self.data):
                raise TrackError("value stream ends inside a row")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise TrackError("malformed varint in value stream")

    def signed(self, count: int) -> list[int]:
        out = []
        for _ in range(count):
            z = self.varint()
            out.append((z >> 1) ^ -(z & 1))
        return out


def decode_frames(modes: bytes, values: bytes, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Inverse of encode_frames; raises TrackError on anything inconsistent."""
    h, w = size
    if len(modes) != frames * h:
        raise TrackError(f"mode table has {len(modes)} bytes, expected {frames} frames x {h} rows")
    reader, masks, previous = _Reader(values), [], None
    for f in range(frames):
        rows: list[tuple] = []
        for y in range(h):
            rows.append(_decode_row(modes[f * h + y], reader, previous[y] if previous else None,
                                    rows[y - 1] if y else None, w))
        masks.append(render_rows(rows, w))
        previous = rows
    if reader.pos != len(values):
        raise TrackError(f"{len(values) - reader.pos} unused bytes after the last row")
    return masks


def _decode_row(mode: int, reader: _Reader, previous: tuple | None, above: tuple | None, width: int) -> tuple:
    """One row's transition positions (a tuple of ints: rows are short, and plain Python beats numpy on them)."""
    if mode in (SAME, FROM_PREVIOUS):
        if previous is None:
            raise TrackError("row refers to a previous frame in the first frame of a block")
        if mode == SAME:
            return previous  # checked when it was decoded
        xs = tuple(a + d for a, d in zip(previous, reader.signed(len(previous))))
    elif mode == FROM_ABOVE:
        if above is None:
            raise TrackError("first row refers to the row above")
        xs = tuple(a + d for a, d in zip(above, reader.signed(len(above))))
    else:
        count = reader.varint() if mode == EXPLICIT_ESCAPE else mode - EXPLICIT
        if count > width + 1:  # positions are distinct values in 0..width
            raise TrackError(f"row has {count} transitions, more than its {width} pixels allow")
        xs = tuple(accumulate(reader.signed(count)))
    if len(xs) % 2 or (xs and (xs[0] < 0 or xs[-1] > width or any(b <= a for a, b in zip(xs, xs[1:])))):
        raise TrackError("row transitions out of order or out of range")
    return xs
