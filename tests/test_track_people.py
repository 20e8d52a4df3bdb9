"""Mask track version 2: person layers (ids, salience, one mask per person) next to the version-1 union."""
from __future__ import annotations

import json
import struct
import subprocess
import zlib
from fractions import Fraction

import cv2
import numpy as np
import pytest
from test_track import DMASK_JS, _hash, _node

from danmask.cli import main
from danmask.errors import TrackError
from danmask.synthetic import person_mask
from danmask.track import MaskTrack, read_index

IDS = (2, 5, 11)


def soft(mask: np.ndarray) -> np.ndarray:
    """bool -> uint8 with blurred edges, so the 128 threshold decides the stored pixels."""
    return cv2.GaussianBlur(mask.astype(np.uint8) * 255, (5, 5), 0)


def crowd(frames: int = 60, size: tuple[int, int] = (90, 160)) -> list[list[tuple[int, bool, np.ndarray]]]:
    """Three people walking: 2 always salient, 5 salient from frame 30, 11 only in frames 20-44 (crossing 2,
    never salient); nobody in frame 50."""
    h, w = size
    out = []
    for i in range(frames):
        people = [(2, True, soft(person_mask(h, w, 20 + 1.5 * i, 0.55 * h, 0.7))),
                  (5, i >= 30, soft(person_mask(h, w, w - 20 - i, 0.5 * h, 0.5)))]
        if 20 <= i < 45:
            people.append((11, False, soft(person_mask(h, w, 3 * (i - 20), 0.6 * h, 0.6))))
        out.append([] if i == 50 else people)
    return out


def people_track(frames: int = 60, size: tuple[int, int] = (90, 160)) -> MaskTrack:
    track = MaskTrack(size, (2 * size[0], 2 * size[1]), Fraction(1, 30))
    for i, people in enumerate(crowd(frames, size)):
        union = np.zeros(size, np.uint8)
        for _, salient, mask in people:
            if salient:
                np.maximum(union, mask, out=union)
        track.append(i, union, people)
    return track


def union_only(track: MaskTrack) -> MaskTrack:
    return MaskTrack(track.mask_size, track.source_size, track.time_base, track.masks, track.pts)


def test_round_trip_keeps_the_v1_union_and_every_person(tmp_path):
    track = people_track()
    size = track.save(tmp_path / "v2.dmask")
    size_v1 = union_only(track).save(tmp_path / "v1.dmask")
    v2, v1 = (tmp_path / "v2.dmask").read_bytes(), (tmp_path / "v1.dmask").read_bytes()
    assert struct.unpack_from("<HH", v2, 4)[0] == 2 and struct.unpack_from("<I", v2, 32)[0] == 1
    assert struct.unpack_from("<H", v1, 4)[0] == 1 and struct.unpack_from("<I", v1, 32)[0] == 0
    # the union stream of every block is byte for byte the version-1 block
    (_, blocks2), (_, blocks1) = read_index(v2), read_index(v1)
    assert [(e.first_pts, e.frames) for e in blocks2] == [(e.first_pts, e.frames) for e in blocks1]
    for a, b in zip(blocks2, blocks1):
        n = 8 + struct.unpack_from("<I", v1, b.offset)[0]
        assert v2[a.offset: a.offset + n] == v1[b.offset: b.offset + n]
    back = MaskTrack.load(tmp_path / "v2.dmask")
    assert back.has_people and back.version == 2 and back.ids() == list(IDS)
    assert back.person_frames() == {2: (59, 59), 5: (59, 29), 11: (25, 0)}
    for i, people in enumerate(crowd()):
        assert np.array_equal(back.masks[i] == 255, track.masks[i] >= 128)
        got = back.people_at(i)
        assert [(p.id, p.salient) for p in got] == [(pid, salient) for pid, salient, _ in people]
        for p, (_, _, mask) in zip(got, people):
            assert p.mask.dtype == np.uint8 and np.array_equal(p.mask == 255, mask >= 128)
            assert set(np.unique(p.mask)) <= {0, 255}
    print(f"\nperson layers: {size} bytes with, {size_v1} without ({size / size_v1 - 1:+.0%})")


def test_selections(tmp_path):
    track = people_track()
    track.save(tmp_path / "t.dmask")
    back = MaskTrack.load(tmp_path / "t.dmask")
    i = 35  # all three people, 2 and 5 salient
    layers = {p.id: p.mask == 255 for p in back.people_at(i)}
    assert back.select(i, "salient") is back.masks[i]
    assert np.array_equal(back.select(i, {11}) == 255, layers[11])
    assert np.array_equal(back.select(i, [2, 11]) == 255, layers[2] | layers[11])
    assert np.array_equal(back.select(i, {2, 5}), back.masks[i])  # the salient ones make the union here
    assert np.array_equal(back.select(i, "all") == 255, layers[2] | layers[5] | layers[11])
    assert not back.select(i, set()).any() and not back.select(50, {2}).any()  # nobody chosen / nobody there
    with pytest.raises(TrackError, match=r"no person 3, 4 in this track \(its person ids: 2, 5, 11\)"):
        back.select(i, {3, 4, 2})
    with pytest.raises(TrackError, match="unknown selection"):
        back.select(i, "everyone")
    plain = union_only(track)
    assert plain.people_at(i) == [] and plain.ids() == [] and plain.select(i, "all") is plain.masks[i]
    with pytest.raises(TrackError, match="no person layers"):
        plain.select(i, {2})
    salient = back.selected("salient")
    assert not salient.has_people and all(a is b for a, b in zip(salient.masks, back.masks))


def test_people_are_validated():
    track = MaskTrack((4, 6), (4, 6), Fraction(1, 30))
    empty = np.zeros((4, 6), np.uint8)
    with pytest.raises(TrackError, match="repeat"):
        track.append(0, empty, [(1, True, empty), (1, False, empty)])
    with pytest.raises(TrackError, match="person id"):
        track.append(0, empty, [(-1, True, empty)])
    with pytest.raises(TrackError, match="mask of person 3"):
        track.append(0, empty, [(3, True, np.zeros((4, 5), np.uint8))])
    track.append(0, empty)  # a frame without people, then one with: the track has layers, frame 0 nobody
    track.append(1, empty, [(7, False, empty)])
    assert track.has_people and track.people_at(0) == [] and [p.id for p in track.people_at(1)] == [7]


def v1_file_by_hand() -> bytes:
    """A version-1 track written from the spec alone: two 4x8 frames, `00111000` in rows 1-2, then moved right."""
    rows = bytes([3, 5, 2, 3]) + bytes([0, 1, 1, 0])  # frame 0: empty, 2 explicit, from above, empty; frame 1
    values = bytes([4, 6]) + bytes([0, 0]) + bytes([2, 2]) + bytes([2, 2])  # gaps 2,3 / deltas 0,0 / +1,+1 x2
    payload = struct.pack("<qq", 0, 3) + rows + values
    block = zlib.compress(payload, 9)
    head = struct.pack("<4sHHHHHHIIIII", b"DMSK", 1, 40, 8, 4, 16, 8, 1, 30, 2, 1, 0)
    head += struct.pack("<I", zlib.crc32(head))
    index = struct.pack("<qQI", 0, 40 + 20 + 4, 2)
    block_head = struct.pack("<II", len(block), zlib.crc32(block))
    return head + index + struct.pack("<I", zlib.crc32(index)) + block_head + block


def test_version_1_files_still_load(tmp_path):
    (tmp_path / "v1.dmask").write_bytes(v1_file_by_hand())
    track = MaskTrack.load(tmp_path / "v1.dmask")
    expected = np.zeros((2, 4, 8), np.uint8)
    expected[0, 1:3, 2:5] = 255
    expected[1, 1:3, 3:6] = 255
    assert track.pts == [0, 3] and not track.has_people and track.version == 1
    assert np.array_equal(np.stack(track.masks), expected)
    assert track.people_at(0) == [] and track.select(1, "all") is track.masks[1]


def test_damaged_person_layers_lose_only_their_block(tmp_path):
    track = people_track(frames=90)  # three blocks
    path = tmp_path / "t.dmask"
    track.save(path)
    data = bytearray(path.read_bytes())
    _, entries = read_index(bytes(data))
    middle = entries[1]
    people_at = middle.offset + 8 + struct.unpack_from("<I", data, middle.offset)[0]
    data[people_at + 20] ^= 0xFF  # inside block 1's person stream; its union is intact
    (tmp_path / "bad.dmask").write_bytes(bytes(data))
    with pytest.raises(TrackError, match="block 1 person layers .*checksum mismatch"):
        MaskTrack.load(tmp_path / "bad.dmask")
    saved = MaskTrack.load(tmp_path / "bad.dmask", salvage=True)
    lost = set(range(entries[1].first_pts, entries[2].first_pts))
    assert len(saved.damage) == 1 and saved.pts == [p for p in track.pts if p not in lost]
    for k, p in enumerate(saved.pts):
        assert [(a.id, a.salient) for a in saved.people_at(k)] == [(a.id, a.salient) for a in track.people_at(p)]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(saved.people_at(k), track.people_at(p)))
    union = MaskTrack.load(tmp_path / "bad.dmask", people=False)  # a union-only reader never looks there
    assert len(union) == 90 and not union.has_people
    # a damaged person table is a damaged index: nothing to salvage
    table_at = 40 + 20 * len(entries) + 4
    data = bytearray(path.read_bytes())
    data[table_at + 5] ^= 1
    (tmp_path / "bad.dmask").write_bytes(bytes(data))
    with pytest.raises(TrackError, match="person table checksum"):
        MaskTrack.load(tmp_path / "bad.dmask", salvage=True)


def test_unknown_version_and_flags_are_refused(tmp_path):
    data = bytearray(v1_file_by_hand())
    for version, flags, expected in ((3, 0, "version 3"), (2, 2, "unknown header flags")):
        struct.pack_into("<HH", data, 4, version, 40)
        struct.pack_into("<I", data, 32, flags)
        struct.pack_into("<I", data, 36, zlib.crc32(bytes(data[:36])))
        (tmp_path / "x.dmask").write_bytes(bytes(data))
        with pytest.raises(TrackError, match=expected):
            MaskTrack.load(tmp_path / "x.dmask")


def moving_people(count: int, frames: int, size: tuple[int, int] = (180, 320), seed: int = 0) -> MaskTrack:
    """`count` people walking at different speeds, breathing (edges move every frame); the first count - 1 salient."""
    rng = np.random.default_rng(seed)
    h, w = size
    walk = [(rng.uniform(40, w - 40), rng.uniform(-1.5, 1.5), rng.uniform(0.8 * h / 2, 1.2 * h / 2),
             rng.uniform(0.4, 0.8), rng.uniform(0, 6)) for _ in range(count)]
    track = MaskTrack(size, (720, 1280), Fraction(1, 30))
    for i in range(frames):
        people = []
        for pid, (x, vx, y, scale, phase) in enumerate(walk, start=1):
            s = scale * (1 + 0.03 * np.sin(i / 7 + phase))
            mask = person_mask(h, w, x + vx * i, y + 3 * np.sin(i / 5 + phase), s)
            people.append((pid, pid < count, mask.astype(np.uint8) * 255))
        union = np.zeros(size, np.uint8)
        for _, salient, mask in people:
            if salient:
                union |= mask
        track.append(i, union, people)
    return track


@pytest.mark.parametrize("count", [2, 4])
def test_size_of_person_layers(tmp_path, count):
    track = moving_people(count, frames=90)
    with_people = track.save(tmp_path / "v2.dmask")
    union = union_only(track).save(tmp_path / "v1.dmask")
    alone = sum(MaskTrack(track.mask_size, track.source_size, track.time_base,
                          [track.select(i, {pid}) for i in range(len(track))], track.pts).save(tmp_path / "one.dmask")
                for pid in track.ids())
    layers = with_people - union

    def per_minute(size: int) -> float:
        return size / 1000 / len(track) * 1800

    print(f"\n{count} people at 320x180: union {per_minute(union):.0f} KB/min, person layers "
          f"+{per_minute(layers):.0f} KB/min, one version-1 track per person {per_minute(alone):.0f} KB/min")
    # measured: 2 people +78 KB/min (vs 92 as separate tracks), 4 people +132 (vs 174); the breathing
    # synthetic people move every edge in every frame, so this is a high estimate for real model output
    assert layers < 0.95 * alone  # cheaper than shipping each person as a track of their own
    assert per_minute(layers) / count < 45


NODE_SCRIPT = """
import { readFileSync } from "node:fs";
import { DmaskTrack } from "%s";
const hash = (m) => { let h = 0; for (let k = 0; k < m.length; k++) h = (h * 31 + m[k]) %% 1000000007; return h; };
const track = await DmaskTrack.fromBuffer(readFileSync(process.argv[2]));
const out = { hasPeople: track.hasPeople, table: track.people, frames: [], selections: [] };
for (let b = 0; b < track.index.length; b++) {
  const block = await track.block(b);
  const people = await track.peopleBlock(b);
  block.masks.forEach((m, i) => {
    out.frames.push([block.pts[i], hash(m), people[i].map((p) => [p.id, p.salient, hash(p.data)])]);
  });
}
for (const [t, which] of JSON.parse(process.argv[3])) {
  const m = await track.maskAt(t, which);
  const at = await track.peopleAt(t);
  out.selections.push([m.pts, hash(m.data), at.pts, at.people.map((p) => p.id)]);
}
try { await track.maskAt(0, [99]); } catch (err) { out.unknown = err.message; }
console.log(JSON.stringify(out));
"""


def run_node(tmp_path, track_path, probes) -> dict:
    script = tmp_path / "people.mjs"
    script.write_text(NODE_SCRIPT % DMASK_JS.as_uri())
    result = subprocess.run([_node(), str(script), str(track_path), json.dumps(probes)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_javascript_reader_decodes_person_layers_like_python(tmp_path):
    people_track(frames=70).save(tmp_path / "t.dmask")
    back = MaskTrack.load(tmp_path / "t.dmask")
    times = back.times
    probes = [[times[35], "salient"], [times[35], "all"], [times[36] - 1e-4, [11]], [times[40], [2, 11]],
              [times[50], "all"], [times[66], [5]], [-1.0, "all"]]
    out = run_node(tmp_path, tmp_path / "t.dmask", probes)
    assert out["hasPeople"] is True
    table = back.person_frames().items()
    assert out["table"] == [{"id": pid, "frames": n, "salientFrames": s} for pid, (n, s) in table]
    assert out["frames"] == [[p, _hash(back.masks[i]), [[q.id, q.salient, _hash(q.mask)] for q in back.people_at(i)]]
                             for i, p in enumerate(back.pts)]
    expected = []
    for t, which in probes:
        i = back.index_at(t)
        expected.append([back.pts[i], _hash(back.select(i, which)), back.pts[i], [q.id for q in back.people_at(i)]])
    assert out["selections"] == expected
    assert "no person 99" in out["unknown"] and "2, 5, 11" in out["unknown"]


def test_javascript_reader_on_a_track_without_people(tmp_path):
    union_only(people_track(frames=10)).save(tmp_path / "t.dmask")
    back = MaskTrack.load(tmp_path / "t.dmask")
    out = run_node(tmp_path, tmp_path / "t.dmask", [[back.times[4], "all"]])
    assert out["hasPeople"] is False and out["table"] == [] and all(f[2] == [] for f in out["frames"])
    assert out["selections"] == [[back.pts[4], _hash(back.masks[4]), back.pts[4], []]]


def test_javascript_reader_rejects_damaged_person_layers(tmp_path):
    people_track(frames=20).save(tmp_path / "t.dmask")
    data = bytearray((tmp_path / "t.dmask").read_bytes())
    data[-10] ^= 0xFF  # the last bytes of the file are the last block's person stream
    (tmp_path / "bad.dmask").write_bytes(bytes(data))
    script = tmp_path / "read.mjs"
    script.write_text(f"""
import {{ readFileSync }} from "node:fs";
import {{ DmaskTrack }} from "{DMASK_JS.as_uri()}";
const track = await DmaskTrack.fromBuffer(readFileSync(process.argv[2]));
await track.maskAt(0);  // the union is intact
await track.peopleAt(0);
""")
    result = subprocess.run([_node(), str(script), str(tmp_path / "bad.dmask")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "person layers" in result.stderr and "checksum mismatch" in result.stderr


# ---------------------------------------------------------------- the CLI: export --people, info

@pytest.fixture
def saved(tmp_path):
    track = people_track(frames=45)
    track.save(tmp_path / "t.dmask")
    return tmp_path / "t.dmask", MaskTrack.load(tmp_path / "t.dmask")


@pytest.mark.parametrize("choice, which", [("salient", "salient"), ("all", "all"), ("11", {11}), ("2,11", {2, 11})])
def test_export_png_people(saved, tmp_path, capsys, choice, which):
    path, track = saved
    out = tmp_path / "png"
    args = ["export", str(path), "--format", "png", "-o", str(out)]
    assert main(args + (["--people", choice] if choice != "salient" else [])) == 0
    for i in (0, 25, 44):
        png = cv2.imread(str(out / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(png, track.select(i, which)), i


def test_export_webmask_people(saved, tmp_path):
    from danmask.webmask import read_webmask, svg_to_mask

    path, track = saved
    assert main(["export", str(path), "--format", "webmask", "--people", "11", "-o", str(tmp_path / "t.webmask")]) == 0
    records = read_webmask(tmp_path / "t.webmask")
    assert np.array_equal(svg_to_mask(records[30][1], track.mask_size), track.select(30, {11}))


def test_export_unknown_people_is_one_line(saved, tmp_path, capsys):
    path, _ = saved
    assert main(["export", str(path), "--format", "png", "--people", "3,5", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no person 3" in err and "2, 5, 11" in err and "t.dmask" in err
    with pytest.raises(SystemExit) as exc:  # a malformed value is argparse's usage error
        main(["export", str(path), "--format", "png", "--people", "1,x", "-o", str(tmp_path / "p")])
    assert exc.value.code == 2 and "person ids like 1,3" in capsys.readouterr().err


def test_info_lists_the_people(saved, capsys):
    path, _ = saved
    assert main(["info", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["kind"] == "mask track (.dmask v2)" and facts["person_layers"] is True
    assert facts["people"] == [{"id": 2, "frames": 45, "salient_frames": 45},
                               {"id": 5, "frames": 45, "salient_frames": 15},
                               {"id": 11, "frames": 25, "salient_frames": 0}]
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "2 (45 frames, 45 salient), 5 (45 frames, 15 salient), 11 (25 frames, 0 salient)" in text
