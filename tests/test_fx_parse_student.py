"""The parse student (`danmask fx parse --model student`): the shipped int8 graph, its runner, the CLI switch and a
regression guard on the CIHP samples."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from danmask.cli import main
from danmask.fx.parse_student import WEIGHTS, ParseStudent, fit16
from danmask.synthetic import make_video, person_frame
from danmask.video import iter_frames

from _shared import shared_data

MIOU_MEASURED = 0.268  # miou_parts on the 5 CIHP samples, measured 2026-11-30 (docs/models/parse-student.md)
MARGIN = 0.03


def test_the_shipped_student_is_small_int8_and_loads_without_torch():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 1_000_000
    code = ("import sys, numpy as np\n"
            "from danmask.fx.parse_student import ParseStudent\n"
            "g = ParseStudent().parts(np.zeros((240, 320, 3), np.uint8))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(g.shape, g.dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(240, 320) uint8"


def test_the_graph_has_int8_weights_and_named_io():
    import onnx

    model = onnx.load(str(WEIGHTS))
    assert [i.name for i in model.graph.input] == ["src"] and [o.name for o in model.graph.output] == ["logits"]
    assert any(n.op_type in ("QuantizeLinear", "QLinearConv") for n in model.graph.node)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["danmask"])["name"] == "parse-student"


@pytest.mark.parametrize("shape", [(240, 320), (144, 176), (720, 1280), (480, 270)])
def test_group_map_has_the_frame_size_and_the_seven_classes(shape):
    rgb, _ = person_frame(shape)
    net = ParseStudent()
    groups = net.parts(rgb)
    assert groups.shape == shape and groups.dtype == np.uint8 and groups.max() <= 6
    logits = net.logits(rgb)
    h, w = fit16(shape, (240, 320))
    assert logits.shape == (h // 2, w // 2, 7) and h % 16 == 0 and w % 16 == 0
    assert net.parts(rgb, (60, 80)).shape == (60, 80)


def test_fit16_keeps_the_aspect_and_turns_for_portrait():
    assert fit16((240, 320), (240, 320)) == (240, 320)
    assert fit16((360, 640), (240, 320)) == (176, 320)
    assert fit16((640, 360), (240, 320)) == (320, 176)


def test_cli_model_student_writes_a_video_that_decodes(tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mp4", frames=8, shape=(120, 160))
    out = tmp_path / "student.mp4"
    code = main(["fx", "parse", "--model", "student", str(clip.path), "-o", str(out), "-q", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [f.time for f in iter_frames(out)] == pytest.approx(clip.times)
    assert '"model": "student"' in captured.out


def test_an_unknown_model_is_a_one_line_error(tmp_path, capsys):
    from danmask.errors import DanmaskError
    from danmask.fx.parse import create_parser

    with pytest.raises(DanmaskError, match="valid: bodypix, student"):
        create_parser("resnet")
    clip = make_video(tmp_path / "clip.mp4", frames=2, shape=(48, 64))
    assert main(["fx", "parse", "-m", str(tmp_path / "none.onnx"), str(clip.path), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.onnx" in err[0]


def test_a_student_onnx_file_is_a_model_too():
    from danmask.fx.parse import create_parser

    assert isinstance(create_parser(str(WEIGHTS)), ParseStudent)


def test_student_miou_on_the_cihp_samples_stays_near_the_measured():
    from danmask.fx.parse_eval import evaluate

    folder = shared_data() / "cihp-samples"
    if not (folder / "images").is_dir():
        pytest.skip("cihp-samples is not in the shared data")
    result = evaluate(folder, model="student")
    assert result["images"] == 5
    assert result["miou_parts"] >= MIOU_MEASURED - MARGIN, result
