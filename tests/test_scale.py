"""The pieces of `danmask bench --scale` that could be wrong without anyone noticing: the looped long video is one
continuous video, and the per-process figures come from that process alone."""
import pytest

from danmask.errors import DanmaskError
from danmask.eval.scale import loop_video, segment_process
from danmask.synthetic import make_video
from danmask.video import iter_frames, probe


def test_loop_video_plays_the_clip_n_times_with_increasing_pts(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=20, shape=(36, 64), fps=25)
    looped = loop_video(clip.path, tmp_path / "looped.mp4", 3)
    pts = [f.pts for f in iter_frames(looped)]
    assert len(pts) == 60 and pts == sorted(set(pts))
    assert probe(looped).duration_s == pytest.approx(3 * probe(clip.path).duration_s)


def test_segment_process_reports_its_own_peak_memory_and_cpu(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=10, shape=(36, 64))
    run = segment_process(clip.path, tmp_path / "clip.dmask", "fast")
    assert run["frames"] == 10 and (tmp_path / "clip.dmask").is_file()
    assert 30 < run["peak_rss_mib"] < 4096 and 0 < run["cpu_s"] and run["wall_s"] > 0


def test_a_failing_step_is_one_line(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DanmaskError, match="cannot open as a video") as err:
        segment_process(tmp_path / "bad.mp4", tmp_path / "bad.dmask", "fast")
    assert "\n" not in str(err.value)
