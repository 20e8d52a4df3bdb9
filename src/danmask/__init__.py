"""danmask: segment the people in a video, ship their masks with it, fly danmaku behind them.

    >>> import danmask
    >>> track = danmask.segment_video("clip.mp4", model="fast", output="clip.dmask")  # streamed to the file

Names are imported on first use (PEP 562), so `import danmask.errors` or `danmask --help` stays light.
The public surface is guarded by tests/test_pipeline.py::test_public_api.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "segment_video": "pipeline",
    "iter_masks": "pipeline",
    "run_live": "live",
    "LiveStats": "live",
    "Segmenter": "segmenter",
    "TemporalConfig": "segmenter",
    "MaskTrack": "track",
    "TrackReader": "trackreader",
    "TrackWriter": "trackwriter",
    "VideoFrame": "video",
    "VideoInfo": "video",
    "iter_frames": "video",
    "probe": "video",
    "write_webmask": "webmask",
    "read_webmask": "webmask",
    "DanmaskError": "errors",
    "VideoError": "errors",
    "ModelError": "errors",
    "TrackError": "errors",
    "OutputError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'danmask' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
