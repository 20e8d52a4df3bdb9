"""Interactive effects (`danmask fx NAME ... SOURCE -o OUT.mp4`), one module per effect on a shared frame loop.

- `pose`: 2D keypoints of every person, tracked with ids (the person-track model's own), skeleton overlay;
- `parse`: per-pixel body parts of every person (BodyPix), colour map or torso recolouring.

Each effect has one keyword-argument function that the CLI mirrors (`run_pose`, `run_parse`). Imports are lazy so
that `import danmask.fx` costs nothing until an effect runs.
"""
from __future__ import annotations

__all__ = ["run_parse", "run_pose"]


def __getattr__(name: str):
    if name == "run_pose":
        from .pose import run_pose

        return run_pose
    if name == "run_parse":
        from .parse import run_parse

        return run_parse
    raise AttributeError(f"module 'danmask.fx' has no attribute {name!r}")
