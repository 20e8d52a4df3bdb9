"""`danmask segment --refine` (danmask.vos.refine): key frames chosen from the masks themselves, propagated both
ways by the shipped memory network, lost frames filled and the rest averaged; person layers kept."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from danmask.synthetic import make_video
from danmask.trackreader import TrackReader
from danmask.trackwriter import TrackWriter
from danmask.video import iter_frames, probe
from danmask.vos.refine import Key, choose_keyframes, refine_pass, refine_track


def disc(shift: int, shape=(40, 60)) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (((yy - 20) ** 2 + (xx - 20 - shift) ** 2 < 100) * 255).astype(np.uint8)


def test_key_frames_are_the_steadiest_non_empty_mask_of_each_window():
    steady = [disc(k) for k in range(5)]
    steady[2] = disc(15)  # a jump: it agrees with neither neighbour
    empty = [np.zeros_like(steady[0])] * 5
    keys = choose_keyframes(steady + empty + [disc(0)], every=5)
    assert [k.index for k in keys] == [0, 10]  # frames 1 and 3 border the jump, 4 the empty window
    assert all(k.area == np.count_nonzero(disc(0)) for k in keys)
    assert choose_keyframes(empty, every=2) == []
    assert choose_keyframes([disc(0)], every=3) == [Key(0, np.count_nonzero(disc(0)))]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("refine") / "clip.mp4", frames=30, shape=(90, 160), fps=25)


def test_a_pass_fills_frames_where_the_person_was_lost_and_averages_the_rest(clip):
    masks = [(m * 255).astype(np.uint8) for m in clip.masks]
    lost = {12, 13, 14}
    for i in lost:
        masks[i] = np.zeros_like(masks[i])
    keys = choose_keyframes(masks, every=10)
    assert len(keys) == 3 and not lost & {k.index for k in keys}
    filled = {}
    for fuse in ("fill", "mean"):
        out = list(refine_pass(iter_frames(clip.path), iter(masks), keys, max_gap=50, fuse=fuse))
        assert len(out) == len(masks)
        for i, (before, after, how) in enumerate(out):
            assert np.array_equal(before, masks[i])
            if i in {k.index for k in keys}:
                assert how == "key" and np.array_equal(after, masks[i])
            elif i in lost:
                assert how == "filled" and np.count_nonzero(after >= 128) > 0  # something propagated into the gap
                filled.setdefault(i, after)
                assert np.array_equal(filled[i], after)  # the same propagation whatever the fusion
            elif fuse == "fill":
                assert how == "kept" and np.array_equal(after, before)
            else:  # the mean of the mask and the propagated one: each pixel stays on its side of the line or on it
                assert how == "mean"
                assert (after[before == 255] >= 128).all() and (after[before == 0] <= 128).all()
    assert len(filled) == len(lost)
    # a gap longer than max_gap between its key frames is left alone: nobody is known to be there
    out = list(refine_pass(iter_frames(clip.path), iter(masks), keys, max_gap=5))
    assert not [i for i, (_, _, how) in enumerate(out) if how == "filled"]


def test_without_anyone_the_masks_come_back_unchanged(clip):
    empty = [np.zeros(clip.masks[0].shape, np.uint8)] * len(clip.masks)
    assert choose_keyframes(empty, every=25) == []
    out = list(refine_pass(iter_frames(clip.path), iter(empty), [], max_gap=50))
    assert [how for _, _, how in out] == ["kept"] * len(empty) and all(not a.any() for _, a, _ in out)


def test_refined_track_keeps_every_frame_and_the_person_layers(clip, tmp_path):
    info = probe(clip.path)
    pts = [f.pts for f in iter_frames(clip.path)]
    shape = clip.masks[0].shape
    with TrackWriter(tmp_path / "base.dmask", shape, shape, info.time_base) as writer:
        for i, p in enumerate(pts):
            person = (clip.masks[i] * 255).astype(np.uint8)
            writer.append(p, person, [(7, True, person), (9, False, np.zeros(shape, np.uint8))])
    reports: list = []
    with TrackReader(tmp_path / "base.dmask") as base:
        out = refine_track(clip.path, base, output=tmp_path / "out.dmask", passes=2, fuse="mean", reports=reports)
    with out:
        records = list(out.records())
        assert [r[0] for r in records] == pts and out.ids() == [7, 9]
        for i, (_, union, people) in enumerate(records):
            assert [(p.id, p.salient) for p in people] == [(7, True), (9, False)]
            assert np.array_equal(people[0].mask >= 128, clip.masks[i])  # the layers are the per-frame path's
            assert np.mean((union >= 128) == clip.masks[i]) > 0.95  # a whole person: nothing to fill, little moved
    assert len(reports) == 2 and all(r.frames == len(pts) and r.keys >= 1 for r in reports)
    assert all(r.filled == 0 and r.averaged == len(pts) - r.keys for r in reports)


def test_cli_refine_reports_each_pass_and_refuses_bad_requests(clip, tmp_path):
    out = tmp_path / "out.dmask"
    cmd = [sys.executable, "-m", "danmask.cli", "segment", str(clip.path), "-o", str(out), "--model", "fast"]
    done = subprocess.run(cmd + ["--refine", "2", "--json", "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["refine_passes"]) == 2 and "refinement passes" in report["model"]
    with TrackReader(out) as track:
        assert [p for p, _ in track.items()] == [f.pts for f in iter_frames(clip.path)]
    damaged = tmp_path / "damaged.mkv"
    make_video(tmp_path / "whole.mkv", frames=40, shape=(90, 160))
    damaged.write_bytes((tmp_path / "whole.mkv").read_bytes()[:(tmp_path / "whole.mkv").stat().st_size // 2])
    broken = subprocess.run([*cmd[:4], str(damaged), *cmd[5:], "--refine"], capture_output=True, text=True,
                            timeout=300)
    assert broken.returncode == 2 and "truncated or damaged" in broken.stderr, broken.stderr
    assert broken.stderr.count("\n") == 1 and "wrote" not in broken.stderr  # the scratch track is nobody's output
    for extra, message in ((["--refine", "0"], "must be in 1..10, got 0"),
                           (["--refine", "--keyframe", f"0:{tmp_path}/none.png"], "do not go together")):
        bad = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=120)
        last = bad.stderr.strip().splitlines()[-1]  # argparse shows the usage above its one-line error
        assert bad.returncode == 2 and message in last and "Traceback" not in bad.stderr, bad.stderr


def test_refine_eval_scores_every_pass_per_sequence(clip, tmp_path):
    from PIL import Image

    from danmask.vos.refine_eval import evaluate, main, table

    video = tmp_path / "clip.mp4"
    video.write_bytes(clip.path.read_bytes())
    (tmp_path / "clip_masks").mkdir()
    for i, m in enumerate(clip.masks):
        Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "clip_masks" / f"{i:05d}.png")
    rows = evaluate(tmp_path, model="fast", passes=2)
    assert [r["sequence"] for r in rows] == ["clip"] and len(rows[0]["scores"]) == 3
    scores = rows[0]["scores"]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores[0] > 0.1  # the fast model finds the person at times
    assert scores[1] >= scores[0]  # frames where it lost them were filled (measured 0.205 -> 0.240)
    assert all(r.frames == len(clip.masks) for r in rows[0]["reports"])
    text = table(rows, 2)
    assert "| clip | 30 |" in text and "mean IoU, person sequences" in text and "pass 2" in text
    assert main([str(tmp_path / "nothing-here")]) == 2
