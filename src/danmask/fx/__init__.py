"""Interactive effects (`danmask fx NAME ... SOURCE -o OUT.mp4`), one module per effect on a shared frame loop.

- `pose`: 2D keypoints of every person, tracked with ids (the person-track model's own), skeleton overlay;
- `parse`: per-pixel body parts of every person (BodyPix), colour map or torso recolouring;
- `rps`: rock / paper / scissors / none on every hand (MediaPipe Hands + danmask's classifier), and a game;
- `style`: arbitrary style transfer (Magenta) with continuous strength and stroke size;
- `face_fuse`: a template face aligned to every face by its landmarks, skin tone matched, blended in.

Each effect has one keyword-argument function that the CLI mirrors (`run_pose`, `run_parse`, `run_rps`,
`run_style`, `run_face_fuse`). Imports are lazy so that `import danmask.fx` costs nothing until an effect runs.
"""
from __future__ import annotations

import importlib

__all__ = ["run_face_fuse", "run_parse", "run_pose", "run_rps", "run_style"]
_MODULES = {"run_pose": "pose", "run_parse": "parse", "run_rps": "rps", "run_style": "style",
            "run_face_fuse": "face_fuse"}


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    raise AttributeError(f"module 'danmask.fx' has no attribute {name!r}")
