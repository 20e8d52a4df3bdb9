"""MediaPipe Pose (Apache-2.0) as a peer: Google's own solution graph, which finds one person with its pose
detector, follows them by their landmarks and segments a 256x256 crop around them (`smooth_segmentation` on).

It is the person-centred peer that danmask's `person-track` must beat. `full` ships in the mediapipe wheel;
`heavy` (27.7 MB) does not, and MediaPipe would download it: danmask never downloads, so it takes the file from
`npm pack @mediapipe/pose` instead (unpack it and point DANMASK_MEDIAPIPE_POSE at the `package/` folder; the file
is copied where MediaPipe looks for it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .base import ModelSpec
from .litert_backend import mediapipe_file

COMPLEXITY = {"mediapipe-pose-full": 1, "mediapipe-pose-heavy": 2}
_FILES = {1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
ENV = "DANMASK_MEDIAPIPE_POSE"


def landmark_file(complexity: int) -> Path:
    """The pose_landmark file MediaPipe will load, put in place from $DANMASK_MEDIAPIPE_POSE when missing."""
    name = _FILES[complexity]
    try:
        return mediapipe_file("pose_landmark", name)
    except ModelError:
        folder = mediapipe_file("pose_landmark", _FILES[1]).parent  # the wheel is there; this file is not
    source = Path(os.environ.get(ENV, "")) / name
    if not os.environ.get(ENV) or not source.is_file():
        raise ModelError(f"{name} is not in the mediapipe wheel: run `npm pack @mediapipe/pose`, unpack it and set "
                         f"{ENV} to its package/ folder")
    try:
        shutil.copyfile(source, folder / name)
    except OSError as exc:
        raise ModelError(f"cannot copy {source} into {folder} ({exc.strerror or exc})") from exc
    return folder / name


class MediaPipePosePeer:
    """`track(rgb, t, size)` -> the solution's segmentation mask (one person); no ids (`people` stays empty)."""

    tracks_people = True
    frame_input = True  # whole frames in, masks pasted at the asked size (Segmenter)

    def __init__(self, spec: ModelSpec, threads: int = 1, device: str = "cpu") -> None:
        self.spec = spec
        self.complexity = COMPLEXITY[spec.name]
        landmark_file(self.complexity)
        self.people: list = []
        self._pose = None

    def _solution(self):
        if self._pose is None:
            import warnings

            os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ INFO lines: not for our users
            with warnings.catch_warnings():  # protobuf's deprecation notes on import: noise for our users
                warnings.simplefilter("ignore")
                from mediapipe.python.solutions.pose import Pose
            self._pose = Pose(static_image_mode=False, model_complexity=self.complexity, enable_segmentation=True,
                              smooth_segmentation=True)
        return self._pose

    def reset(self) -> None:
        """A new clip: MediaPipe's graph keeps its track and smoothing state, so it is rebuilt."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def track(self, rgb: np.ndarray, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
        import cv2

        result = self._solution().process(np.ascontiguousarray(rgb))
        h, w = size or rgb.shape[:2]
        mask = result.segmentation_mask
        if mask is None:
            return np.zeros((h, w), np.float32)
        mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return mask

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """A still image: a fresh graph, one frame."""
        self.reset()
        return self.track(rgb, 0.0)
