"""MediaPipe selfie segmentation (Apache-2.0 TFLite files from the mediapipe wheel) run by ai-edge-litert.

This is the peer baseline every danmask model is compared with; it is an optional extra.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import ModelSpec, to_input

_FILES = {
    "mediapipe-selfie": "selfie_segmentation.tflite",
    "mediapipe-selfie-landscape": "selfie_segmentation_landscape.tflite",
}


def mediapipe_file(module: str, filename: str) -> Path:
    """A TFLite file inside the installed mediapipe wheel (`modules/<module>/<filename>`), found without importing
    mediapipe (slow, and it pulls in protobuf)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"{filename} needs the mediapipe extra: pip install 'danmask[mediapipe]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / module / filename
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed mediapipe wheel (need mediapipe==0.10.14)")
    return path


def mediapipe_model_path(name: str) -> Path:
    """The selfie-segmentation peer `name`'s TFLite file."""
    return mediapipe_file("selfie_segmentation", _FILES[name])


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ModelError("MediaPipe peers need ai-edge-litert: pip install 'danmask[mediapipe]'") from exc
    return Interpreter


class LiteRtSegModel:
    """Selfie segmentation: input (1,H,W,3) RGB float in [0,1]; output (1,H,W,1) person probability."""

    def __init__(self, spec: ModelSpec, threads: int = 1, device: str = "auto") -> None:
        self.spec = spec
        path = spec.path or str(mediapipe_model_path(spec.name))
        try:
            self.interp = _interpreter_class()(model_path=path, num_threads=max(1, int(threads)))
            self.interp.allocate_tensors()
        except ValueError as exc:
            raise ModelError(f"{path}: cannot load TFLite model ({exc})") from exc
        self._in = self.interp.get_input_details()[0]["index"]
        self._out = self.interp.get_output_details()[0]["index"]

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        x = to_input(rgb, self.spec.input_size)[None]
        self.interp.set_tensor(self._in, x)
        self.interp.invoke()
        return np.clip(self.interp.get_tensor(self._out)[0, :, :, 0], 0.0, 1.0).astype(np.float32)
