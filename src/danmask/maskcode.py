"""Row-transition coding of binary masks: the payload of a .dmask block (docs/mask-track.md, "Block payload").

A mask row is stored as the x positions where it switches between background and person (scanning from
x = 0, starting in background). Each row picks the cheapest of four modes: unchanged from the previous
frame, small deltas against the previous frame's row or against the row above, or explicit positions.
Person edges move little between frames and rows, so the values are mostly 0 or +-1 and deflate shrinks
them well: about 3x smaller than XOR bitmaps + deflate on our clips (numbers in docs/mask-track.md).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import TrackError

SAME, FROM_PREVIOUS, FROM_ABOVE, EXPLICIT = 0, 1, 2, 3  # mode byte; EXPLICIT + k means k explicit positions
EXPLICIT_ESCAPE = 255  # explicit positions whose count (> 251) follows as a varint
_MAX_INLINE = EXPLICIT_ESCAPE - EXPLICIT - 1
_EXPLICIT_PENALTY = 64  # explicit positions are absolute, so prefer deltas unless they are much larger


def row_transitions(mask: np.ndarray) -> list[np.ndarray]:
    """bool (h, w) -> per row, the sorted x positions (0..w) where the value changes (even count)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    ys, xs = np.nonzero(np.diff(padded, axis=1))
    bounds = np.searchsorted(ys, np.arange(h + 1))
    return [xs[bounds[y]: bounds[y + 1]].astype(np.int64) for y in range(h)]


def render_rows(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    """Inverse of row_transitions: per-row positions -> bool (h, width)."""
    h = len(rows)
    toggles = np.zeros((h, width + 1), np.int8)
    for y, xs in enumerate(rows):
        toggles[y, xs] = 1
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
    """bool masks of one block (the first coded without reference) -> (mode bytes, varint values)."""
    modes, values = bytearray(), bytearray()
    previous: list[np.ndarray] | None = None
    for mask in masks:
        rows = row_transitions(mask)
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
        previous = rows
    return bytes(modes), bytes(values)


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

    def signed(self, count: int) -> np.ndarray:
        out = np.empty(count, np.int64)
        for i in range(count):
            z = self.varint()
            out[i] = (z >> 1) ^ -(z & 1)
        return out


def decode_frames(modes: bytes, values: bytes, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Inverse of encode_frames; raises TrackError on anything inconsistent."""
    h, w = size
    if len(modes) != frames * h:
        raise TrackError(f"mode table has {len(modes)} bytes, expected {frames} frames x {h} rows")
    reader, masks, previous = _Reader(values), [], None
    for f in range(frames):
        rows: list[np.ndarray] = []
        for y in range(h):
            rows.append(_decode_row(modes[f * h + y], reader, previous[y] if previous else None,
                                    rows[y - 1] if y else None, w))
        masks.append(render_rows(rows, w))
        previous = rows
    if reader.pos != len(values):
        raise TrackError(f"{len(values) - reader.pos} unused bytes after the last row")
    return masks


def _decode_row(mode: int, reader: _Reader, previous, above, width: int) -> np.ndarray:
    if mode in (SAME, FROM_PREVIOUS):
        if previous is None:
            raise TrackError("row refers to a previous frame in the first frame of a block")
        xs = previous if mode == SAME else previous + reader.signed(len(previous))
    elif mode == FROM_ABOVE:
        if above is None:
            raise TrackError("first row refers to the row above")
        xs = above + reader.signed(len(above))
    else:
        count = reader.varint() if mode == EXPLICIT_ESCAPE else mode - EXPLICIT
        if count > width + 1:  # positions are distinct values in 0..width
            raise TrackError(f"row has {count} transitions, more than its {width} pixels allow")
        xs = np.cumsum(reader.signed(count))
    if len(xs) % 2 or (len(xs) and (xs[0] < 0 or xs[-1] > width or np.any(np.diff(xs) <= 0))):
        raise TrackError("row transitions out of order or out of range")
    return xs
