"""`danmask fx`: each effect writes a video that decodes (frames and timestamps kept, audio kept), keypoints carry
pts, bad input is one line and exit code 2; the BodyPix decoding and the parsing score on small known inputs.
The shared clips are used when present (skipped otherwise)."""
from __future__ import annotations

import inspect
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from danmask.cli import main
from danmask.fx.bodypix import GROUPS, PART_TO_GROUP, PARTS, WEIGHTS, BodyPix, fit, input_side
from danmask.fx.parse import PALETTE, colour_map, parse_colour, recolour
from danmask.fx.parse_eval import CIHP_TO_CLASS, CLASSES, confusion, ious
from danmask.synthetic import make_video
from danmask.video import iter_frames

from _shared import add_tone, shared_data

H, W = 120, 160


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("fx") / "clip.mp4", frames=12, shape=(H, W))


def decoded(path: Path) -> list:
    """The frames of a written video (the MP4 muxer picks its own time base: compare `time`, not `pts`)."""
    return list(iter_frames(path))


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# --- pose -------------------------------------------------------------------------------------------------------

def test_pose_writes_a_video_that_decodes_and_keypoints_with_pts(clip, tmp_path, capsys):
    out, kp = tmp_path / "pose.mp4", tmp_path / "pose.json"
    code, err = run_cli(["fx", "pose", clip.path, "-o", out, "--keypoints", kp, "-q"], capsys)
    assert code == 0, err
    frames = decoded(out)
    assert [f.time for f in frames] == pytest.approx(clip.times) and frames[0].rgb.shape == (H, W, 3)
    data = json.loads(kp.read_text())
    assert data["frames_count"] == len(data["frames"]) == len(clip.pts)
    source = decoded(clip.path)  # the pts as the source's container stores them
    assert [f["pts"] for f in data["frames"]] == [f.pts for f in source]
    assert Fraction(data["time_base"]) == source[0].time_base and len(data["keypoints"]) == 33


def test_pose_json_summary_has_speed(clip, tmp_path, capsys):
    code = main(["fx", "pose", str(clip.path), "-o", str(tmp_path / "p.mp4"), "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["frames"] == len(clip.pts) and report["effect_ms_per_frame"] > 0
    assert {"follow", "detect", "ms_per_person"} <= set(report)


def test_pose_on_a_real_clip_finds_people_with_ids_and_33_keypoints(tmp_path):
    from danmask.fx import run_pose

    source = shared_data() / "clips" / "vtest.avi"
    if not source.is_file():
        pytest.skip("vtest.avi is not in the shared data")
    kp = tmp_path / "k.json"
    result = run_pose(source, output=tmp_path / "o.mp4", keypoints=kp, stop_after=0.45)
    data = json.loads(kp.read_text())
    people = [p for f in data["frames"] for p in f["people"]]
    assert result.frames == len(data["frames"]) == len(decoded(tmp_path / "o.mp4")) >= 4
    assert people and all(len(p["keypoints"]) == 33 and len(p["keypoints"][0]) == 3 for p in people)
    ids_last = {p["id"] for p in data["frames"][-1]["people"]}
    assert ids_last & {p["id"] for p in data["frames"][-2]["people"]}  # ids carry over between frames


# --- parse ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("effect", ["colour-map", "recolour-torso", "per-person"])
def test_parse_writes_a_video_that_decodes(clip, tmp_path, capsys, effect):
    out = tmp_path / f"{effect}.mp4"
    flags = ["--per-person"] if effect == "per-person" else ["--effect", effect]
    code, err = run_cli(["fx", "parse", *flags, clip.path, "-o", out, "-q"], capsys)
    assert code == 0, err
    assert [f.time for f in decoded(out)] == pytest.approx(clip.times)


def test_parse_on_a_real_clip_colours_the_people(tmp_path):
    from danmask.fx import run_parse

    source = shared_data() / "clips" / "juggle.mp4"
    if not source.is_file():
        pytest.skip("juggle.mp4 is not in the shared data")
    result = run_parse(source, output=tmp_path / "o.mp4", stop_after=0.1)
    first = next(iter_frames(source)).rgb
    out = decoded(tmp_path / "o.mp4")
    assert len(out) == result.frames >= 2
    changed = np.abs(out[0].rgb.astype(int) - first.astype(int)).max(axis=2) > 40
    assert 0.03 < changed.mean() < 0.3  # the juggler (about a tenth of the picture), not the whole picture


def test_danmaku_behind_the_head_and_hands(clip, tmp_path, capsys):
    from danmask.danmaku.font import find_font
    from danmask.errors import FontError

    try:
        find_font()
    except FontError:
        pytest.skip("no CJK font installed (the demo extra ships one)")
    import danmask.danmaku

    comments = Path(danmask.danmaku.__file__).parent / "samples" / "demo-comments.xml"
    out = tmp_path / "dm.mp4"
    code, err = run_cli(["fx", "parse", "--effect", "danmaku", "-c", comments, "--protect", "head,hands", clip.path,
                         "-o", out, "-q"], capsys)
    assert code == 0, err
    src, dst = decoded(clip.path), decoded(out)
    assert [f.time for f in dst] == pytest.approx(clip.times)
    assert np.abs(dst[-1].rgb.astype(int) - src[-1].rgb.astype(int)).max() > 100  # comments drawn


def test_parts_hide_the_comments_only_where_protected():
    from danmask.danmaku.comments import Comment
    from danmask.danmaku.font import find_font
    from danmask.errors import FontError
    from danmask.fx.behind import BehindParts

    try:
        find_font()
    except FontError:
        pytest.skip("no CJK font installed (the demo extra ships one)")
    rgb = np.zeros((90, 160, 3), np.uint8)
    groups = np.zeros((90, 160), np.uint8)
    groups[:, :80] = GROUPS.index("head") + 1  # left half: a head; right half: a torso
    groups[:, 80:] = GROUPS.index("torso") + 1
    behind = BehindParts([Comment(0.0, "top", "█" * 40, size=50, color=0xFFFFFF)], protect=("head",))
    out = behind.draw(rgb.copy(), groups, 1.0)
    assert out[:, 90:].max() > 200 and out[:, :70].max() < 30  # drawn over the torso, hidden by the head


def test_per_person_parsing_finds_the_small_people_the_whole_frame_misses():
    from danmask.fx.parse import ParseEffect

    source = shared_data() / "clips" / "vtest.avi"
    if not source.is_file():
        pytest.skip("vtest.avi is not in the shared data")
    rgb = next(iter_frames(source)).rgb  # people about 80 px tall in 768x576
    whole, crops = ParseEffect(), ParseEffect(per_person=True)
    assert (crops.groups(rgb) > 0).sum() > 5 * max(1, (whole.groups(rgb) > 0).sum())
    assert crops.crops.people >= 3


def video_with_audio(tmp_path) -> Path:
    """A 15-frame synthetic clip (0.5 s) with a 440 Hz AAC tone."""
    path = tmp_path / "with_audio.mp4"
    video = make_video(tmp_path / "silent.mp4", frames=15, shape=(H, W))
    add_tone(video.path, path, seconds=0.5)
    return path


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        ends = [float((p.pts + p.duration) * p.time_base) for p in c.demux(audio=0) if p.size and p.pts is not None]
    return max(ends, default=0.0)


def test_audio_is_kept(tmp_path, capsys):
    path = video_with_audio(tmp_path)
    out = tmp_path / "out.mp4"
    code, err = run_cli(["fx", "parse", path, "-o", out, "-q"], capsys)
    assert code == 0, err
    assert audio_seconds(out) == pytest.approx(audio_seconds(path), abs=0.05) and audio_seconds(out) > 0.4


def test_a_run_stopped_early_ends_its_audio_with_the_video(tmp_path, capsys):
    path = video_with_audio(tmp_path)
    out = tmp_path / "out.mp4"
    code, err = run_cli(["fx", "parse", path, "-o", out, "-q", "--stop-after", "0.2"], capsys)
    assert code == 0, err
    assert 0.1 < audio_seconds(out) < 0.3 and len(decoded(out)) == 6


def test_a_file_in_real_time(clip, tmp_path, capsys):
    out = tmp_path / "rt.mp4"
    code, err = run_cli(["fx", "parse", clip.path, "--realtime", "-o", out, "-q", "--stop-after", "0.2"], capsys)
    assert code == 0, err
    frames = decoded(out)
    assert 1 <= len(frames) <= 7 and all(a.time < b.time for a, b in zip(frames, frames[1:]))


# --- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "corrupt", "no-folder", "overwrite", "colour", "camera", "no-comments",
                                  "protect"])
def test_bad_input_is_one_line_and_exit_2(clip, tmp_path, capsys, case):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video" * 100)
    out = tmp_path / "o.mp4"
    argv = {"missing": ["fx", "pose", tmp_path / "nope.mp4", "-o", out],
            "corrupt": ["fx", "parse", corrupt, "-o", out],
            "no-folder": ["fx", "parse", clip.path, "-o", tmp_path / "no" / "o.mp4"],
            "overwrite": ["fx", "pose", clip.path, "-o", clip.path],
            "colour": ["fx", "parse", "--effect", "recolour-torso", "--colour", "red", clip.path, "-o", out],
            "no-comments": ["fx", "parse", "--effect", "danmaku", clip.path, "-o", out],
            "protect": ["fx", "parse", "--effect", "danmaku", "-c", clip.path, "--protect", "tail", clip.path, "-o",
                        out],
            "camera": ["fx", "pose", "/dev/video97", "-o", out]}[case]
    code, err = run_cli([*argv, "-q"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "error:" in err
    if case == "protect":
        assert "--protect" in err
    assert not out.exists()


def test_ctrl_c_ends_a_realtime_run_with_a_complete_video(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    long = make_video(tmp_path / "long.mp4", frames=90, shape=(H, W))  # 3 s played in real time
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "danmask.cli", "fx", "parse", str(long.path), "--realtime",
                             "-o", str(out), "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:  # frames are being written
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert 1 <= len(decoded(out)) < 90  # stopped early, and the file is whole


def test_a_damaged_source_keeps_the_frames_and_keypoints_before_the_damage(tmp_path, capsys):
    video = make_video(tmp_path / "in.mkv", frames=60, shape=(H, W))
    data = video.path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out, kp = tmp_path / "o.mp4", tmp_path / "k.json"
    code, err = run_cli(["fx", "pose", cut, "-o", out, "--keypoints", kp, "-q"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "damaged" in err and "Traceback" not in err
    good = decoded(out)
    frames = json.loads(kp.read_text())["frames"]
    assert 5 < len(good) == len(frames) < 60


def test_a_writer_that_fails_stops_the_effect_without_hanging():
    import itertools

    from danmask.errors import OutputError
    from danmask.fx.loop import _write_in_thread

    class FullDisk:
        def write_all(self, frames, paint, progress):
            for i, _ in enumerate(frames):
                if i == 2:
                    raise OutputError("out.mp4: cannot write (No space left on device)")

    produced = []
    endless = ((produced.append(i), (i, None))[1] for i in itertools.count())
    with pytest.raises(OutputError, match="No space"):
        _write_in_thread(FullDisk(), endless)
    assert len(produced) < 20  # the effect stopped soon after the writer did


def test_fx_without_an_effect_prints_help(capsys):
    assert main(["fx"]) == 1
    assert "pose" in capsys.readouterr().out


def test_the_python_functions_mirror_the_flags():
    from danmask.fx import run_parse, run_pose

    common = {"output", "realtime", "timeout", "stop_after", "stop", "threads", "device", "progress"}
    assert common | {"keypoints", "max_people"} <= set(inspect.signature(run_pose).parameters)
    parse = {"effect", "colour", "input_size", "per_person", "comments", "protect", "font"}
    assert common | parse <= set(inspect.signature(run_parse).parameters)


# --- BodyPix and the parsing score --------------------------------------------------------------------------------

def test_bodypix_ships_and_groups_every_part():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 3e6
    assert len(PARTS) == len(PART_TO_GROUP) == 24 and set(PART_TO_GROUP) == set(range(1, len(GROUPS) + 1))
    assert len(PALETTE) == len(GROUPS) + 1


def test_input_sizes_are_16k_plus_1_with_the_frame_aspect():
    assert input_side(320) == 321 and input_side(321) == 321 and input_side(1) == 17
    assert fit((240, 320), (240, 320)) == (241, 321)
    assert fit((360, 640), (240, 320)) == (193, 321)
    assert fit((752, 500), (240, 320)) == (321, 225)  # portrait: the box turns


def test_bodypix_maps_a_frame_to_groups_at_its_size():
    from danmask.synthetic import person_frame

    rgb, _ = person_frame((H, W))
    groups = BodyPix().parts(rgb)
    assert groups.shape == (H, W) and groups.dtype == np.uint8 and groups.max() <= len(GROUPS)


def test_effects_touch_only_what_they_should():
    rgb = np.full((8, 8, 3), 100, np.uint8)
    groups = np.zeros((8, 8), np.uint8)
    groups[2:6, 2:6] = 2
    tinted = colour_map(rgb, groups)
    assert (tinted[groups == 0] == 100).all() and (tinted[groups == 2] != 100).any()
    red = recolour(np.full((32, 32, 3), 128, np.uint8), np.pad(np.ones((16, 16), bool), 8), (255, 0, 0))
    assert red[16, 16, 0] > red[16, 16, 1] + 50 and (red[0, 0] == 128).all()
    assert parse_colour("#FF3030") == (255, 48, 48)


def test_effect_bench_puts_our_figures_beside_the_seeds(tmp_path):
    from danmask.fx.bench import bench_parse, bench_pose, markdown

    clip = make_video(tmp_path / "c.mp4", frames=10, shape=(H, W))
    result = {"parse": bench_parse(frames=10), "pose": bench_pose(clip.path, frames=10)}
    table = markdown(result)
    assert result["parse"]["model_ms"] > 0 and result["pose"]["frames"] == 10 and result["pose"]["frame"] == "640x360"
    assert "25 fps at 320x240" in table and "11 ms at 320x320" in table


def test_confusion_and_iou():
    truth = np.array([[0, 1], [2, 2]])
    pred = np.array([[0, 1], [2, 0]])
    iou = ious(confusion(pred, truth))
    assert iou[0] == pytest.approx(0.5) and iou[1] == 1 and iou[2] == pytest.approx(0.5)
    assert len(CIHP_TO_CLASS) == 20 and set(CIHP_TO_CLASS) == set(range(len(CLASSES)))


def test_parsing_score_on_the_cihp_samples():
    from danmask.fx.parse_eval import evaluate

    folder = shared_data() / "cihp-samples"
    if not folder.is_dir():
        pytest.skip("cihp-samples is not in the shared data")
    result = evaluate(folder)
    assert result["images"] == 5 and result["person_iou"] > 0.6  # measured 0.696 (docs/models/bodypix.md)
    assert result["iou"]["head"] > 0.5 and 0.25 < result["miou_parts"] < 0.6
