"""Model registry: names -> ModelSpec, and load_model() that builds the right backend.

Our own models are `weights/<name>.onnx` with a sidecar `weights/<name>.json` holding the ModelSpec fields;
the MediaPipe peers are registered by name and found inside the mediapipe wheel.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import fields, replace
from pathlib import Path

from ..errors import DanmaskWarning, ModelError
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
    """Read a sidecar; `path` inside it is relative to the sidecar's folder.

    Raises:
        ModelError: unreadable file, not JSON, or fields of the wrong kind (see `spec_from_dict`).
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelError(f"{path}: unreadable model sidecar ({exc})") from exc
    except RecursionError:
        raise ModelError(f"{path}: unreadable model sidecar (nested too deeply)") from None
    spec = spec_from_dict(raw, str(path))
    parts = spec.extra.get("parts")  # a composite model names its graphs relative to the sidecar, like `path`
    return replace(spec, path=str(path.parent / (spec.path or path.with_suffix(".onnx").name)),
                   extra={**spec.extra, "parts": {k: str(path.parent / v) for k, v in parts.items()}} if parts
                   else spec.extra)


# field -> (what it must be, check); fields a sidecar may leave out take ModelSpec's defaults
_FIELD_CHECKS = {
    "name": ("a non-empty string", lambda v: isinstance(v, str) and v != ""),
    "input_size": ("[height, width], 1..4096 pixels each", lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 4096 for x in v)),
    "takes_prior": ("true or false", lambda v: isinstance(v, bool)),
    "output": ("'probability' or 'logit'", lambda v: v in ("probability", "logit")),
    "backend": ("a string", lambda v: isinstance(v, str)),
    "path": ("a file name", lambda v: isinstance(v, str)),
    "licence": ("a string", lambda v: isinstance(v, str)),
    "description": ("a string", lambda v: isinstance(v, str)),
    "extra": ("an object", lambda v: isinstance(v, dict) and (
        not v.get("parts") or (isinstance(v["parts"], dict)
                               and all(isinstance(x, str) and x for x in v["parts"].values())))),
}


def spec_from_dict(raw: object, where: str) -> ModelSpec:
    """A ModelSpec from decoded JSON (a sidecar, or the 'danmask' metadata of an ONNX file); unknown keys are
    ignored, so newer sidecars still load.

    Raises:
        ModelError: not an object, 'name' or 'input_size' missing, or a field of the wrong kind.
    """
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: model sidecar must be a JSON object")
    if "name" not in raw or "input_size" not in raw:
        raise ModelError(f"{where}: model sidecar needs 'name' and 'input_size'")
    known = {f.name for f in fields(ModelSpec)}
    raw = {k: v for k, v in raw.items() if k in known}
    for key, value in raw.items():
        what, ok = _FIELD_CHECKS[key]
        if not ok(value):
            raise ModelError(f"{where}: model sidecar field '{key}' must be {what}, got {value!r:.60}")
    return ModelSpec(**{**raw, "input_size": tuple(raw["input_size"])})


def list_models() -> dict[str, ModelSpec]:
    """All registered models: shipped danmask weights first, then the peers.

    A broken sidecar is left out with a DanmaskWarning (one line in the CLI), so that it cannot make every
    other model unreachable.
    """
    ours = {}
    for sidecar in sorted(WEIGHTS_DIR.glob("*.json")):
        try:
            spec = spec_from_json(sidecar)
        except ModelError as exc:
            warnings.warn(f"{exc}; model skipped", DanmaskWarning, stacklevel=2)
            continue
        ours[spec.name] = spec
    return {**ours, **_PEERS}


def registration_target(filename: str, force: bool = False) -> Path:
    """Where `danmask export --register` (or `train convert --register`) puts `filename` in the registry.

    Raises:
        ModelError: a file of that name is already registered (a shipped model, say) and `force` is not set.
    """
    target = WEIGHTS_DIR / filename
    if target.exists() and not force:
        raise ModelError(f"'{target.stem}' is already registered ({target}); --force replaces it")
    return target


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
    try:
        raw = json.loads(meta["danmask"])
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: unreadable 'danmask' metadata ({exc})") from exc
    return replace(spec_from_dict(raw, f"{path} metadata"), path=str(path))


def load_model(name_or_path: str = DEFAULT_MODEL, threads: int = 1, device: str = "auto") -> SegModel:
    """Build a ready-to-run model. `device`: "auto" (CUDA when present), "cpu" or "cuda"."""
    spec = resolve(name_or_path)
    if spec.backend == "litert":
        from .litert_backend import LiteRtSegModel

        return _zoomed(LiteRtSegModel(spec, threads=threads, device=device))
    if spec.backend == "person-track":
        if not {"detector", "landmarker"} <= set(spec.extra.get("parts") or ()):
            raise ModelError(f"model '{spec.name}': a person-track sidecar needs extra.parts.detector and "
                             "extra.parts.landmarker")
        from ..people.model import PersonTrackModel

        return PersonTrackModel(spec, threads=threads, device=device)
    if spec.backend == "mediapipe-pose":
        from .mediapipe_pose import MediaPipePosePeer

        return MediaPipePosePeer(spec, threads=threads, device=device)
    if spec.backend == "onnx":
        from .onnx_backend import OnnxSegModel

        return _zoomed(OnnxSegModel(spec, threads=threads, device=device))
    raise ModelError(f"model '{spec.name}': unknown backend '{spec.backend}' (known: onnx, litert, person-track, "
                     "mediapipe-pose)")


def _zoomed(model: SegModel) -> SegModel:
    """A whole-frame model wrapped to look closer at the people when its sidecar asks (`extra.zoom`)."""
    from .zoom import ZoomedModel, zoom_settings

    settings = zoom_settings(model.spec)
    return model if settings is None else ZoomedModel(model, settings)
