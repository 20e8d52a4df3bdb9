"""Video input: timing from the container, rotation, odd sizes, damage reported after the good frames."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from danmask.errors import VideoError
from danmask.synthetic import make_video
from danmask.video import iter_frames, probe

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips"


@pytest.mark.parametrize("ext,codec", [("mp4", "libx264"), ("mkv", "libx264"), ("webm", "libvpx-vp9"),
                                       ("mov", "libx264"), ("avi", "mpeg4")])
def test_containers_keep_every_frame_and_its_time(tmp_path, ext, codec):
    v = make_video(tmp_path / f"clip.{ext}", frames=24, codec=codec)
    frames = list(iter_frames(v.path))
    assert len(frames) == 24
    assert [f.index for f in frames] == list(range(24))
    assert np.allclose([f.time for f in frames], v.times, atol=1e-3)
    assert all(f.time == pytest.approx(float(f.pts * f.time_base)) for f in frames)
    assert frames[0].rgb.shape == (180, 320, 3) and frames[0].rgb.dtype == np.uint8
    info = probe(v.path)
    assert (info.width, info.height, info.rotation, info.has_audio) == (320, 180, 0, False)
    assert info.frames == pytest.approx(24, abs=1)


def test_variable_frame_rate_times_come_from_pts(tmp_path):
    v = make_video(tmp_path / "vfr.mkv", frames=30, vfr=True)
    times = [f.time for f in iter_frames(v.path)]
    assert np.allclose(times, v.times, atol=1e-3)  # mkv stores milliseconds
    steps = np.diff(times)
    assert steps.max() - steps.min() > 0.02  # really variable: index x fps would be wrong


def test_odd_size(tmp_path):
    v = make_video(tmp_path / "odd.mp4", frames=5, shape=(479, 853))
    frame = next(iter_frames(v.path))
    assert frame.rgb.shape == (479, 853, 3)
    assert (probe(v.path).width, probe(v.path).height) == (853, 479)


def _write_rotated(path: Path, degrees: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(degrees)
        for i in range(5):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:8, :8] = 255  # marker in the stored frame's top-left corner
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize("degrees,corner", [(90, (1, 0)), (-90, (0, 1)), (180, (1, 1))])
def test_rotation_metadata_is_applied(tmp_path, degrees, corner):
    path = tmp_path / "rot.mp4"
    _write_rotated(path, degrees)
    info = probe(path)
    frame = next(iter_frames(path))
    h, w = frame.rgb.shape[:2]
    assert (info.width, info.height) == (w, h)
    assert (w, h) == ((32, 64) if degrees % 180 else (64, 32))
    ys, xs = np.nonzero(frame.rgb[..., 0] > 128)
    assert (int(ys.mean() > h / 2), int(xs.mean() > w / 2)) == corner  # (bottom?, right?)


@pytest.mark.parametrize("ext", ["mkv", "webm", "avi"])
def test_truncated_file_keeps_the_good_frames_then_raises(tmp_path, ext):
    codec = {"mkv": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4"}[ext]
    v = make_video(tmp_path / f"full.{ext}", frames=90, codec=codec)
    data = v.path.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(VideoError, match="truncated|damaged") as err:
        for frame in iter_frames(cut):
            got.append(frame)
    assert 10 < len(got) < 90
    assert str(cut) in str(err.value) and "\n" not in str(err.value)
    assert np.allclose([f.time for f in got], v.times[: len(got)], atol=1e-3)


def test_truncated_mp4_without_index_is_a_clear_error(tmp_path):
    v = make_video(tmp_path / "full.mp4", frames=30)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(v.path.read_bytes()[: v.path.stat().st_size // 2])  # moov atom (the index) is at the end
    with pytest.raises(VideoError, match="cut.mp4"):
        list(iter_frames(cut))


def test_audio_only_and_non_video_files(tmp_path):
    audio = tmp_path / "sound.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoError, match="no video stream"):
        probe(audio)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    for bad in (junk, empty, tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(VideoError, match=str(bad.name)):
            list(iter_frames(bad))


def test_real_clips():
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found at {CLIPS}")
    frames = list(iter_frames(CLIPS / "carphone_pristine.mp4"))
    assert len(frames) == 120 and frames[0].rgb.shape == (144, 176, 3)
    assert frames[-1].time == pytest.approx(119 * 1001 / 30000)
    info = probe(CLIPS / "vtest.avi")
    assert (info.width, info.height, info.codec, info.frames) == (768, 576, "msmpeg4", 795)
