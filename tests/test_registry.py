"""The model registry with a weights folder made in tmp_path: a broken sidecar is skipped with one warning line
and never hides the other models; unknown backends are refused; --register never silently replaces a model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from danmask.cli import main
from danmask.errors import DanmaskWarning, ModelError
from danmask.runtime import list_models, load_model, registry

SHIPPED = registry.WEIGHTS_DIR


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A weights folder holding a copy of mpft-cpu, used by the registry instead of the shipped one."""
    for suffix in (".onnx", ".json"):
        shutil.copy(SHIPPED / f"mpft-cpu{suffix}", tmp_path / f"mpft-cpu{suffix}")
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    return tmp_path


BROKEN = {
    "no-input-size.json": {"name": "no-input-size", "backend": "onnx"},
    "bad-size.json": {"name": "bad-size", "input_size": [144, "wide"]},
    "not-an-object.json": ["name", "input_size"],
    "bad-parts.json": {"name": "bad-parts", "input_size": [8, 8], "extra": {"parts": {"detector": 3}}},
}


def test_a_broken_sidecar_is_skipped_with_a_warning(weights):
    for name, raw in BROKEN.items():
        (weights / name).write_text(json.dumps(raw))
    (weights / "not-json.json").write_text("{name: ")
    with pytest.warns(DanmaskWarning) as caught:
        models = list_models()
        assert load_model("mpft-cpu").spec.name == "mpft-cpu"
    assert "mpft-cpu" in models and "mediapipe-selfie" in models  # everything else is still there
    assert not {"no-input-size", "bad-size", "bad-parts"} & set(models)
    messages = {str(w.message) for w in caught}
    assert len(messages) == 5 and all("model skipped" in m for m in messages)
    assert any("no-input-size.json: model sidecar needs 'name' and 'input_size'" in m for m in messages)


def test_the_cli_prints_the_warning_as_one_line(weights, capsys):
    (weights / "bad.json").write_text("{}")
    assert main(["models"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("danmask: warning:") and "bad.json" in err


def test_an_unknown_backend_is_refused(weights):
    spec = json.loads((weights / "mpft-cpu.json").read_text())
    (weights / "future.json").write_text(json.dumps({**spec, "name": "future", "backend": "tensorrt"}))
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'"):
        load_model("future")


def test_a_person_track_sidecar_without_parts_is_refused(weights):
    (weights / "pt.json").write_text(json.dumps({"name": "pt", "input_size": [256, 256], "backend": "person-track"}))
    with pytest.raises(ModelError, match="extra.parts.detector"):
        load_model("pt")


@pytest.mark.train
def test_register_refuses_to_replace_a_model_without_force(weights, tmp_path_factory, capsys):
    torch = pytest.importorskip("torch")
    ckpt = tmp_path_factory.mktemp("ckpt") / "last.pt"
    torch.save({"arch": "mpft-cpu"}, ckpt)  # refused before the checkpoint is even read
    before = (weights / "mpft-cpu.onnx").read_bytes()
    out = ckpt.with_name("mpft-cpu.onnx")
    assert main(["export", str(ckpt), "-f", "onnx", "-o", str(out), "--register"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'mpft-cpu' is already registered" in err and "--force" in err
    assert (weights / "mpft-cpu.onnx").read_bytes() == before and not out.exists()
    # writing straight into the weights folder is registering too
    assert main(["export", str(ckpt), "-f", "onnx", "-o", str(weights / "mpft-cpu.onnx")]) == 2
    assert "already registered" in capsys.readouterr().err
    assert (weights / "mpft-cpu.onnx").read_bytes() == before
    assert registry.registration_target("mpft-cpu.onnx", force=True) == weights / "mpft-cpu.onnx"


@pytest.mark.train
def test_convert_register_refuses_too(weights, capsys):
    pytest.importorskip("torch")
    (weights / "person-detector.onnx").write_bytes(b"shipped")
    assert main(["train", "convert", "detector", "x.onnx", "--register"]) == 2
    assert "'person-detector' is already registered" in capsys.readouterr().err
    assert (weights / "person-detector.onnx").read_bytes() == b"shipped"


@pytest.mark.train
@pytest.mark.parametrize("part, name, content", [
    ("pose", "noise.tflite", bytes(range(256)) * 20),
    ("pose", "mpft-cpu.onnx", None),  # a real model of the wrong kind
    ("detector", "noise.onnx", bytes(range(256)) * 20),
])
def test_convert_refuses_a_wrong_file_in_one_line(part, name, content, tmp_path, capsys):
    pytest.importorskip("torch")
    source = tmp_path / name
    source.write_bytes(content if content is not None else (SHIPPED / name).read_bytes())
    out = tmp_path / "out.onnx"
    assert main(["train", "convert", part, str(source), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(source) in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.train
def test_convert_to_a_full_disk_is_one_line(capsys):
    pytest.importorskip("torch")
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert main(["train", "convert", "pose", "-o", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/dev/full" in err
