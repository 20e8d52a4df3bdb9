"""Model registry: names -> ModelSpec, and load_model() that builds the right backend.

Our own models are `weights/<name>.onnx` with a sidecar `weights/<name>.json` holding the ModelSpec fields;
the MediaPipe peers are registered by name and found inside the mediapipe wheel.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from ..errors import ModelError
from .base import ModelSpec, SegModel

WEIGHTS_DIR = Path(__file__).with_name("weights")
# The most accurate path within MediaPipe Pose heavy's time per frame; and the best whole-frame model, for
# real time (live, the browser). `--model default` and `--model fast` name them (docs/people.md says which when).
DEFAULT_MODEL = "person-track"
FAST_MODEL = "mpft-cpu"
ALIASES = {"default": DEFAULT_MODEL, "fast": FAST_MODEL}

_PEERS = {
    "mediapipe-selfie": ModelSpec(
        name="mediapipe-selfie", input_size=(256, 256), backend="litert", licence="Apache-2.0",
        description="MediaPipe selfie segmentation, general (peer baseline)"),
    "mediapipe-selfie-landscape": ModelSpec(
        name="mediapipe-selfie-landscape", input_size=(144, 256), backend="litert", licence="Apache-2.0",
        description="MediaPipe selfie segmentation, landscape (peer baseline)"),
    "mediapipe-pose-full": ModelSpec(
        name="mediapipe-pose-full", input_size=(256, 256), backend="mediapipe-pose", licence="Apache-2.0",
        description="MediaPipe Pose solution, full: one tracked person, crop segmentation (peer)"),
    "mediapipe-pose-heavy": ModelSpec(
        name="mediapipe-pose-heavy", input_size=(256, 256), backend="mediapipe-pose", licence="Apache-2.0",
        description="MediaPipe Pose solution, heavy (peer; pose_landmark_heavy from npm @mediapipe/pose)"),
}


def spec_from_json(path: Path) -> ModelSpec:
    """Read a sidecar; `path` inside it is relative to the sidecar's folder."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model sidecar ({exc})") from exc
    known = {f.name for f in fields(ModelSpec)}
    raw = {k: v for k, v in raw.items() if k in known}
    if "name" not in raw or "input_size" not in raw:
        raise ModelError(f"{path}: model sidecar needs 'name' and 'input_size'")
    raw["input_size"] = tuple(raw["input_size"])
    raw["path"] = str(path.parent / raw.get("path", path.with_suffix(".onnx").name))
    parts = raw.get("extra", {}).get("parts")
    if parts:  # a composite model names its graphs relative to the sidecar, like `path`
        raw["extra"] = {**raw["extra"], "parts": {k: str(path.parent / v) for k, v in parts.items()}}
    return ModelSpec(**raw)


def list_models() -> dict[str, ModelSpec]:
    """All registered models: shipped danmask weights first, then the peers."""
    ours = {}
    for sidecar in sorted(WEIGHTS_DIR.glob("*.json")):
        spec = spec_from_json(sidecar)
        ours[spec.name] = spec
    return {**ours, **_PEERS}


def resolve(name_or_path: str) -> ModelSpec:
    """A registry name or alias (`default`, `fast`), an `.onnx` file (with or without a sidecar .json beside it),
    or a sidecar .json."""
    models = list_models()
    name_or_path = ALIASES.get(name_or_path, name_or_path)
    if name_or_path in models:
        return models[name_or_path]
    path = Path(name_or_path)
    if path.suffix in (".onnx", ".json"):
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            return spec_from_json(sidecar)
        return _spec_from_onnx_metadata(path)
    raise ModelError(f"unknown model '{name_or_path}'; valid names: {', '.join([*ALIASES, *models])} "
                     "(or a path to an .onnx file)")


def _spec_from_onnx_metadata(path: Path) -> ModelSpec:
    """Our exporter writes the spec into the ONNX metadata under key 'danmask'; other files need a sidecar."""
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    except Exception as exc:
        raise ModelError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from exc
    if "danmask" not in meta:
        raise ModelError(f"{path}: no 'danmask' metadata and no sidecar {path.with_suffix('.json').name}")
    raw = json.loads(meta["danmask"])
    raw["input_size"] = tuple(raw["input_size"])
    raw["path"] = str(path)
    known = {f.name for f in fields(ModelSpec)}
    return ModelSpec(**{k: v for k, v in raw.items() if k in known})


def load_model(name_or_path: str = DEFAULT_MODEL, threads: int = 1, device: str = "auto") -> SegModel:
    """Build a ready-to-run model. `device`: "auto" (CUDA when present), "cpu" or "cuda"."""
    spec = resolve(name_or_path)
    if spec.backend == "litert":
        from .litert_backend import LiteRtSegModel

        return LiteRtSegModel(spec, threads=threads, device=device)
    if spec.backend == "person-track":
        from ..people.model import PersonTrackModel

        return PersonTrackModel(spec, threads=threads, device=device)
    if spec.backend == "mediapipe-pose":
        from .mediapipe_pose import MediaPipePosePeer

        return MediaPipePosePeer(spec, threads=threads, device=device)
    if spec.backend == "onnx":
        from .onnx_backend import OnnxSegModel

        return OnnxSegModel(spec, threads=threads, device=device)
    raise ModelError(f"model '{spec.name}': unknown backend '{spec.backend}' (known: onnx, litert, person-track, "
                     "mediapipe-pose)")
