"""`danmask fx face-fuse`: the warp, the skin-tone table and the smoothing on known inputs; the video decodes;
a template without a face is one line and exit code 2; on the shared carphone clip every frame gets the face and
the smoothing takes the jitter out of the landmarks."""
from __future__ import annotations

import inspect
import json

import cv2
import numpy as np
import pytest

from danmask.cli import main
from danmask.synthetic import make_video
from danmask.video import iter_frames

from _shared import shared_data

pytest.importorskip("ai_edge_litert")

from danmask.fx.face_fuse import apply_lut, delaunay, match_lut, piecewise_affine  # noqa: E402
from danmask.fx.faces import FaceTracker, OneEuro  # noqa: E402


def grid_points() -> np.ndarray:
    ys, xs = np.mgrid[10:90:20, 10:130:20]
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)


def test_piecewise_affine_moves_each_triangle_with_its_points():
    rng = np.random.default_rng(0)
    src = (rng.random((100, 140, 3)) * 255).astype(np.uint8)
    pts = grid_points()
    tris = delaunay(pts)
    assert len(tris) > 20 and tris.max() < len(pts)
    same, covered = piecewise_affine(src, pts, pts, tris, (100, 140))
    assert covered[12:68, 12:108].all()  # the hull of the points
    assert np.abs(same[covered].astype(int) - src[covered].astype(int)).max() <= 1
    moved, covered = piecewise_affine(src, pts, pts + [5, 3], tris, (100, 140))
    inner = covered.copy()
    inner[:20], inner[:, :20] = False, False
    ys, xs = np.nonzero(inner)
    assert np.abs(moved[ys, xs].astype(int) - src[ys - 3, xs - 5].astype(int)).max() <= 1


def test_the_lookup_table_matches_the_skin_tone():
    rng = np.random.default_rng(1)
    pale = rng.normal([200, 170, 160], 10, (500, 3)).clip(0, 255).astype(np.uint8)
    dark = rng.normal([120, 80, 60], 15, (600, 3)).clip(0, 255).astype(np.uint8)
    out = apply_lut(pale[None], match_lut(pale, dark))[0]
    assert np.abs(out.mean(0) - dark.mean(0)).max() < 3 and np.abs(out.std(0) - dark.std(0)).max() < 3


def test_one_euro_keeps_a_still_point_still_and_follows_a_move():
    f = OneEuro()
    rng = np.random.default_rng(2)
    still = [f(np.array([[50.0, 50.0, 0]]) + rng.normal(0, 1, (1, 3)), i / 30) for i in range(60)]
    assert np.std([s[0, 0] for s in still[10:]]) < 0.5  # raw noise: 1 px
    g = OneEuro()
    for i in range(30):
        out = g(np.array([[50.0 + 10 * i, 50.0, 0]]), i / 30)  # 300 px/s
    assert abs(out[0, 0] - 340) < 15  # not left behind


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A face picture: the first frame of the shared carphone clip, twice its size."""
    clip = shared_data() / "clips" / "carphone_pristine.mp4"
    if not clip.is_file():
        pytest.skip("carphone_pristine.mp4 is not in the shared data")
    rgb = cv2.resize(next(iter_frames(clip)).rgb, (352, 288), interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("fuse") / "template.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb[:, ::-1], cv2.COLOR_RGB2BGR))  # mirrored: a different-looking face
    return path


def test_face_fuse_writes_a_video_that_decodes(template, tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mp4", frames=6, shape=(120, 160))
    out = tmp_path / "fused.mp4"
    code = main(["fx", "face-fuse", str(template), str(clip.path), "-o", str(out), "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["frames"] == 6
    frames = list(iter_frames(out))
    assert [f.time for f in frames] == pytest.approx(clip.times) and frames[0].rgb.shape == (120, 160, 3)


def test_on_a_real_clip_every_frame_gets_the_face(template, tmp_path, capsys):
    source = shared_data() / "clips" / "carphone_pristine.mp4"
    out = tmp_path / "fused.mp4"
    for blend in ("seamless", "feather"):
        code = main(["fx", "face-fuse", str(template), str(source), "-o", str(out), "--blend", blend,
                     "--stop-after", "0.5", "--json", "-q"])
        report = json.loads(capsys.readouterr().out)
        assert code == 0 and report["face_frames"] == report["frames"] >= 10
        a, b = next(iter_frames(source)).rgb, next(iter_frames(out)).rgb
        face = (slice(40, 100), slice(60, 110))  # carphone's face, first frame
        assert np.abs(a[face].astype(int) - b[face].astype(int)).mean() > 3
        assert np.abs(a[:30].astype(int) - b[:30].astype(int)).mean() < 3  # the rest is the source


def test_smoothing_takes_the_jitter_out_of_the_landmarks(template):
    source = shared_data() / "clips" / "carphone_pristine.mp4"
    jitter = {}
    for smooth in (False, True):
        tracker, tracks = FaceTracker(max_faces=1, smooth=smooth), []
        for f in iter_frames(source):
            if f.index >= 45:
                break
            tracks.append(tracker.step(f.rgb, f.time)[0].landmarks[:, :2])
        t = np.array(tracks)
        jitter[smooth] = np.linalg.norm(t[2:] - 2 * t[1:-1] + t[:-2], axis=2).mean()
    assert jitter[True] < 0.7 * jitter[False]


@pytest.mark.parametrize("case", ["missing", "no-face"])
def test_a_bad_template_is_one_line_and_exit_2(tmp_path, capsys, case):
    clip = make_video(tmp_path / "clip.mp4", frames=2, shape=(120, 160))
    path = tmp_path / "t.png"
    if case == "no-face":
        cv2.imwrite(str(path), np.full((200, 200, 3), 128, np.uint8))
    out = tmp_path / "o.mp4"
    code = main(["fx", "face-fuse", str(path), str(clip.path), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("no face" in err) == (case == "no-face") and not out.exists()


def test_the_python_function_mirrors_the_flags():
    from danmask.fx import run_face_fuse

    assert {"template", "output", "blend", "max_faces", "smooth", "realtime", "timeout", "stop_after", "stop",
            "threads", "device", "progress"} <= set(inspect.signature(run_face_fuse).parameters)


def test_faces_and_style_run_without_torch_or_the_mediapipe_package():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from danmask.fx.faces import FaceTracker; from danmask.fx.style import Stylizer;"
            "FaceTracker().step(np.zeros((90, 160, 3), np.uint8), 0.0); s = Stylizer();"
            "s.paint(np.zeros((60, 80, 3), np.uint8), s.vector(np.zeros((64, 64, 3), np.uint8)), 1);"
            "import danmask.fx.face_fuse; print(sorted(m for m in ('torch', 'mediapipe') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
