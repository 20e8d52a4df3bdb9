"""Export a trained checkpoint to ONNX (fp32 and int8), check parity with torch on real frames, register it.

The exported graph takes `src` (1,3,H,W) RGB in [0,1] (+ `prior` (1,1,H,W) for prior-mask models) and returns
`mask` (1,1,H,W) probabilities, with normalisation, blur and contrast curve inside, so no runtime can get them wrong.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..models import create_model, input_size, takes_prior
from ..models.postprocess import Normalize, SoftEdges
from ..runtime.registry import WEIGHTS_DIR


class ExportWrapper(nn.Module):
    """Plain RGB in, probability out: what every runtime sees."""

    def __init__(self, net: nn.Module, prior: bool, blur: bool = True, gain: float = 1.5) -> None:
        super().__init__()
        self.net, self.prior = net, prior
        self.norm, self.edges = Normalize(), SoftEdges(blur, gain)

    def forward(self, src: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(src)
        logits = self.net(x, prior) if self.prior else self.net(x)
        return self.edges(logits)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """A training checkpoint: {'arch', 'model' (state_dict), 'config', ...}."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
        net = create_model(ckpt["arch"])
        net.load_state_dict(ckpt["model"])
    except (OSError, KeyError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{path}: not a danmask checkpoint ({exc})") from exc
    return net.eval(), ckpt


def export_onnx(net: nn.Module, arch: str, out: Path, blur: bool = True, gain: float = 1.5,
                meta: dict | None = None) -> Path:
    """Write `out` (.onnx) and its sidecar .json (the ModelSpec the registry reads)."""
    h, w = input_size(arch)
    prior = takes_prior(arch)
    wrapper = ExportWrapper(net.eval(), prior, blur, gain).eval()
    args = (torch.rand(1, 3, h, w),) + ((torch.rand(1, 1, h, w),) if prior else ())
    names = ["src", "prior"] if prior else ["src"]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapper, args, str(out), input_names=names, output_names=["mask"], opset_version=17,
                      dynamo=False)
    spec = {"name": out.stem, "input_size": [h, w], "takes_prior": prior, "output": "probability",
            "backend": "onnx", "path": out.name, "licence": "Apache-2.0",
            "description": f"danmask {arch}", "extra": {"arch": arch, "blur": blur, "gain": gain, **(meta or {})}}
    _embed_metadata(out, spec)
    out.with_suffix(".json").write_text(json.dumps(spec, indent=2) + "\n")
    return out


def _embed_metadata(path: Path, spec: dict) -> None:
    """The spec also travels inside the .onnx (key 'danmask'), so a bare file is self-describing."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "danmask", json.dumps({k: v for k, v in spec.items() if k != "path"})
    onnx.save(model, str(path))


def quantize_int8(fp32: Path, out: Path, calibration: list[np.ndarray], prior: bool) -> Path:
    """Static int8 (QDQ) quantisation calibrated on real frames; sidecar copied with the new name."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self):
            x = next(self.it, None)
            if x is None:
                return None
            feeds = {"src": x[None, :3]}
            if prior:
                feeds["prior"] = x[None, 3:4]
            return feeds

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    spec = json.loads(fp32.with_suffix(".json").read_text())
    spec.update(name=out.stem, path=out.name, description=spec["description"] + " (int8)")
    _embed_metadata(out, spec)
    out.with_suffix(".json").write_text(json.dumps(spec, indent=2) + "\n")
    return out


def parity(net: nn.Module, arch: str, onnx_path: Path, frames: list[np.ndarray], blur: bool = True,
           gain: float = 1.5) -> float:
    """Max |torch - onnxruntime| over real frames (each (C,H,W) float32 in [0,1], C = 3 or 4)."""
    import onnxruntime as ort

    prior = takes_prior(arch)
    wrapper = ExportWrapper(net.eval(), prior, blur, gain).eval()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in frames:
        t = torch.from_numpy(x[None])
        with torch.no_grad():
            ref = wrapper(t[:, :3], t[:, 3:4]) if prior else wrapper(t[:, :3])
        feeds = {"src": x[None, :3]}
        if prior:
            feeds["prior"] = x[None, 3:4]
        got = sess.run(["mask"], feeds)[0]
        worst = max(worst, float(np.abs(got - ref.numpy()).max()))
    return worst


def default_weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.onnx"
