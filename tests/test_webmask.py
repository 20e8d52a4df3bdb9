"""Bilibili .webmask: the real sample read, re-written byte-compatibly, and our export read independently."""
from __future__ import annotations

import base64
import gzip
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _oracle import iou

from danmask.errors import TrackError
from danmask.track import MaskTrack
from danmask.webmask import mask_to_svg, parse_webmask, read_webmask, svg_to_mask, write_records, write_webmask

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "webmask" / "bilibili-sample.webmask"


def sample_bytes() -> bytes:
    if not SAMPLE.is_file():
        pytest.skip(f"Bilibili sample not found at {SAMPLE}")
    return SAMPLE.read_bytes()


def independent_parse(data: bytes) -> tuple[tuple, list[tuple[int, int]], list[tuple[int, bytes]]]:
    """A from-the-spec parser sharing no code with danmask.webmask."""
    head = struct.unpack(">4si4si", data[:16])
    table = [struct.unpack(">qq", data[16 + 16 * i: 32 + 16 * i]) for i in range(head[3])]
    ends = [off for _, off in table[1:]] + [len(data)]
    records = []
    for (_, off), end in zip(table, ends):
        raw, pos = gzip.decompress(data[off:end]), 0
        while pos < len(raw):
            length, ms = struct.unpack(">iq", raw[pos:pos + 12])
            records.append((ms, raw[pos + 12: pos + 12 + length]))
            pos += 12 + length
    return head, table, records


def test_real_sample_layout():
    data = sample_bytes()
    head, table, records = independent_parse(data)
    assert head == (b"MASK", 1, b"\x02\x00\x00\x00", 10)
    assert [start for start, _ in table] == list(range(0, 100_000, 10_000))
    assert table[0][1] == 16 + 16 * 10
    parsed = parse_webmask(data)
    assert parsed.segments == table
    assert [ms for ms, _ in parsed.records] == [ms for ms, _ in records]
    assert len(parsed.records) == 2253 and parsed.records[1][0] - parsed.records[0][0] == 40  # 25 fps
    assert all(r.startswith(b"data:image/svg+xml;base64,") for _, r in records)
    svg = parsed.records[0][1]
    assert svg.startswith('<svg version="1.0"') and 'viewBox="0 0 320.000000 180.000000"' in svg


def test_real_sample_round_trip_is_byte_compatible(tmp_path):
    data = sample_bytes()
    records = read_webmask(SAMPLE)
    write_records(records, tmp_path / "copy.webmask")
    copy = (tmp_path / "copy.webmask").read_bytes()
    assert read_webmask(tmp_path / "copy.webmask") == records
    assert len(copy) == len(data)
    head_a, table_a, rec_a = independent_parse(data)
    head_b, table_b, rec_b = independent_parse(copy)
    assert (head_a, table_a, rec_a) == (head_b, table_b, rec_b)  # same offsets: same compressed sizes
    differing = [i for i, (a, b) in enumerate(zip(data, copy)) if a != b]
    mtimes = {off + k for _, off in table_a for k in range(4, 8)}  # gzip header mtime fields only
    assert set(differing) <= mtimes


def test_rasterising_the_real_sample():
    sample_bytes()
    records = read_webmask(SAMPLE)
    empty = svg_to_mask(records[0][1], (180, 320))  # frame 0: the black rectangle only
    assert not empty[:-1].any()  # potrace's rectangle starts at y = 1 px from the bottom, leaving the last row open
    assert empty[-1].all()
    people = [svg_to_mask(svg, (180, 320)) for _, svg in records[850:900:10]]
    fractions = [float((m > 0).mean()) for m in people]
    assert all(0.01 < f < 0.5 for f in fractions), fractions


def test_svg_export_is_exact_and_in_bilibili_style():
    mask = np.zeros((180, 320), np.uint8)
    mask[40:150, 100:180] = 255
    mask[70:90, 120:140] = 0  # a hole in the person (arm gap)
    mask[75:80, 125:130] = 255  # an island inside the hole
    mask[10, 300] = 255  # a single pixel
    svg = mask_to_svg(mask)
    assert 'viewBox="0 0 320.000000 180.000000"' in svg and 'fill-rule="evenodd"' in svg
    assert '<g transform="translate(0.000000,180.000000) scale(0.100000,-0.100000)"' in svg
    assert 'd="M0 0 l0 1800 3200 0 0 -1800z' in svg  # the black full-frame rectangle first
    assert np.array_equal(svg_to_mask(svg, (180, 320)), mask)
    big = svg_to_mask(svg, (360, 640))  # scales with the viewBox
    assert iou(big > 0, np.kron(mask, np.ones((2, 2), np.uint8)) > 0) > 0.97


def test_export_of_a_track_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    masks, pts = [], []
    for i in range(60):  # 24 s at 2.5 fps: three 10 s segments
        m = np.zeros((180, 320), np.uint8)
        x = 40 + 3 * i
        m[30:170, x:x + 60] = 255
        m[rng.integers(0, 180), rng.integers(0, 320)] = 255
        masks.append(m)
        pts.append(i * 400)
    track = MaskTrack((180, 320), (720, 1280), Fraction(1, 1000), masks, pts)
    write_webmask(track, tmp_path / "t.webmask")
    head, table, records = independent_parse((tmp_path / "t.webmask").read_bytes())
    assert head == (b"MASK", 1, b"\x02\x00\x00\x00", 3)
    assert [s for s, _ in table] == [0, 10_000, 20_000]
    assert [ms for ms, _ in records] == pts
    for (ms, payload), mask in zip(records, masks):
        svg = base64.b64decode(payload.split(b",", 1)[1]).decode()
        assert np.array_equal(svg_to_mask(svg, (180, 320)), mask)


@pytest.mark.parametrize("damage,expected", [
    (lambda d: b"MAZK" + d[4:], "not a webmask"),
    (lambda d: d[:10], "too short"),
    (lambda d: d[:30], "does not fit"),
    (lambda d: d[:-5], "cannot inflate"),
    (lambda d: d[:16] + struct.pack(">qq", 0, 9999) + d[32:], "bad byte offset"),
])
def test_malformed_files_raise_track_errors(tmp_path, damage, expected):
    track = MaskTrack((18, 32), (18, 32), Fraction(1, 10), [np.full((18, 32), 255, np.uint8)] * 3, [0, 1, 2])
    write_webmask(track, tmp_path / "ok.webmask")
    (tmp_path / "bad.webmask").write_bytes(damage((tmp_path / "ok.webmask").read_bytes()))
    with pytest.raises(TrackError, match=expected):
        read_webmask(tmp_path / "bad.webmask")


def test_hostile_svg_text_is_rejected_cleanly():
    with pytest.raises(TrackError):
        svg_to_mask("<svg><path d='M0 0 L10'/></svg>", (10, 10))
    with pytest.raises(TrackError):
        svg_to_mask('<svg viewBox="0 0 10 10"><path d="5 5 L1 1z"/></svg>', (10, 10))
