"""Every reader under fire, on a bounded budget: only typed danmask errors may come out of hostile input.

Property-based (Hypothesis) tests generate inputs and check both that nothing untyped escapes and that what is
read back is right (tracks and webmasks round-trip, comment text comes back literally); the mutation harness of
tests/fuzz.py damages real files of every format; a short CLI run feeds mutated files to the commands.

Budgets: DANMASK_FUZZ_EXAMPLES (Hypothesis examples per test, default 40) and DANMASK_FUZZ_BUDGET (mutated inputs
per reader, default 120; videos and the CLI get a quarter). The long run is `python tests/fuzz.py --budget 10000
--cli 600` (docs/reliability.md).
"""
from __future__ import annotations

import gzip
import json
import os
import string
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from fuzz import TARGETS, run_cli, run_target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from danmask.danmaku.comments import clean_text, load_comments
from danmask.errors import CommentError, DanmaskError, ModelError, TrackError, VideoError
from danmask.runtime.base import ModelSpec
from danmask.runtime.registry import spec_from_json
from danmask.track import MaskTrack, decode_track, encode_track
from danmask.webmask import mask_to_svg, parse_webmask, svg_to_mask

EXAMPLES = int(os.environ.get("DANMASK_FUZZ_EXAMPLES", "40"))
BUDGET = int(os.environ.get("DANMASK_FUZZ_BUDGET", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=5),
                    max_leaves=30)


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


# ---------------------------------------------------------------- comments

@FUZZ
@given(data=st.binary(max_size=2000), wrap=st.sampled_from(["plain", "gzip", "deflate"]))
def test_any_bytes_as_a_comment_file(tmp_path, data, wrap):
    path = tmp_path / "c.xml"
    path.write_bytes({"plain": data, "gzip": gzip.compress(data), "deflate": _deflate(data)}[wrap])
    try:
        load_comments(path)
    except CommentError:
        pass


@FUZZ
@given(doc=JSON)
def test_any_json_as_a_comment_file(tmp_path, doc):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        loaded = load_comments(path)
    except CommentError:
        return
    assert all(c.text and c.time_s >= 0 for c in loaded.comments)


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), max_size=40)
ATTRIBUTE = st.one_of(st.text(string.digits + ".,-e", max_size=30), st.just("1.5,1,25,16777215"))


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@FUZZ
@given(entries=st.lists(st.tuples(ATTRIBUTE, TEXT), max_size=12))
def test_comment_text_comes_back_literally(tmp_path, entries):
    body = "".join(f'<d p="{_xml_escape(p)}">{_xml_escape(text)}</d>' for p, text in entries)
    path = tmp_path / "c.xml"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><i>{body}</i>', encoding="utf-8")
    loaded = load_comments(path)  # well-formed: never an error, bad entries are skipped and counted
    wanted = [clean_text(text) for p, text in entries if p == "1.5,1,25,16777215" and clean_text(text)]
    assert [c.text for c in loaded.comments if c.time_s == 1.5 and c.color == 16777215] == wanted
    assert len(loaded.comments) + loaded.skipped_total == len(entries)


# ---------------------------------------------------------------- .dmask

@st.composite
def tracks(draw) -> MaskTrack:
    """Small random tracks: blocky masks, increasing pts with gaps, sometimes person layers."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 20))
    time_base = Fraction(draw(st.integers(1, 1001)), draw(st.integers(1, 90000)))
    track = MaskTrack((h, w), (draw(st.integers(1, 999)), draw(st.integers(1, 999))), time_base)
    people = draw(st.booleans())
    pts = draw(st.integers(-10**6, 10**6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    for _ in range(draw(st.integers(0, 25))):
        pts += draw(st.integers(1, 10**5))
        mask = np.where(rng.random((h, w)) < rng.random(), 255, 0).astype(np.uint8)
        layers = [(int(pid), bool(rng.random() < 0.5), np.where(rng.random((h, w)) < 0.3, 255, 0).astype(np.uint8))
                  for pid in sorted(set(rng.integers(0, 5, rng.integers(0, 4)).tolist()))] if people else None
        track.append(pts, mask, layers)
    return track


@FUZZ
@given(track=tracks())
def test_tracks_round_trip(track):
    back = decode_track(encode_track(track))
    assert back.pts == track.pts and back.time_base == track.time_base and back.mask_size == track.mask_size
    assert all(np.array_equal(a >= 128, b >= 128) for a, b in zip(track.masks, back.masks))
    assert back.person_frames() == track.person_frames()
    for i in range(len(track)):
        assert [(p.id, p.salient) for p in back.people_at(i)] == [(p.id, p.salient) for p in track.people_at(i)]
        assert all(np.array_equal(a.mask >= 128, b.mask >= 128)
                   for a, b in zip(track.people_at(i), back.people_at(i)))


@FUZZ
@given(data=st.binary(max_size=4000), magic=st.booleans(), salvage=st.booleans())
def test_any_bytes_as_a_track(data, magic, salvage):
    try:
        decode_track(b"DMSK" + data if magic else data, salvage=salvage)
    except TrackError:
        pass


# ---------------------------------------------------------------- .webmask

@FUZZ
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 12), w=st.integers(1, 16), fill=st.floats(0, 1))
def test_webmask_svg_gives_the_mask_back(seed, h, w, fill):
    mask = np.where(np.random.default_rng(seed).random((h, w)) < fill, 255, 0).astype(np.uint8)
    assert np.array_equal(svg_to_mask(mask_to_svg(mask), (h, w)), mask)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_any_bytes_as_a_webmask(data):
    try:
        parsed = parse_webmask(b"MASK\x00\x00\x00\x01\x02\x00\x00\x00" + data)
        for _, svg in parsed.records[:2]:
            svg_to_mask(svg, (9, 16))
    except TrackError:
        pass


@FUZZ
@given(svg=st.text(max_size=300))
def test_any_text_as_webmask_svg(svg):
    try:
        svg_to_mask('viewBox="0 0 16 9" d="' + svg + '"', (9, 16))
    except TrackError:
        pass


# ---------------------------------------------------------------- model sidecars

@FUZZ
@given(doc=JSON | st.fixed_dictionaries({"name": st.text(max_size=8), "input_size": JSON}, optional={
    "takes_prior": JSON, "output": JSON, "backend": JSON, "path": JSON, "extra": JSON}))
def test_any_json_as_a_model_sidecar(tmp_path, doc):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        spec = spec_from_json(path)
    except ModelError:
        return
    assert isinstance(spec, ModelSpec) and len(spec.input_size) == 2 and isinstance(spec.extra, dict)


# ---------------------------------------------------------------- videos

@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(["mp4", "mkv", "flv", "webm"]))
def test_any_bytes_as_a_video(tmp_path, data, suffix):
    from danmask.video import iter_frames, probe

    path = tmp_path / f"v.{suffix}"
    path.write_bytes(data)
    try:
        probe(path)
        for _ in iter_frames(path):
            pass
    except VideoError:
        pass


# ---------------------------------------------------------------- mutated real files, and the CLI

@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_files(name):
    budget = max(10, BUDGET // 4) if name.startswith("video") or name == "sidecar" else BUDGET
    report = run_target(TARGETS[name], budget)
    assert report.tried == budget and not report.crashes, "\n".join(
        f"{sig} x{count}:\n{tb}" for sig, (count, _, tb) in report.crashes.items())


def test_mutated_files_through_the_cli():
    report = run_cli(max(len(TARGETS), BUDGET // 4))
    assert not report.failures, "\n".join(report.failures)
    assert set(report.exit_codes) <= {0, 2}



CASES = Path(__file__).with_name("fuzz-cases")


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.glob("*.bin")))
def test_inputs_the_long_runs_crashed_on(case, tmp_path):
    """Every input a long fuzzing run once crashed on (named `<target>-<what>.bin`) now gives a typed error or a
    result."""
    target = TARGETS["-".join(case.split("-")[:2]) if case.startswith("video-") else case.split("-")[0]]
    try:
        target.read((CASES / case).read_bytes(), tmp_path)
    except DanmaskError:
        pass
