"""`python -m danmask.fx.face_eval`: face fusion on degraded pictures and its flicker on video."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
from _shared import shared_data

from danmask.fx import face_eval


def test_each_degradation_keeps_the_picture_shape_and_changes_it():
    rng = np.random.default_rng(0)
    rgb = rng.integers(40, 216, (120, 160, 3), dtype=np.uint8)  # fine texture: every degradation must show
    for name, degrade in face_eval.DEGRADATIONS.items():
        out = degrade(rgb, rng)
        assert out.shape == rgb.shape and out.dtype == np.uint8, name
        assert np.abs(out.astype(int) - rgb).mean() > 0.5, name


def test_an_empty_folder_or_a_missing_video_is_a_one_line_error(tmp_path, capsys):
    assert face_eval.main(["--images", str(tmp_path), "--video"]) == 2  # no pictures
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((64, 64, 3), 128, np.uint8))  # a picture without a face
    assert face_eval.main(["--images", str(tmp_path), "--video", str(tmp_path / "missing.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("face_eval: ") for line in err), err
    assert "missing.mp4" in err[1]


def test_faces_survive_degradation_and_smoothing_lowers_shimmer(tmp_path):
    """Guards, from the run of 2026-11-30 (207 faces: 79-94 % found, NME 0.016-0.026; carphone shimmer x0.75
    smoothed against x0.90 raw)."""
    data = shared_data()
    pictures = sorted((data / "web-people-pseudo" / "images").glob("*.jpg"))[:12]
    for p in pictures:
        shutil.copy(p, tmp_path / p.name)
    report = face_eval.robustness(tmp_path)
    assert report["faces_found_clean"] >= 5, report
    for name, d in report["degradations"].items():
        assert d["found"] >= 0.5 and d["nme_median"] < 0.08, (name, d)
    clip = data / "clips" / "carphone_pristine.mp4"
    smooth, raw = face_eval.flicker(clip, frames=40, smooth=True), face_eval.flicker(clip, frames=40, smooth=False)
    assert smooth["face_frames"] >= 35
    assert smooth["shimmer_ratio"] < raw["shimmer_ratio"] and smooth["shimmer_ratio"] < 1.0, (smooth, raw)
