"""Run danmask's own ONNX models with ONNX Runtime (no torch on this path)."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .base import ModelSpec, prior_input, to_input


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ModelError("CUDA was requested but onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    wanted = ["CUDAExecutionProvider"] if device in ("cuda", "auto") else []
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


def session(path: str, threads: int = 1, device: str = "auto"):
    """An ONNX Runtime session with danmask's settings: `threads` intra-op threads, full graph optimisation,
    quiet logs, CUDA when asked for (or "auto" and present). A file that will not load is a ModelError."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=_providers(device))
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise ModelError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from exc


class OnnxSegModel:
    """ONNX graph with input `src` (1,3,H,W) RGB in [0,1], optional `prior` (1,1,H,W), output `mask` (1,1,H,W)."""

    def __init__(self, spec: ModelSpec, threads: int = 1, device: str = "auto") -> None:
        self.spec = spec
        self.session = session(spec.path, threads, device)
        names = {i.name for i in self.session.get_inputs()}
        if "src" not in names:
            raise ModelError(f"{spec.path}: ONNX model has no input named 'src' (inputs: {sorted(names)})")
        self._has_prior_input = "prior" in names
        self._output = self.session.get_outputs()[0].name

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        x = to_input(rgb, self.spec.input_size).transpose(2, 0, 1)[None]
        feeds = {"src": np.ascontiguousarray(x)}
        if self._has_prior_input:
            feeds["prior"] = prior_input(prior, self.spec.input_size)[None, None]
        try:
            out = self.session.run([self._output], feeds)[0][0, 0]
        except Exception as exc:  # e.g. fixed input sizes that disagree with the sidecar's input_size
            raise ModelError(f"{self.spec.path}: inference failed ({str(exc).splitlines()[0]})") from exc
        if self.spec.output == "logit":
            out = 1.0 / (1.0 + np.exp(-out))
        return out.astype(np.float32, copy=False)
