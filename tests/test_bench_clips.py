"""`danmask bench --clips`: time per frame of each model (and each people cap) on given videos and image folders."""
import json

import cv2
import pytest

from danmask.cli import main
from danmask.errors import DanmaskError
from danmask.eval.clips import clip_frames, format_clips, markdown_clips, run_clips


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A synthetic video and a folder of its first frames as PNGs (a DAVIS-style sequence)."""
    from danmask.synthetic import make_video
    from danmask.video import iter_frames

    root = tmp_path_factory.mktemp("clips")
    video = make_video(root / "walk.mp4", frames=8, shape=(180, 320)).path
    folder = root / "walk-frames"
    folder.mkdir()
    for i, frame in zip(range(5), iter_frames(video)):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    return video, folder


def test_every_model_and_cap_is_timed_on_every_clip(clips):
    r = run_clips(list(clips), ["person-track", "mpft-cpu"], frames=6, caps=[2, 1])
    assert r["columns"] == ["person-track (max 2)", "person-track (max 1)", "mpft-cpu"]
    assert [(c["clip"], c["frames"], c["size"]) for c in r["clips"]] == [("walk.mp4", 6, [320, 180]),
                                                                        ("walk-frames", 5, [320, 180])]
    for c in r["clips"]:
        for label, m in c["models"].items():
            assert m["ms_per_frame"] > 0
            assert (m["people"] is None) == (label == "mpft-cpu")  # only a people tracker counts people
    text, section = format_clips(r), markdown_clips(r)
    assert "walk-frames" in text and "person-track (max 1)" in text
    assert section.count("\n| walk") == 2 and "`danmask bench --clips`" in section


def test_clip_frames_reads_a_folder_in_name_order_at_30_fps(clips):
    frames = clip_frames(clips[1], 3)
    assert [t for _, t in frames] == pytest.approx([0, 1 / 30, 2 / 30]) and frames[0][0].shape == (180, 320, 3)


def test_bad_clips_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DanmaskError, match="no .jpg or .png"):
        clip_frames(empty, 5)
    assert main(["bench", "--clips", str(tmp_path / "missing.mp4"), "--no-append"]) == 2
    assert main(["bench", "--caps", "2", "--no-append"]) == 2
    err = capsys.readouterr().err
    assert "missing.mp4: no such video or image folder" in err and "--caps goes with --clips" in err
    assert "Traceback" not in err


def test_cli_prints_json_and_appends_a_section(clips, tmp_path, capsys):
    out = tmp_path / "BENCH.md"
    assert main(["bench", "--clips", str(clips[0]), "-m", "mpft-cpu", "--frames", "4", "--json", "-o", str(out)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["columns"] == ["mpft-cpu"] and r["clips"][0]["frames"] == 4
    assert "time per frame on given clips" in out.read_text()
