"""The training loop end to end on a tiny label cache: checkpoint, curves, resume, determinism, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch)")

from danmask.cli import main  # noqa: E402
from danmask.synthetic import person_mask  # noqa: E402
from danmask.train.loop import TrainConfig, train  # noqa: E402


def _write_cache(root, n=6):
    rng = np.random.default_rng(0)
    for i in range(n):
        group = "coco" if i % 3 else "davis-noperson"
        d = root / group
        d.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
        m = person_mask(96, 160, 40 + 15 * i, 55, 0.6) if group == "coco" else np.zeros((96, 160), bool)
        img[m] = (230, 40, 40)
        cv2.imwrite(str(d / f"s{i}.jpg"), img)
        cv2.imwrite(str(d / f"s{i}.label.png"), (m * 255).astype(np.uint8))
        cv2.imwrite(str(d / f"s{i}.ignore.png"), np.zeros((96, 160), np.uint8))


def _write_davis(root):
    for seq, has_person in (("walk", True), ("empty", False)):
        (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
        (root / "Annotations" / "480p" / seq).mkdir(parents=True)
        for i in range(2):
            img = np.full((72, 128, 3), 90, np.uint8)
            m = person_mask(72, 128, 60, 40, 0.6) if has_person else np.zeros((72, 128), bool)
            img[m] = (230, 40, 40)
            cv2.imwrite(str(root / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg"), img)
            cv2.imwrite(str(root / "Annotations" / "480p" / seq / f"{i:05d}.png"), (m * 255).astype(np.uint8))


@pytest.fixture
def data(tmp_path):
    _write_cache(tmp_path / "cache")
    _write_davis(tmp_path / "davis")
    return tmp_path


def _cfg(data, out, steps, arch="airseg-cpu", ema=0.0):
    return TrainConfig(arch=arch, cache=str(data / "cache"), out=str(data / out), steps=steps, batch=2, workers=0,
                       threads=1, val_davis=str(data / "davis"), val_sequences=("walk", "empty"), device="cpu",
                       ema=ema)


def test_train_writes_checkpoint_curves_and_validation(data):
    ckpt = train(_cfg(data, "run", steps=3), progress=False)
    ck = torch.load(ckpt, weights_only=False)
    assert ck["step"] == 3 and ck["arch"] == "airseg-cpu"
    hist = json.loads((data / "run" / "history.json").read_text())
    assert set(hist[-1]["per_sequence"]) == {"walk"} and set(hist[-1]["fp"]) == {"empty"}
    assert (data / "run" / "loss.png").stat().st_size > 1000
    assert json.loads((data / "run" / "config.json").read_text())["steps"] == 3
    assert len((data / "run" / "log.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_resume_continues_and_training_is_deterministic(data, ema):
    train(_cfg(data, "a", steps=2, ema=ema), progress=False)
    resumed = train(_cfg(data, "a", steps=4, ema=ema), resume=True, progress=False)
    straight = train(_cfg(data, "b", steps=4, ema=ema), progress=False)
    a = torch.load(resumed, weights_only=False)
    b = torch.load(straight, weights_only=False)
    assert a["step"] == b["step"] == 4
    for part in ("model", "raw") if ema else ("model",):
        for k in a[part]:
            assert torch.allclose(a[part][k].float(), b[part][k].float(), atol=1e-5), (part, k)
    if ema:  # the shipped weights are the average, not the last step's
        assert any(not torch.equal(a["model"][k], a["raw"][k]) for k in a["model"])


def test_prior_model_trains(data):
    ckpt = train(_cfg(data, "h", steps=2, arch="hourglass-prior"), progress=False)
    assert torch.load(ckpt, weights_only=False)["arch"] == "hourglass-prior"


def test_fit_cli_errors_are_one_line(data, capsys):
    assert main(["train", "fit", "--arch", "nope", "--cache", str(data / "cache")]) == 2
    assert "valid: airseg-cpu" in capsys.readouterr().err
    assert main(["train", "fit", "--cache", str(data / "missing"), "--steps", "1"]) == 2
    assert "run `danmask train labels` first" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json")),
                         ids=lambda p: p.stem)
def test_recorded_configs_still_parse(path):
    """Every config in configs/ is the exact record of a run; it must stay loadable as the code moves on."""
    import argparse

    from danmask.commands.train import FIT_CROPS_FLAGS, FIT_FLAGS, crop_fit_config, fit_config

    raw = json.loads(path.read_text())
    if path.stem == "vos":  # a `train vos` run (the memory network)
        from danmask.vos.train import VosTrainConfig

        cfg = VosTrainConfig.from_json(path)
        assert cfg.out.startswith("runs/") and cfg.input_size == tuple(raw["input_size"])
        return
    if path.stem == "parse-student":  # a `train parse-student` run (fx parse --model student)
        from danmask.train.parse_student import ParseStudentConfig

        cfg = ParseStudentConfig.from_json(path)
        assert cfg.out.startswith("runs/") and cfg.crop == tuple(raw["crop"])
        return
    if "crops" in raw:  # a `train fit-crops` run (the person-track path's mask refiner)
        cfg = crop_fit_config(argparse.Namespace(config=str(path), **dict.fromkeys(FIT_CROPS_FLAGS)))
        assert cfg.out.startswith("runs/") and cfg.crops == raw["crops"]
        return
    cfg = fit_config(argparse.Namespace(config=str(path), **dict.fromkeys(FIT_FLAGS)))
    assert cfg.out.startswith("runs/") and cfg.arch == raw["arch"]


def test_fit_config_with_a_bad_nested_key_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"arch": "airseg-cpu", "loss": {"edge_wieght": 5}}))
    assert main(["train", "fit", "--config", str(bad)]) == 2
    assert "edge_wieght" in capsys.readouterr().err


def test_export_checkpoint_cli(data, capsys):
    ckpt = train(_cfg(data, "e", steps=1), progress=False)
    out = data / "m.onnx"
    assert main(["export", str(ckpt), "--format", "onnx", "-o", str(out), "--int8"]) == 0
    text = capsys.readouterr().out
    assert "max |torch - onnx|" in text and "int8 vs fp32" in text
    assert out.is_file() and (data / "m-int8.onnx").is_file() and out.with_suffix(".json").is_file()
    assert main(["export", str(data / "nothing.pt"), "--format", "onnx", "-o", str(out)]) == 2
    (data / "junk.pt").write_bytes(b"junk")  # a corrupt checkpoint: one line, no traceback
    assert main(["export", str(data / "junk.pt"), "--format", "onnx", "-o", str(out)]) == 2
    assert "not a danmask checkpoint" in capsys.readouterr().err


def test_validation_sequences_never_reach_training():
    from danmask.train.data import Item, without_sequences

    blank = np.zeros((2, 2), np.uint8)
    items = [Item(g, k, blank, blank, blank) for g, k in [("davis-person", "dance-twirl-00003"),
                                                          ("davis-person", "dance-00001"),
                                                          ("davis-noperson", "dog-00000"),
                                                          ("clips", "dog-00000")]]
    kept = without_sequences(items, ("dance-twirl", "dog"))
    assert [(it.group, it.key) for it in kept] == [("davis-person", "dance-00001"), ("clips", "dog-00000")]


@pytest.mark.parametrize("command, config", [("vos", "configs/vos.json"), ("parse-student", "configs/parse-student.json")])
def test_an_unwritable_run_folder_is_one_line_before_any_training(command, config, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = str(Path(__file__).resolve().parents[1] / config)
    assert main(["train", command, "--config", config, "-o", str(blocker / "run"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write in this folder" in err and "\n" not in err
