"""`danmask eval` end to end on a tiny generated DAVIS dataset with tiny ONNX models built here.

The model marks a pixel as person when 4 x (red - green) >= 0.5, so on flat-coloured PNG frames its masks are
known exactly and every score can be worked out by hand.
"""
import json
import math

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from danmask.cli import main  # noqa: E402
from danmask.eval import metrics  # noqa: E402
from danmask.eval.models import load_eval_model  # noqa: E402

SIZE = 32
PERSON = (220, 60, 40)  # 4 x (red - green) = 2.5 -> person (1 after clipping)
GREY = (128, 128, 128)  # 4 x (red - green) = 0 -> background


def red_minus_green(nhwc: bool):
    """Nodes computing 4 * (R - G) from `src` (a confident 0 or 1 after clipping), as (nodes, initializers, output)."""
    axis = 3 if nhwc else 1
    inits = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
             helper.make_tensor("split", TensorProto.INT64, [3], [1, 1, 1]),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [4.0])]
    nodes = [helper.make_node("Split", ["src", "split"], ["r", "g", "b"], axis=axis),
             helper.make_node("Sub", ["r", "g"], ["diff"]), helper.make_node("Mul", ["diff", "gain"], ["rg"])]
    return nodes, inits, "rg"


def save(model, path):
    model.opset_import[0].version = 17
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def plain_model(path):
    """Runtime contract: src (1,3,H,W) -> mask (1,1,H,W), spec in the `danmask` metadata entry."""
    nodes, inits, rg = red_minus_green(nhwc=False)
    nodes.append(helper.make_node("Clip", [rg, "zero", "one"], ["mask"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIZE, SIZE])], inits)
    model = helper.make_model(graph)
    helper.set_model_props(model, {"danmask": json.dumps({"name": "tiny-red", "input_size": [SIZE, SIZE]})})
    return save(model, path)


def recurrent_model(path):
    """RVM-like: src (1,H,W,3) + r1i (scalar 0 first) -> pha = Clip(4(R - G) + 0.01 r1i), r1o = r1i + 1."""
    nodes, inits, rg = red_minus_green(nhwc=True)
    inits.append(helper.make_tensor("step", TensorProto.FLOAT, [], [0.01]))
    nodes += [helper.make_node("Mul", ["r1i", "step"], ["bias"]), helper.make_node("Add", [rg, "bias"], ["raw"]),
              helper.make_node("Clip", ["raw", "zero", "one"], ["pha"]),
              helper.make_node("Add", ["r1i", "one"], ["r1o"])]
    graph = helper.make_graph(
        nodes, "tiny_rec",
        [helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, None, None, 3]),
         helper.make_tensor_value_info("r1i", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("pha", TensorProto.FLOAT, [1, None, None, 1]),
         helper.make_tensor_value_info("r1o", TensorProto.FLOAT, [])], inits)
    return save(helper.make_model(graph), path)


def box(top, left, h, w):
    m = np.zeros((SIZE, SIZE), bool)
    m[top:top + h, left:left + w] = True
    return m


def write_frame(root, seq, i, person_box, gt):
    img = np.full((SIZE, SIZE, 3), GREY, np.uint8)
    img[person_box] = PERSON
    (root / "JPEGImages" / "480p" / seq).mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "480p" / seq).mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(root / "JPEGImages" / "480p" / seq / f"{i:05d}.png")  # PNG: no JPEG ringing
    Image.fromarray(gt.astype(np.uint8) * 255).save(root / "Annotations" / "480p" / seq / f"{i:05d}.png")


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "davis"
    person = box(8, 8, 16, 8)
    for i in range(3):
        write_frame(root, "still", i, person, person)  # perfect
        write_frame(root, "slide", i, person, box(8, 8 + i, 16, 8))  # truth moves right, prediction stays
        write_frame(root, "swan", i, box(0, 0, 4, 8), box(0, 0, 10, 10))  # no person: 32 px false positive
    (root / "sequences.csv").write_text("sequence,category\nstill,person_only\nslide,person_only\nswan,no_person\n")
    return root


def run_eval(capsys, *args):
    code = main(["eval", *map(str, args)])
    out = capsys.readouterr().out
    return code, out


def test_eval_json_numbers_by_hand(dataset, tmp_path, capsys):
    model = plain_model(tmp_path / "tiny.onnx")
    code, out = run_eval(capsys, dataset, "--model", model, "--json", "--raw", "--latency-runs", 5, "--warmup", 1, "-q")
    assert code == 0
    (line,) = out.strip().splitlines()
    r = json.loads(line)
    for key in ("model", "mean_iou", "per_sequence", "boundary_f", "temporal_error", "flicker", "fp_frac",
                "median_ms", "frames", "median_ms_2t", "fps_pipeline"):
        assert key in r
    slide_iou = (1 + 112 / 144 + 96 / 160) / 3  # shifts of 0, 1, 2 px of a 16x8 box
    assert r["model"] == str(model)
    assert r["per_sequence"] == pytest.approx({"still": 1.0, "slide": slide_iou})
    assert r["mean_iou"] == pytest.approx((1 + slide_iou) / 2)
    pred = box(8, 8, 16, 8)
    slide_f = np.mean([metrics.boundary_f(pred, box(8, 8 + i, 16, 8)) for i in range(3)])
    assert r["boundary_f"] == pytest.approx((1 + slide_f) / 2)
    # truth moves 1 px per frame, prediction does not: 32 of 1024 pixels change differently
    assert r["temporal_error"] == pytest.approx((0 + math.sqrt(32 / 1024)) / 2)
    assert r["flicker"] == 0.0
    assert r["fp_frac"] == pytest.approx(32 / 1024)  # the swan's annotation is ignored: no_person in the csv
    assert r["frames"] == 9 and r["median_ms"] > 0 and r["median_ms_2t"] > 0 and r["fps_pipeline"] > 0


def test_eval_two_models_with_recurrent_peer_and_report(dataset, tmp_path, capsys):
    plain, rec = plain_model(tmp_path / "tiny.onnx"), recurrent_model(tmp_path / "rec.onnx")
    report = tmp_path / "report"
    code, out = run_eval(capsys, dataset, "--model", plain, "--model", rec, "--recurrent-size", "32x32", "--json",
                         "--latency-runs", 3, "--warmup", 0, "-o", report, "-q")
    assert code == 0
    a, b = (json.loads(line) for line in out.strip().splitlines())
    assert b["model"] == str(rec) and b["input_size"] == [32, 32]
    # the full temporal stage softens edges but the box is still found; both models see the same frames
    assert a["per_sequence"]["still"] > 0.9 and b["per_sequence"]["still"] > 0.9
    assert a["frames"] == b["frames"] == 9
    html = (report / "index.html").read_text()
    assert "rec.onnx" in html and "iou_per_sequence.png" in html
    for name in ("iou_per_sequence.png", "iou_vs_latency.png", "temporal.png", "fp_per_sequence.png"):
        assert (report / name).stat().st_size > 1000
    assert list(report.glob("worst_person_*.png")) and list(report.glob("worst_no_person_*.png"))


def test_eval_table_and_errors(dataset, tmp_path, capsys):
    code, out = run_eval(capsys, dataset, "--model", plain_model(tmp_path / "tiny.onnx"), "--latency-runs", 0, "-q")
    assert code == 0 and "tiny.onnx" in out and "IoU" in out
    assert main(["eval", str(tmp_path / "missing"), "--model", "x"]) == 2
    assert "dataset not found" in capsys.readouterr().err
    assert main(["eval", str(dataset), "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    assert main(["eval", str(dataset), "--model", str(tmp_path / "broken.onnx")]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_recurrent_peer_carries_and_resets_state(tmp_path):
    peer = load_eval_model(str(recurrent_model(tmp_path / "rec.onnx")), recurrent_size=(SIZE, SIZE))
    grey = np.full((SIZE, SIZE, 3), GREY, np.uint8)
    outs = [peer.predict(grey)[0, 0] for _ in range(3)]
    assert outs == pytest.approx([0.0, 0.01, 0.02])  # r1o of one frame is r1i of the next
    peer.reset()
    assert peer.predict(grey)[0, 0] == pytest.approx(0.0)


def test_eval_never_imports_torch(dataset, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import danmask

    env = {**os.environ, "PYTHONPATH": str(Path(danmask.__file__).resolve().parents[1])}
    model = plain_model(tmp_path / "tiny.onnx")
    code = ("import sys; from danmask.cli import main; "
            f"rc = main(['eval', {str(dataset)!r}, '--model', {str(model)!r}, '--latency-runs', '1', '-q']); "
            "sys.exit(3 if 'torch' in sys.modules else rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_report_folder_that_is_a_file(dataset, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    code = main(["eval", str(dataset), "--model", str(plain_model(tmp_path / "tiny.onnx")), "--latency-runs", "0",
                 "-o", str(tmp_path / "taken"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "taken: is a file, not a folder" in err


def test_eval_video_with_mask_folder(tmp_path, capsys):
    from danmask.synthetic import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=6, shape=(48, 64), seed=3)
    (tmp_path / "clip_masks").mkdir()
    for i in (2, 3, 4):
        Image.fromarray(clip.masks[i].astype(np.uint8) * 255).save(tmp_path / "clip_masks" / f"{i:05d}.png")
    code, out = run_eval(capsys, tmp_path / "clip.mp4", "--model", plain_model(tmp_path / "tiny.onnx"), "--json",
                         "--latency-runs", 0, "-q")
    r = json.loads(out)
    assert code == 0 and r["frames"] == 5 and r["scored_frames"] == 3  # segmented up to the last mask
    assert list(r["per_sequence"]) == ["clip"] and 0 <= r["mean_iou"] <= 1
    assert r["temporal_error"] is not None and r["median_ms"] is None and r["fp_frac"] is None


def test_eval_stability_scores_each_perturbed_copy(dataset, tmp_path, capsys):
    """--stability re-scores on every other frame (both phases), brighter and JPEG copies; figures by hand."""
    model = plain_model(tmp_path / "tiny.onnx")
    code, out = run_eval(capsys, dataset, "--model", model, "--json", "--raw", "--latency-runs", 0, "--stability", "-q")
    assert code == 0
    stab = json.loads(out)["stability"]
    assert stab["perturbations"] == ["even-frames", "odd-frames", "brighter", "jpeg70"]
    slide = stab["per_sequence"]["slide"]
    assert slide["even-frames"] == pytest.approx((1 + 96 / 160) / 2)  # shifts of 0 and 2 px
    assert slide["odd-frames"] == pytest.approx(112 / 144)  # the 1 px shift alone
    assert slide["brighter"] == pytest.approx((1 + 112 / 144 + 96 / 160) / 3)  # 6 levels move no pixel across 0.5
    assert 0.5 < slide["jpeg70"] <= 1.0
    assert stab["per_sequence"]["still"]["odd-frames"] == 1.0
    assert set(stab["mean_iou"]) == set(stab["perturbations"])
    code, out = run_eval(capsys, dataset, "--model", model, "--raw", "--latency-runs", 0, "--stability", "-q")
    assert code == 0 and "stability: IoU as measured" in out
    low = min(slide_iou := (1 + 112 / 144 + 96 / 160) / 3, *slide.values())
    high = max(slide_iou, *slide.values())
    mean = (slide_iou + sum(slide.values())) / 5
    line = f"  slide                    {slide_iou:.3f} ({low:.3f}-{high:.3f}, range {high - low:.3f}, average {mean:.3f})"
    assert line in out


def test_eval_camera_scores_the_person_sequences_under_each_move(dataset, tmp_path, capsys):
    """--camera re-scores the person sequences (not the no-person ones) rolling, zooming and at every 3rd frame,
    and prints each move's IoU beside the measured one."""
    model = plain_model(tmp_path / "tiny.onnx")
    code, out = run_eval(capsys, dataset, "--model", model, "--json", "--raw", "--latency-runs", 0, "--camera", "-q")
    assert code == 0
    summary = json.loads(out)
    cam = summary["camera"]
    assert cam["perturbations"] == ["rolling", "zooming", "every-3rd"]
    assert set(cam["per_sequence"]) == set(summary["per_sequence"])
    assert all(0 <= v <= 1 for moves in cam["per_sequence"].values() for v in moves.values())
    report = tmp_path / "report"
    code, out = run_eval(capsys, dataset, "--model", model, "--raw", "--latency-runs", 0, "--camera", "-q",
                         "-o", report)
    assert code == 0 and "camera moves: IoU as measured | rolling | zooming | every-3rd" in out
    page = (report / "index.html").read_text()  # the report shows the same figures
    rolled = cam["per_sequence"]["slide"]["rolling"]
    assert "<h2>Camera moves</h2>" in page and "<th>every-3rd</th>" in page and f"<td>{rolled:.3f}</td>" in page
