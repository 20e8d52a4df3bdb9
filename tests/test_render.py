"""Burn-in: person pixels untouched, comments outside, timestamps kept, audio copied, typed errors."""
from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from _shared import add_tone
from danmask.cli import main
from danmask.danmaku.comments import Comment
from danmask.danmaku.font import find_font
from danmask.danmaku.layout import LayoutConfig, layout
from danmask.danmaku.render import render_video
from danmask.danmaku.sprites import DanmakuCompositor
from danmask.errors import FontError, OutputError, TrackError, VideoError
from danmask.runtime import ModelSpec
from danmask.synthetic import make_video
from danmask.track import MaskTrack

try:
    FONT = str(find_font())
except FontError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"no CJK font installed ({exc})", allow_module_level=True)

W, H = 320, 180


def many_comments(seconds: float = 3.0) -> list[Comment]:
    """Enough big comments that most of the picture is covered at some time."""
    return [Comment(i * 0.05, ("scroll", "reverse", "top", "bottom")[i % 4], "弹幕弹幕弹幕 █████ 测试",
                    size=36, color=0xFFFF00) for i in range(int(seconds / 0.05))]


def track_of(video) -> MaskTrack:
    return MaskTrack(mask_size=(H // 2, W // 2), source_size=(H, W), time_base=video.time_base,
                     masks=[np.where(m[::2, ::2], 255, 0).astype(np.uint8) for m in video.masks], pts=video.pts)


def interior(mask: np.ndarray, px: int = 3) -> np.ndarray:
    """Person pixels at least `px` from the edge: edge pixels share x264's 4:2:0 chroma with their neighbours."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)) > 0


def exterior(mask: np.ndarray, px: int = 3) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)) == 0


def decode(path):
    """(time in seconds, RGB) of every frame."""
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def test_compositor_leaves_person_pixels_exactly():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H // 2, W // 2), np.uint8)
    mask[10:70, 40:100] = 255
    mask[70:75, 40:100] = 100  # soft edge: partly covered
    schedule = layout([Comment(0, "scroll", "████████████████████", size=80) for _ in range(1)] +
                      [Comment(0, "top", "██████████████", size=80)], (H, W),
                      LayoutConfig(speed_px_s=50))
    out = DanmakuCompositor(schedule.font_file).composite(frame.copy(), mask, schedule.placements, 4.0)
    person = np.repeat(np.repeat(mask >= 128, 2, 0), 2, 1)
    assert np.array_equal(out[person], frame[person])  # bit for bit
    changed = np.any(out != frame, axis=2)
    assert changed[~person].mean() > 0.05  # the comments really are drawn around the person
    unmasked = DanmakuCompositor(schedule.font_file).composite(frame.copy(), None, schedule.placements, 4.0)
    assert np.any(unmasked[person] != frame[person])  # without a mask they cover the person too


def test_compositor_opacity():
    frame = np.zeros((H, W, 3), np.uint8)
    schedule = layout([Comment(0, "top", "██████", size=60, color=0xFFFFFF)], (H, W))
    full = DanmakuCompositor(schedule.font_file, 1.0).composite(frame.copy(), None, schedule.placements, 0.5)
    half = DanmakuCompositor(schedule.font_file, 0.5).composite(frame.copy(), None, schedule.placements, 0.5)
    assert full.max() == 255 and 120 <= half.max() <= 135


def mean_diffs(src, dst, masks, margin: int = 3) -> tuple[float, float]:
    """Mean max-channel difference inside the people's interiors and well outside them."""
    inside, outside = [], []
    for (_, a), (_, b), m in zip(src, dst, masks):
        diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
        inside.append(diff[interior(m, margin)].mean())
        outside.append(diff[exterior(m, margin)].mean())
    return float(np.mean(inside)), float(np.mean(outside))


def test_render_keeps_person_pixels_and_vfr_timestamps(tmp_path):
    video = make_video(tmp_path / "in.mp4", frames=45, shape=(H, W), vfr=True)
    out, plain = tmp_path / "out.mp4", tmp_path / "plain.mp4"
    result = render_video(video.path, many_comments(), out, track=track_of(video),
                          config=LayoutConfig(duration_s=2.0))
    render_video(video.path, [], plain, track=track_of(video))  # the same encode without comments
    assert result.frames == 45 and result.audio == "none" and result.mask_source == "track"
    src, dst = decode(video.path), decode(out)
    assert len(dst) == 45
    assert [t for t, _ in src] == pytest.approx(video.times, abs=1e-4)
    assert [t for t, _ in dst] == pytest.approx(video.times, abs=1e-4)  # VFR timing survives
    inside, outside = mean_diffs(src, dst, video.masks)
    encode_only, _ = mean_diffs(src, decode(plain), video.masks)
    # inside the person: what re-encoding alone changes; outside: the comments
    assert inside == pytest.approx(encode_only, abs=0.3)
    assert outside > 5 * inside


class ColourKeyModel:
    """A fake segmenter that knows the synthetic person's colour: an oracle for on-the-fly masks."""

    spec = ModelSpec(name="colour-key", input_size=(H // 2, W // 2))

    def predict(self, rgb, prior=None):
        small = cv2.resize(rgb, (W // 2, H // 2), interpolation=cv2.INTER_AREA).astype(int)
        return (np.abs(small - [220, 60, 40]).sum(axis=2) < 60).astype(np.float32)


def test_render_on_the_fly_masks(tmp_path):
    video = make_video(tmp_path / "in.mp4", frames=20, shape=(H, W))
    result = render_video(video.path, many_comments(1.0), tmp_path / "out.mp4", model=ColourKeyModel())
    render_video(video.path, [], tmp_path / "plain.mp4", model=ColourKeyModel())
    assert result.frames == 20 and result.mask_source == "colour-key"
    src, dst, plain = decode(video.path), decode(tmp_path / "out.mp4"), decode(tmp_path / "plain.mp4")
    # the segmenter's temporal stage smooths and steadies edges: judge the person's interior
    inside, outside = mean_diffs(src, dst, video.masks, margin=6)
    encode_only, _ = mean_diffs(src, plain, video.masks, margin=6)
    assert inside == pytest.approx(encode_only, abs=0.5) and outside > 5 * inside


def video_with_audio(tmp_path) -> tuple:
    """A synthetic clip remuxed with a 440 Hz AAC tone."""
    video = make_video(tmp_path / "silent.mp4", frames=30, shape=(H, W))
    path = tmp_path / "with_audio.mp4"
    add_tone(video.path, path, seconds=1.0)
    return video, path


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def test_audio_is_copied_bit_for_bit(tmp_path):
    video, path = video_with_audio(tmp_path)
    out = tmp_path / "out.mp4"
    result = render_video(path, many_comments(1.0), out, track=track_of(video))
    assert result.audio == "copied"
    assert audio_packets(out) == audio_packets(path) and len(audio_packets(out)) > 40


def test_track_of_another_video_is_refused(tmp_path):
    video = make_video(tmp_path / "in.mp4", frames=5, shape=(H, W))
    wrong = MaskTrack(mask_size=(10, 10), source_size=(100, 100), time_base=Fraction(1, 30),
                      masks=[np.zeros((10, 10), np.uint8)], pts=[0])
    with pytest.raises(TrackError, match="made for a 100x100 video"):
        render_video(video.path, many_comments(1.0), tmp_path / "o.mp4", track=wrong)


def test_output_over_input_is_refused(tmp_path):
    video = make_video(tmp_path / "in.mp4", frames=5, shape=(H, W))
    with pytest.raises(OutputError, match="overwrite the input"):
        render_video(video.path, [], video.path, track=track_of(video))


def test_cli_render_and_errors(tmp_path, capsys):
    video = make_video(tmp_path / "in.mp4", frames=15, shape=(H, W))
    track_of(video).save(tmp_path / "in.dmask")
    comments = tmp_path / "c.xml"
    comments.write_text('<?xml version="1.0"?><i><d p="0.1,1,25,16777215">你好 world</d>'
                        '<d p="0.2,7,25,0">skip me</d></i>', encoding="utf-8")
    out = tmp_path / "out.mp4"
    code = main(["render", str(video.path), "-c", str(comments), "-t", str(tmp_path / "in.dmask"), "-o", str(out),
                 "-q"])
    assert code == 0 and len(decode(out)) == 15
    assert "15 frames" in capsys.readouterr().out
    (tmp_path / "bad.xml").write_text("<i><d p='1,1,25,0'>x</i>")
    assert main(["render", str(video.path), "-c", str(tmp_path / "bad.xml"), "-o", str(out), "-q"]) == 2
    assert "malformed XML" in capsys.readouterr().err
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    assert main(["render", str(tmp_path / "broken.mp4"), "-c", str(comments), "-o", str(out), "-q"]) == 2
    assert "danmask render: error:" in capsys.readouterr().err


def test_damaged_input_keeps_the_good_frames(tmp_path):
    video = make_video(tmp_path / "in.mkv", frames=90, shape=(H, W))
    data = video.path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=r"frames before it were written to .*out\.mp4"):
        render_video(cut, many_comments(1.0), out, track=track_of(video))
    good = decode(out)
    assert 10 < len(good) < 90
    assert [t for t, _ in good] == pytest.approx(video.times[:len(good)], abs=1e-3)
