"""Mutation fuzzing of every reader danmask has: only typed danmask errors may come out of a damaged input.

Targets: comment files (Bilibili XML and JSON, DPlayer JSON; plain, gzip, raw deflate), .dmask tracks (version 1
and 2), .webmask files (and the SVG in them), model sidecars (read, then loaded), and videos (MP4, MKV, FLV:
probed, then decoded). Each starts from valid files made here and mutates them byte by byte (bit flips,
interesting integers, inserted, deleted, duplicated and spliced runs, truncation) and, for the formats guarded
by checksums or compression, also inside the checksum (.dmask blocks re-packed with fresh CRCs, webmask and
comment payloads re-compressed), so the mutations reach the decoders instead of stopping at the first CRC.

The CLI check feeds mutated files of every kind to the commands that read them (info, export, segment, render)
and requires exit code 0 or 2 and no traceback.

    python tests/fuzz.py --budget 10000                      # every target, 10000 inputs each
    python tests/fuzz.py --budget 2000 --target dmask --target video
    python tests/fuzz.py --budget 0 --cli 600                # only the CLI check, 600 files
    python tests/fuzz.py --seed 7 --save fuzz-crashes        # crashing inputs are written there

tests/test_fuzz.py runs a small budget of the same harness on every test run.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from danmask.errors import DanmaskError

Mutator = Callable[[bytes, random.Random, list[bytes]], bytes]
INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               2 ** 63 - 1, 2 ** 64 - 1]
VIDEO_FRAMES = 30  # frames decoded per mutated video: enough to reach the damage, bounded in time


# ---------------------------------------------------------------- byte-level mutations (any format)

def flip_bits(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def interesting_int(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    width = rng.choice((1, 2, 4, 8))
    if len(data) < width:
        return data
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    at = rng.randrange(len(data) - width + 1)
    return data[:at] + value.to_bytes(width, rng.choice(("little", "big"))) + data[at + width:]


def insert_run(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    at = rng.randrange(len(data) + 1)
    run = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) if rng.random() < 0.5 else \
        bytes([rng.randrange(256)]) * rng.randint(1, 256)
    return data[:at] + run + data[at:]


def delete_run(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, max(1, len(data) // 8)):]


def duplicate_run(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    run = data[start:start + rng.randint(1, 256)]
    at = rng.randrange(len(data) + 1)
    return data[:at] + run + data[at:]


def truncate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def splice(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    other = rng.choice(pool)
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


BYTE_MUTATORS: list[Mutator] = [flip_bits, interesting_int, insert_run, delete_run, duplicate_run, truncate,
                                splice]


def mutate_bytes(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One to three stacked byte-level mutations."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(BYTE_MUTATORS)(data, rng, pool)
    return data


# ---------------------------------------------------------------- inside checksums and compression

def dmask_inner(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Mutate the inflated payload of one stream (or a header field) of a valid .dmask, then re-pack it with fresh
    CRCs and a fixed-up index, so that the mutation reaches the decoders."""
    from danmask import track as t

    try:
        header, entries = t.read_index(data)
    except DanmaskError:
        return mutate_bytes(data, rng, pool)
    if rng.random() < 0.3:  # a header field, header CRC recomputed
        body = bytearray(interesting_int(data[:t.HEADER.size - 4], rng, pool))
        body[:4] = t.MAGIC
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))) + data[t.HEADER.size:]
    start = t.HEADER.size + len(entries) * t.INDEX_ENTRY.size + 4
    streams, at = [], entries[0].offset if entries else len(data)
    table = data[start:at]
    while at + t.BLOCK_HEAD.size <= len(data):
        size = t.BLOCK_HEAD.unpack_from(data, at)[0]
        streams.append(zlib.decompress(data[at + t.BLOCK_HEAD.size: at + t.BLOCK_HEAD.size + size]))
        at += t.BLOCK_HEAD.size + size
    if not streams:
        return mutate_bytes(data, rng, pool)
    k = rng.randrange(len(streams))
    streams[k] = mutate_bytes(streams[k], rng, pool)
    per_block = len(streams) // max(1, len(entries))
    packed = [t._pack_stream(s) for s in streams]
    offset, index = start + len(table), b""
    for i, entry in enumerate(entries):
        index += t.INDEX_ENTRY.pack(entry.first_pts, offset, entry.frames)
        offset += sum(len(p) for p in packed[i * per_block:(i + 1) * per_block])
    return (data[:t.HEADER.size] + index + struct.pack("<I", zlib.crc32(index)) + table + b"".join(packed))


def webmask_inner(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Mutate the SVG of one record of a valid .webmask (or the inflated records of one segment, or a
    timestamp), and write the file again, so the mutation gets past gzip's CRC and the record framing."""
    from danmask import webmask as w

    if rng.random() < 0.6:
        try:
            records = list(w.parse_webmask(data).records)
        except DanmaskError:
            return mutate_bytes(data, rng, pool)
        k = rng.randrange(len(records))
        ms, svg = records[k]
        if rng.random() < 0.2:
            ms = rng.choice(INTERESTING + [-1, -2 ** 40])
        else:
            svg = mutate_text(svg.encode(), rng, pool).decode("utf-8", "replace")
        records[k] = (ms, svg)
        try:
            return w.encode_records(records)
        except (struct.error, OverflowError):  # a timestamp the format cannot hold: write it anyway, raw
            return mutate_bytes(data, rng, pool)
    try:
        parsed_count = struct.unpack_from(">i", data, 12)[0]
        table = [w._ENTRY.unpack_from(data, w._HEAD.size + i * w._ENTRY.size) for i in range(parsed_count)]
        ends = [off for _, off in table[1:]] + [len(data)]
        raws = [gzip.decompress(data[off:end]) for (_, off), end in zip(table, ends)]
    except (struct.error, OSError, EOFError, zlib.error, ValueError):
        return mutate_bytes(data, rng, pool)
    if not raws:
        return mutate_bytes(data, rng, pool)
    k = rng.randrange(len(raws))
    raws[k] = mutate_bytes(raws[k], rng, pool)
    blobs = [w._gzip_member(r) for r in raws]
    offset = w._HEAD.size + w._ENTRY.size * len(blobs)
    index = b""
    for (start, _), blob in zip(table, blobs):
        index += w._ENTRY.pack(start, offset)
        offset += len(blob)
    return data[:w._HEAD.size] + index + b"".join(blobs)


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _inflated(data: bytes) -> tuple[bytes, Callable[[bytes], bytes]] | None:
    """(plain text, how to compress it again) of a gzip or raw-deflate comment file."""
    try:
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data), lambda plain: gzip.compress(plain, mtime=0)
        return zlib.decompress(data, -zlib.MAX_WBITS), _deflate
    except (OSError, EOFError, zlib.error):
        return None


def comments_inner(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Mutate the text of a compressed comment file, then compress it again (plain files: the text itself)."""
    found = _inflated(data) if data[:1] not in (b"<", b"[", b"{") else None
    if found is None:
        return mutate_text(data, rng, pool)
    plain, pack = found
    return pack(mutate_text(plain, rng, pool))


HOSTILE_TEXT = [b" M1e308 1e308", b"viewBox=\"0 0 0 0\"", b" C", b" z", b" l-999999999 1", b"scale(0)",
                b"translate(nan,inf)", b"<!DOCTYPE i [<!ENTITY a 'aaaa'>]>", b"&a;", b"<![CDATA[", b"]]>",
                b"<?xml", b"\x00", b"\xff\xfe",
                b"\xef\xbb\xbf", b'"', b"'", b"\\u0000", b"1e999", b"-1", b"NaN", b"[[[[[[[[", b"{\"data\":",
                b"<d p=\"", b",,,,,,,,", b"</i>", b"\xe5\xbc\xb9\xe5\xb9\x95", b"\r\n"]


def mutate_text(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Byte mutations plus tokens that mean something to XML and JSON parsers."""
    if rng.random() < 0.4:
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice(HOSTILE_TEXT) + data[at:]
    return mutate_bytes(data, rng, pool)


# ---------------------------------------------------------------- seeds (valid files made here)

def comment_seeds(work: Path) -> list[bytes]:
    xml = ('<?xml version="1.0" encoding="UTF-8"?><i><chatserver>x</chatserver>'
           '<d p="0.5,1,25,16777215,1600000000,0,abc,1">弹幕 &amp; text</d>'
           '<d p="1.25,5,36,255,0,0,u,2">top</d><d p="2,4,18,0,0,0,u,3">bottom</d>'
           '<d p="3,6,25,65280,0,0,u,4">reverse</d><d p="4,7,25,0">special</d></i>').encode()
    bili = json.dumps([{"progress": 500, "mode": 1, "fontsize": 25, "color": 16777215, "content": "hello",
                        "midHash": "ab", "idStr": "1"}, {"progress": "1500", "mode": 5, "content": "顶"},
                       {"progress": 2000, "content": "no mode"}], ensure_ascii=False).encode()
    dplayer = json.dumps({"code": 0, "data": [[0.5, 0, 16777215, "a", "hi"], [1.0, 1, 255, "b", "top"],
                                              [1.5, "bottom", 0, "c", "low"]]}).encode()
    plain = [xml, bili, dplayer, json.dumps({"data": {"elems": json.loads(bili)}}).encode()]
    return plain + [gzip.compress(p, mtime=0) for p in plain] + [_deflate(p) for p in plain]


def dmask_seeds(work: Path) -> list[bytes]:
    from danmask.synthetic import person_mask
    from danmask.track import MaskTrack, encode_track

    h, w = 18, 32
    masks = [np.where(person_mask(h, w, 8 + i, 10, 0.8), 255, 0).astype(np.uint8) for i in range(40)]
    plain = MaskTrack((h, w), (36, 64), Fraction(1, 30), masks, list(range(0, 80, 2)))
    people = MaskTrack((h, w), (36, 64), Fraction(1, 1000))
    box = np.zeros((h, w), np.uint8)
    box[2:8, 20:30] = 255
    for i, m in enumerate(masks):
        people.append(i * 40, m, [(1, True, m), (7, i % 3 == 0, box)] if i % 5 else [])
    return [encode_track(plain), encode_track(people)]


def webmask_seeds(work: Path) -> list[bytes]:
    from danmask.synthetic import person_mask
    from danmask.track import MaskTrack
    from danmask.webmask import write_webmask

    h, w = 18, 32
    masks = [np.where(person_mask(h, w, 8 + i, 10, 0.8), 255, 0).astype(np.uint8) for i in range(8)]
    track = MaskTrack((h, w), (h, w), Fraction(1, 1), masks, [0, 1, 2, 9, 10, 11, 25, 26])  # three segments
    write_webmask(track, work / "seed.webmask")
    return [(work / "seed.webmask").read_bytes()]


def sidecar_seeds(work: Path) -> list[bytes]:
    from danmask.runtime.registry import WEIGHTS_DIR

    for name in ("mpft-cpu.onnx", "person-detector.onnx", "person-pose.onnx"):
        if not (work / name).exists():
            shutil.copy(WEIGHTS_DIR / name, work / name)
    return [(WEIGHTS_DIR / name).read_bytes() for name in ("mpft-cpu.json", "mpft-prior.json", "person-track.json")]


def video_seeds(work: Path, suffix: str) -> list[bytes]:
    """A 12-frame clip: H.264 in MP4, variable frame rate H.264 in MKV, FLV's own codec in FLV."""
    from danmask.synthetic import make_video

    codec = "flv" if suffix == "flv" else "libx264"
    clip = make_video(work / f"seed.{suffix}", frames=12, shape=(48, 64), codec=codec, vfr=suffix == "mkv")
    return [clip.path.read_bytes()]


# ---------------------------------------------------------------- readers

def read_comments(data: bytes, work: Path) -> object:
    from danmask.danmaku.comments import load_comments

    (work / "in.xml").write_bytes(data)
    return load_comments(work / "in.xml")


def read_dmask(data: bytes, work: Path) -> object:
    from danmask.track import decode_track

    results = []
    for salvage, people in ((False, True), (True, True), (True, False)):
        try:
            results.append(decode_track(data, salvage=salvage, people=people))
        except DanmaskError as exc:
            results.append(exc)
    for result in results:
        if isinstance(result, DanmaskError):
            continue
        for i in range(len(result)):  # everything a caller may ask of a loaded track
            result.people_at(i)
            result.select(i, "all")
        result.person_frames()
    read_lazily(data, work)
    if isinstance(results[0], DanmaskError):
        raise results[0]
    return results[0]


def read_lazily(data: bytes, work: Path) -> None:
    """The streaming reader on the same bytes: open, then every frame by time and by person, block after block."""
    from danmask.trackreader import TrackReader

    (work / "in.dmask").write_bytes(data)
    for salvage in (False, True):
        try:
            with TrackReader(work / "in.dmask", salvage=salvage) as reader:
                for i, (pts, _) in enumerate(reader.items("all")):
                    reader.people_at(i)
                    reader.mask_at(float(pts * reader.header.time_base))
                reader.person_frames()
        except DanmaskError:
            pass


def read_webmask(data: bytes, work: Path) -> object:
    from danmask.webmask import parse_webmask, svg_to_mask

    parsed = parse_webmask(data, "fuzz.webmask")
    for _, svg in parsed.records[:3]:
        svg_to_mask(svg, (18, 32))
    return parsed


def read_sidecar(data: bytes, work: Path) -> object:
    from danmask.runtime import load_model
    from danmask.runtime.registry import spec_from_json

    (work / "model.json").write_bytes(data)
    spec = spec_from_json(work / "model.json")
    model = load_model(str(work / "model.json"))  # the sidecar names mpft-cpu.onnx or the person-track graphs
    frame = np.zeros((16, 16, 3), np.uint8)
    return spec, (model.track(frame, 0.0) if getattr(model, "tracks_people", False) else model.predict(frame))


def read_video(data: bytes, work: Path, suffix: str) -> object:
    from danmask.video import iter_frames, probe

    path = work / f"in.{suffix}"
    path.write_bytes(data)
    info = probe(path)
    frames = 0
    for _ in iter_frames(path):
        frames += 1
        if frames == VIDEO_FRAMES:
            break
    return info, frames


# ---------------------------------------------------------------- the harness

@dataclass
class Target:
    name: str
    seeds: Callable[[Path], list[bytes]]
    read: Callable[[bytes, Path], object]
    inner: Mutator | None = None  # mutation inside checksums or compression, used half of the time


def _video_target(suffix: str) -> Target:
    return Target(f"video-{suffix}", lambda work: video_seeds(work, suffix),
                  lambda data, work: read_video(data, work, suffix))


TARGETS = {t.name: t for t in [
    Target("comments", comment_seeds, read_comments, comments_inner),
    Target("dmask", dmask_seeds, read_dmask, dmask_inner),
    Target("webmask", webmask_seeds, read_webmask, webmask_inner),
    Target("sidecar", sidecar_seeds, read_sidecar, mutate_text),
    _video_target("mp4"), _video_target("mkv"), _video_target("flv"),
]}


@dataclass
class Report:
    """What one target's run did: inputs tried, read fine, refused with a typed error, crashed."""

    target: str
    tried: int = 0
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)  # typed error class -> count
    crashes: dict[str, list] = field(default_factory=dict)  # signature -> [count, saved file or None, traceback]
    seconds: float = 0.0
    slowest: float = 0.0

    @property
    def crash_count(self) -> int:
        return sum(c[0] for c in self.crashes.values())

    def line(self) -> str:
        refused = ", ".join(f"{n} {k}" for k, n in self.refused.most_common())
        return (f"{self.target:10s} {self.tried:6d} tried, {self.accepted:6d} read, {sum(self.refused.values()):6d} "
                f"refused ({refused or 'none'}), {self.crash_count} crashes in {len(self.crashes)} places, "
                f"{self.seconds:.1f} s (slowest input {self.slowest:.2f} s)")


def _signature(exc: BaseException) -> str:
    """Where an untyped exception came from: its class and the innermost danmask frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "danmask" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def run_target(target: Target, budget: int, seed: int = 0, work: Path | None = None,
               save: Path | None = None) -> Report:
    """Feed `budget` mutated inputs to one target; untyped exceptions are crashes (kept, never raised)."""
    rng = random.Random(f"{target.name}-{seed}")
    report = Report(target.name)
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="danmask-fuzz-")))
        pool = target.seeds(work)
        started = time.perf_counter()
        for i in range(budget):
            base = rng.choice(pool)
            use_inner = target.inner is not None and rng.random() < 0.5
            data = target.inner(base, rng, pool) if use_inner else mutate_bytes(base, rng, pool)
            report.tried += 1
            t0 = time.perf_counter()
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    target.read(data, work)
                report.accepted += 1
            except DanmaskError as exc:
                report.refused[type(exc).__name__] += 1
            except Exception as exc:  # noqa: BLE001 - an untyped error is exactly what we are looking for
                _record_crash(report, exc, data, save, f"{target.name}-{seed}-{i}")
            report.slowest = max(report.slowest, time.perf_counter() - t0)
        report.seconds = time.perf_counter() - started
    return report


def _record_crash(report: Report, exc: Exception, data: bytes, save: Path | None, stem: str) -> None:
    sig = _signature(exc)
    entry = report.crashes.setdefault(sig, [0, None, "".join(traceback.format_exception(exc))])
    entry[0] += 1
    if save is not None and entry[1] is None:
        save.mkdir(parents=True, exist_ok=True)
        entry[1] = save / f"{stem}.bin"
        entry[1].write_bytes(data)


# ---------------------------------------------------------------- the CLI check

@dataclass
class CliReport:
    files: int = 0
    exit_codes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # what went wrong, one line each

    def line(self) -> str:
        codes = ", ".join(f"{n} x exit {c}" for c, n in sorted(self.exit_codes.items()))
        return f"cli        {self.files:6d} files through the CLI: {codes}; {len(self.failures)} failures"


def _cli_fixture(work: Path) -> dict:
    """A small clip with its track and comments, and the seeds of every kind."""
    from danmask.synthetic import make_video
    from danmask.track import MaskTrack

    clip = make_video(work / "clip.mp4", frames=8, shape=(48, 64))
    MaskTrack((48, 64), (48, 64), clip.time_base, [m.astype(np.uint8) * 255 for m in clip.masks],
              clip.pts).save(work / "clip.dmask")
    (work / "c.xml").write_text('<i><d p="0.1,1,25,16777215">hi</d></i>', encoding="utf-8")
    return {"clip": clip.path, "track": work / "clip.dmask", "comments": work / "c.xml"}


def cli_commands(kind: str, path: Path, fx: dict, work: Path, turn: int) -> list[str]:
    """The command that reads a file of `kind`, taking turns where several do."""
    out = work / "out"
    if kind.startswith("video"):
        return [["info", str(path)], ["segment", str(path), "-o", f"{out}.dmask", "-m", "fast", "-q"]][turn % 2]
    if kind == "dmask":
        return [["info", str(path)], ["export", str(path), "-f", "webmask", "-o", f"{out}.webmask"],
                ["export", str(path), "-f", "png", "-o", str(out), "--salvage", "--people", "all"]][turn % 3]
    if kind == "webmask":
        return ["info", str(path)]
    if kind == "comments":
        return ["render", str(fx["clip"]), "-c", str(path), "-t", str(fx["track"]), "-o", f"{out}.mp4", "-q"]
    return ["segment", str(fx["clip"]), "-m", str(path), "-o", f"{out}.dmask", "-q"]  # a sidecar


SUFFIX = {"comments": "xml", "dmask": "dmask", "webmask": "webmask", "sidecar": "json", "video-mp4": "mp4",
          "video-mkv": "mkv", "video-flv": "flv"}


def run_cli(files: int, seed: int = 0, save: Path | None = None) -> CliReport:
    """`files` mutated files, taking turns over the kinds, each through the command that reads it: exit code 0
    or 2, stderr without a traceback, and an error line for exit code 2."""
    from danmask.cli import main

    rng = random.Random(f"cli-{seed}")
    report = CliReport()
    with tempfile.TemporaryDirectory(prefix="danmask-fuzz-cli-") as tmp:
        work = Path(tmp)
        fx = _cli_fixture(work)
        pools = {name: (t, t.seeds(work)) for name, t in TARGETS.items()}
        kinds = list(pools)
        for i in range(files):
            kind = kinds[i % len(kinds)]
            target, pool = pools[kind]
            base = rng.choice(pool)
            data = target.inner(base, rng, pool) if target.inner and rng.random() < 0.5 else \
                mutate_bytes(base, rng, pool)
            path = work / f"fuzz-{i}.{SUFFIX[kind]}"
            path.write_bytes(data)
            argv = cli_commands(kind, path, fx, work, i // len(kinds))
            problem, code = _run_main(main, argv)
            report.files += 1
            report.exit_codes[code] += 1
            if problem:
                report.failures.append(f"{' '.join(argv)}: {problem}")
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, save / f"cli-{seed}-{i}.{SUFFIX[kind]}")
            path.unlink()
    return report


def _run_main(main, argv: list[str]) -> tuple[str | None, object]:
    """(what went wrong or None, exit code) of one in-process CLI run."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exc:
        return f"SystemExit({exc.code}) escaped", exc.code
    except BaseException as exc:  # noqa: BLE001 - a traceback is the failure we look for
        return f"traceback: {_signature(exc)}: {str(exc)[:200]}", "traceback"
    text = err.getvalue()
    if "Traceback" in text:
        return "a traceback on stderr", code
    if code not in (0, 2):
        return f"exit code {code}", code
    if code == 2 and " error: " not in text.strip().splitlines()[-1]:
        return f"exit 2 without an error line: {text[-200:]!r}", code
    return None, code


# ---------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=1000, help="inputs per target (default 1000)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="repeat; default: all")
    parser.add_argument("--cli", type=int, default=0, metavar="FILES", help="mutated files through the CLI")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR", help="write crashing inputs here")
    args = parser.parse_args(argv)
    crashes = 0
    if args.budget > 0:
        for name in args.target or TARGETS:
            report = run_target(TARGETS[name], args.budget, args.seed, save=args.save)
            print(report.line(), flush=True)
            for sig, (count, saved, tb) in report.crashes.items():
                print(f"  CRASH {count}x {sig}" + (f" (input: {saved})" if saved else ""))
                print("    " + tb.strip().splitlines()[-1])
            crashes += report.crash_count
    if args.cli:
        cli = run_cli(args.cli, args.seed, save=args.save)
        print(cli.line(), flush=True)
        for failure in cli.failures:
            print(f"  FAIL {failure}")
        crashes += len(cli.failures)
    print(f"total: {crashes} crashes" if crashes else "total: no crashes")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
