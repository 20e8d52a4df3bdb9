"""Inference runtime: model registry and backends (ONNX Runtime for ours, LiteRT for the MediaPipe peers)."""
from .base import ModelSpec, SegModel
from .registry import DEFAULT_MODEL, FAST_MODEL, list_models, load_model, resolve

__all__ = ["DEFAULT_MODEL", "FAST_MODEL", "ModelSpec", "SegModel", "list_models", "load_model", "resolve"]
