"""`danmask fx style`: the video decodes, strength moves from the frame's own look to the style, a fractional
stroke blends two pyramid levels, bad input is one line and exit code 2, the weights ship with a NOTICE entry."""
from __future__ import annotations

import inspect
import json

import cv2
import numpy as np
import pytest

from danmask.cli import main
from danmask.synthetic import make_video
from danmask.video import iter_frames

pytest.importorskip("ai_edge_litert")

from danmask.fx.style import PREDICT, TRANSFER, TRANSFER_ONNX, StyleEffect  # noqa: E402


def strokes(seed: int = 0) -> np.ndarray:
    """A procedural style picture: random coloured brush strokes on white."""
    rng = np.random.default_rng(seed)
    img = np.full((256, 256, 3), 240, np.uint8)
    for _ in range(300):
        p = rng.integers(0, 256, 2)
        q = p + rng.integers(-40, 40, 2)
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q),
                 tuple(int(v) for v in rng.integers(0, 255, 3)), int(rng.integers(3, 12)))
    return img


@pytest.fixture(scope="module")
def style_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("style") / "strokes.png"
    cv2.imwrite(str(path), strokes()[..., ::-1])
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("style") / "clip.mp4", frames=4, shape=(120, 160))


def test_style_writes_a_video_that_decodes(clip, style_png, tmp_path, capsys):
    out = tmp_path / "styled.mp4"
    code = main(["fx", "style", str(style_png), str(clip.path), "--strength", "0.7", "--stroke", "1", "-o", str(out),
                 "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["frames"] == 4 and report["transfer_passes"] == 4
    frames = list(iter_frames(out))
    assert [f.time for f in frames] == pytest.approx(clip.times) and frames[0].rgb.shape == (120, 160, 3)
    source = next(iter_frames(clip.path)).rgb.astype(float)
    assert np.abs(frames[0].rgb.astype(float) - source).mean() > 10  # painted


def test_strength_moves_from_the_frames_look_to_the_style():
    frame = next(iter_frames(make_video_tmp())).rgb
    style = strokes()
    d = lambda a, b: float(np.abs(a.astype(float) - b.astype(float)).mean())  # noqa: E731
    none, half, full = (StyleEffect(style, strength=s).apply(frame.copy()) for s in (0.0, 0.5, 1.0))
    assert d(half, full) < d(none, full)  # half-way is nearer the full style than strength 0 is
    assert d(none, frame) < d(full, frame)  # strength 0 keeps more of the frame


def test_a_fractional_stroke_blends_the_two_levels():
    frame = cv2.resize(strokes(1), (160, 120))
    fx = StyleEffect(strokes(), stroke=0.25)
    a, b = fx.model.paint(frame, fx.style, 0), fx.model.paint(frame, fx.style, 1)
    blended = fx.apply(frame.copy()).astype(float)
    assert np.abs(blended - np.clip((0.75 * a + 0.25 * b) * 255 + 0.5, 0, 255).astype(np.uint8)).max() <= 1
    assert np.abs(a - b).mean() > 0.02  # the levels differ (stroke size)


def test_paint_every_paints_keyframes_and_carries_them_by_flow():
    still = cv2.resize(strokes(3), (160, 120))
    fx = StyleEffect(strokes(), paint_every=3)
    out = [fx.apply(still.copy()) for _ in range(6)]
    assert fx.stats.passes == 2 and fx.stats.carried == 4
    # a still picture: the carried frames are the keyframe's painting (zero flow)
    assert max(np.abs(o.astype(int) - out[0].astype(int)).mean() for o in out[1:3]) < 1.0
    fx = StyleEffect(strokes(), paint_every=3)
    key = fx.apply(still.copy())  # frame 0: painted
    carried = fx.apply(np.roll(still, 4, axis=1))  # frame 1: the picture moved 4 px right, carried by flow
    assert fx.stats.passes == 1 and fx.stats.carried == 1
    inner = (slice(None), slice(20, 140))
    follows = np.abs(carried[inner].astype(int) - np.roll(key, 4, axis=1)[inner].astype(int)).mean()
    stays = np.abs(carried[inner].astype(int) - key[inner].astype(int)).mean()
    assert follows < 0.5 * stays


@pytest.mark.parametrize("case", ["missing-style", "bad-style"])
def test_bad_input_is_one_line_and_exit_2(clip, style_png, tmp_path, capsys, case):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    out = tmp_path / "o.mp4"
    argv = {"missing-style": [tmp_path / "nope.png", clip.path], "bad-style": [bad, clip.path]}[case]
    code = main(["fx", "style", *map(str, argv), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("flag", [["--strength", "1.5"], ["--stroke", "3"], ["--strength", "x"]])
def test_values_out_of_range_are_usage_errors(clip, style_png, tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as done:
        main(["fx", "style", str(style_png), str(clip.path), *flag, "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "error: argument" in err and "Traceback" not in err


def test_the_style_networks_ship_with_a_notice():
    from danmask.runtime.registry import WEIGHTS_DIR

    notice = (WEIGHTS_DIR / "NOTICE").read_text()
    for path in (PREDICT, TRANSFER, TRANSFER_ONNX):
        assert path.is_file() and path.stat().st_size < 3e6 and path.name in notice


def test_the_python_function_mirrors_the_flags():
    from danmask.fx import run_style

    assert {"style", "output", "strength", "stroke", "paint_every", "realtime", "timeout", "stop_after", "stop", "threads",
            "device", "progress"} <= set(inspect.signature(run_style).parameters)


def make_video_tmp():
    import tempfile
    from pathlib import Path

    return make_video(Path(tempfile.mkdtemp()) / "c.mp4", frames=1, shape=(120, 160)).path


def test_the_float_rebuild_is_the_shipped_onnx_and_paints_as_the_int8_graph(tmp_path):
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from danmask.fx.style_onnx import convert
    from danmask.fx.tflite import TfLite

    rebuilt = convert(out=tmp_path / "t.onnx")
    rng = np.random.default_rng(0)
    x = cv2.GaussianBlur(rng.random((384, 384, 3)).astype(np.float32), (0, 0), 6)[None]
    v = rng.normal(0, 1, (1, 1, 1, 100)).astype(np.float32)
    outs = []
    for path in (rebuilt, TRANSFER_ONNX):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        outs.append(sess.run(None, dict(zip(names, (x, v))))[0])
    assert np.array_equal(outs[0], outs[1])  # the shipped file is what the converter writes
    int8 = TfLite(TRANSFER).run(x, v)[0]
    assert np.abs(int8 - outs[0]).mean() < 0.05
    small = sess.run(None, dict(zip(names, (np.ascontiguousarray(x[:, :120, :160]), v))))[0]
    assert small.shape == (1, 120, 160, 3)  # any size with sides 4k


def test_style_on_a_shared_clip_writes_a_playable_video(style_png, tmp_path, capsys):
    from _shared import shared_data

    source = shared_data() / "clips" / "bigbuckbunny.mp4"
    if not source.is_file():
        pytest.skip("bigbuckbunny.mp4 is not in the shared data")
    out = tmp_path / "styled.mp4"
    code = main(["fx", "style", str(style_png), str(source), "--stroke", "1", "-o", str(out), "--stop-after", "0.2",
                 "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    frames = list(iter_frames(out))
    assert code == 0 and len(frames) == report["frames"] >= 4
