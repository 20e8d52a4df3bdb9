"""`danmask bench --effects`: every effect's figures beside the seed's, as a table and a BENCHMARKS.md section."""
from __future__ import annotations

import json

import pytest

from danmask.cli import main
from danmask.synthetic import make_video

pytest.importorskip("ai_edge_litert")


def test_bench_effects_covers_every_effect_and_appends_a_section(tmp_path, capsys):
    clip = make_video(tmp_path / "c.mp4", frames=10, shape=(120, 160))
    out = tmp_path / "BENCH.md"
    code = main(["bench", "--effects", "--video", str(clip.path), "--face-video", str(clip.path), "--frames", "10",
                 "--json", "-o", str(out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and {"parse", "pose", "rps", "style", "face-fuse"} <= set(result)
    assert result["rps"]["frames"] == 10 and result["rps"]["frame"] == "640x360" and result["rps"]["models_mb"] > 0
    assert result["style"]["stroke_0"]["effect_ms"] > 0 and result["style"]["frame"] == "320x240"
    assert "skipped" in result["face-fuse"]  # a synthetic clip has no face
    section = out.read_text()
    assert "`danmask bench --effects`" in section and "17 ms" in section and "11 ms at 320x320" in section
    assert "face-fuse | not measured" in section


def test_bench_effects_on_a_missing_face_clip_is_one_line(tmp_path, capsys):
    code = main(["bench", "--effects", "--face-video", str(tmp_path / "nope.mp4"), "--no-append"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not found" in err
