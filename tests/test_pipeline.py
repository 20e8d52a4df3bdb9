"""segment_video / iter_masks end to end on synthetic video with a truth oracle; public API; no torch."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from _oracle import PeopleOracle, TruthOracle, iou

import danmask
from danmask.errors import VideoError
from danmask.pipeline import default_mask_size, iter_masks, segment_video
from danmask.segmenter import SegmenterStats
from danmask.synthetic import make_video
from danmask.track import MaskTrack
from danmask.video import iter_frames

REPO = Path(__file__).resolve().parents[1]


def test_segment_video_keys_masks_by_container_pts(tmp_path):
    v = make_video(tmp_path / "v.mkv", frames=60, cut_at=30, still=(10, 25), vfr=True)
    stats = SegmenterStats()
    track = segment_video(v.path, TruthOracle(v), stats=stats)
    frames = list(iter_frames(v.path))
    assert track.pts == [f.pts for f in frames] and track.time_base == frames[0].time_base
    assert track.mask_size == (180, 320) and track.source_size == (180, 320)
    assert stats.frames == 60 and stats.cuts == 1 and stats.skipped > 0
    for i, mask in enumerate(track.masks):
        assert iou(mask >= 128, v.masks[i]) > 0.9, i


def test_default_mask_size_keeps_aspect_with_320_long_side():
    assert default_mask_size((720, 1280)) == (180, 320)
    assert default_mask_size((1280, 720)) == (320, 180)  # portrait
    assert default_mask_size((479, 853)) == (180, 320)
    assert default_mask_size((144, 176)) == (144, 176)  # never above the source


def test_iter_masks_takes_any_frame_iterable(tmp_path):
    v = make_video(tmp_path / "v.mp4", frames=12)
    frames = list(iter_frames(v.path))
    out = list(iter_masks(iter(frames), TruthOracle(v), mask_size=(45, 80)))
    assert [f.pts for f, _ in out] == [f.pts for f in frames]
    assert all(m.shape == (45, 80) and m.dtype == np.float32 and 0 <= m.min() <= m.max() <= 1 for _, m in out)


def test_damaged_video_keeps_the_partial_track(tmp_path):
    v = make_video(tmp_path / "v.mkv", frames=90)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(v.path.read_bytes()[: v.path.stat().st_size // 2])
    with pytest.raises(VideoError, match="cut.mkv") as err:
        segment_video(cut, TruthOracle(v))
    partial = err.value.partial_track
    assert 10 < len(partial) < 90
    assert iou(partial.masks[5] >= 128, v.masks[5]) > 0.9


def test_decoder_thread_is_joined_when_the_consumer_stops_early(tmp_path):
    v = make_video(tmp_path / "v.mp4", frames=60)
    for i, _ in enumerate(iter_masks(v.path, TruthOracle(v))):
        if i == 3:
            break
    assert not any(t.name == "danmask-decode" for t in threading.enumerate())


def test_model_errors_propagate(tmp_path):
    v = make_video(tmp_path / "v.mp4", frames=3)
    with pytest.raises(danmask.ModelError, match="unknown model"):
        segment_video(v.path, "no-such-model")


def test_public_api():
    expected = {"segment_video", "iter_masks", "Segmenter", "TemporalConfig", "MaskTrack", "VideoFrame",
                "VideoInfo", "iter_frames", "probe", "write_webmask", "read_webmask", "DanmaskError",
                "VideoError", "ModelError", "TrackError", "TrackReader", "TrackWriter"}
    assert expected <= set(danmask.__all__)
    for name in danmask.__all__:
        assert getattr(danmask, name) is not None
    with pytest.raises(AttributeError):
        danmask.no_such_name  # noqa: B018


def test_runtime_path_never_imports_torch():
    code = (
        "import sys, danmask, danmask.pipeline, danmask.webmask, danmask.track, danmask.temporal\n"
        "from danmask.cli import build_parser\n"
        "from danmask.commands import segment, export, info, demo\n"
        "build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


def test_mask_resized_to_model_input_for_small_masks(tmp_path):
    v = make_video(tmp_path / "v.mp4", frames=4)
    track = segment_video(v.path, TruthOracle(v, size=(45, 80)), mask_size=(18, 32))
    truth = cv2.resize(v.masks[2].astype(np.float32), (32, 18), interpolation=cv2.INTER_AREA) >= 0.5
    assert track.mask_size == (18, 32) and iou(track.masks[2] >= 128, truth) > 0.8


def test_whole_frame_model_gives_a_track_without_person_layers(tmp_path):
    v = make_video(tmp_path / "v.mp4", frames=8)
    track = segment_video(v.path, TruthOracle(v))
    assert not track.has_people and track.ids() == [] and track.people_at(3) == []
    track.save(tmp_path / "t.dmask")
    assert (tmp_path / "t.dmask").read_bytes()[4:6] == b"\x01\x00"  # still written as version 1


def test_person_tracking_model_stores_everyone_with_ids(tmp_path):
    v = make_video(tmp_path / "v.mkv", frames=40, cut_at=25, still=(5, 15))
    stats = SegmenterStats()
    track = segment_video(v.path, PeopleOracle(v), stats=stats)
    assert stats.skipped > 0 and stats.cuts == 1  # still frames keep the last people, the cut resets them
    assert track.has_people and track.ids() == [1, 2] and track.person_frames() == {1: (40, 40), 2: (40, 0)}
    h, w = track.mask_size
    box = np.zeros((h, w), bool)
    box[h // 4: h // 2, : w // 8] = True
    for i in range(len(track)):
        person, bystander = track.people_at(i)
        assert (person.id, person.salient, bystander.id, bystander.salient) == (1, True, 2, False)
        assert iou(person.mask > 0, v.masks[i]) > 0.9 and np.array_equal(bystander.mask > 0, box), i
        everyone = (track.masks[i] >= 128) | (person.mask > 0) | box
        assert np.array_equal(track.select(i, "all") >= 128, everyone)
    track.save(tmp_path / "t.dmask")
    back = MaskTrack.load(tmp_path / "t.dmask")
    assert back.person_frames() == track.person_frames()
    assert all(np.array_equal(a.mask, b.mask) for i in range(len(track))
               for a, b in zip(track.people_at(i), back.people_at(i)))
