"""`danmask bench` on a short clip: every figure present, ratios consistent, BENCHMARKS.md appended."""
import json

import numpy as np
import pytest

from danmask.cli import main
from danmask.eval.bench import _letterbox, machine_description, prepare_clip


def test_machine_description():
    m = machine_description()
    assert m["cpu"] and m["cores"] >= 1 and m["python"].count(".") == 2 and m["onnxruntime"]


def test_letterbox_keeps_aspect():
    src = np.full((272, 640, 3), 200, np.uint8)
    out = _letterbox(src, (720, 1280))  # (h, w)
    assert out.shape == (720, 1280, 3)
    rows = np.flatnonzero(out[:, 640, 0] > 100)
    assert rows.min() == 88 and rows.max() == 631  # 544 rows of picture, black bars of 88 above and below
    assert out[:88].max() == 0 and out[632:].max() == 0


def test_prepare_clip_from_real_source_keeps_timing(tmp_path):
    from danmask.synthetic import make_video
    from danmask.video import probe

    src = make_video(tmp_path / "src.mp4", frames=12, shape=(48, 64), fps=24)
    clip = prepare_clip(tmp_path / "720.mp4", frames=8, source=src.path)
    info = probe(clip.path)
    assert (info.width, info.height) == (1280, 720)
    assert clip.frames == 8 and clip.duration_s == pytest.approx(8 / 24)
    assert "src.mp4 (64x48)" in clip.source


def test_bench_cli_json_and_benchmarks_file(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert", reason="the reference model needs the mediapipe extra")
    out = tmp_path / "BENCHMARKS.md"
    code = main(["bench", "--synthetic", "--frames", "8", "--runs", "3", "--warmup", "1", "--repeat", "1",
                 "--model", "mediapipe-selfie-landscape", "--json", "--output", str(out), "--no-player"])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    ref = r["models"]["mediapipe-selfie-landscape"]
    assert ref["ratio_vs_reference"] == 1.0 and ref["median_ms"] > 0 and ref["median_ms_2t"] > 0
    p = r["pipeline"]
    assert p["frames"] == 8 and p["ratio_vs_decode"] == pytest.approx(p["seconds"] / p["decode_seconds"])
    assert p["fps"] == pytest.approx(8 / p["seconds"]) and p["fps_vs_decode"] == pytest.approx(1 / p["ratio_vs_decode"])
    assert p["fps_vs_decode"] == pytest.approx(p["cores_busy_vs_decode"] / p["cpu_vs_decode"])  # where the time goes
    assert r["clip"]["source"].startswith("synthetic")
    assert r["scene_cut"]["ms_per_frame"] > 0 and r["scene_cut"]["pan_check_ms"] > 0
    assert r["sizes"]["dmask_bytes_per_min"] > 0 and r["sizes"]["webmask_bytes_per_min"] > 0
    text = out.read_text()
    assert text.startswith("# Benchmarks") and r["machine"]["cpu"] in text and "| .dmask per minute |" in text
    assert "| scene-cut pan check, ms on a low-SSIM frame |" in text
    main(["bench", "--synthetic", "--frames", "8", "--runs", "2", "--warmup", "1", "--repeat", "1",
          "--model", "mediapipe-selfie-landscape", "--output", str(out), "--no-player"])
    assert out.read_text().count("\n## ") == 2  # appended, not overwritten
    table = capsys.readouterr().out
    assert "pipeline" in table and "web player: not measured" in table  # the human-readable table


def test_bench_missing_video(tmp_path, capsys):
    assert main(["bench", "--video", str(tmp_path / "none.mp4"), "--no-append"]) == 2
    assert "video not found" in capsys.readouterr().err
    assert main(["bench", "--clip", str(tmp_path / "none.mp4"), "--no-append"]) == 2  # the old spelling still works
    assert "--clip is deprecated, use --video" in capsys.readouterr().err
