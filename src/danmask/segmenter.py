"""A segmentation session for one video: frame in, temporally stable soft person mask out.

`Segmenter.step(rgb, t)` is the only entry point (cf. Cutie's `InferenceCore.step`, MediaPipe's
`segment_for_video(image, timestamp_ms)`); `reset()` drops every piece of temporal state, which happens by itself
at scene cuts. Time is always the caller's: the frame's display time in seconds (`VideoFrame.time`), never
guessed from a frame rate, so variable frame rate and dropped frames keep the temporal stage honest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ModelError
from .runtime import SegModel, load_model
from .runtime.base import shrink
from .temporal import JitterFilter, SceneCutDetector, StillDetector, smooth_edges, thumbnail


@dataclass(frozen=True)
class TemporalConfig:
    """Switches and thresholds of the temporal stage; every piece is on by default."""

    prior: bool = True  # feed the previous mask to models whose spec says takes_prior
    scene_cut: bool = True  # drop all state when SSIM of consecutive thumbnails < cut_threshold
    jitter: bool = True  # momentum smoothing of boundary pixels
    skip_still: bool = True  # reuse the last mask while the frame is still
    smooth: bool = True  # 3x3 Gaussian + contrast curve
    cut_threshold: float = 0.4
    still_pixel_delta: float = 10.0
    still_max_changed: float = 0.003
    max_skip_s: float = 0.5
    jitter_band: int = 3
    jitter_momentum: float = 0.8
    contrast: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 < self.cut_threshold < 1.0:
            raise ValueError(f"cut_threshold must be in (0, 1), got {self.cut_threshold}")
        if not 0.0 <= self.jitter_momentum < 1.0:
            raise ValueError(f"jitter_momentum must be in [0, 1), got {self.jitter_momentum}")
        if self.jitter_band < 1 or self.max_skip_s < 0 or self.contrast <= 0:
            raise ValueError("jitter_band >= 1, max_skip_s >= 0 and contrast > 0 are required")


@dataclass
class SegmenterStats:
    """Counters of one session: frames stepped, frames whose model run was skipped, scene cuts seen."""

    frames: int = 0
    skipped: int = 0
    cuts: int = 0


class Segmenter:
    """Stateful per-video segmentation: model + temporal stage.

    Args:
        model: a loaded SegModel, or a registry name / .onnx path for `load_model`.
        config: temporal switches; defaults to everything on.
        mask_size: (h, w) of the returned masks; defaults to the model's input size, or for a model that takes
            whole frames and pastes its own crops (person-track, a zoomed model) to the frame's size.

    After each step, `people` holds the tracked people of that frame (id, salient, soft mask at `mask_size`)
    for models that track people, and is empty for whole-frame models.
    """

    def __init__(
        self, model: SegModel | str, config: TemporalConfig | None = None, mask_size: tuple[int, int] | None = None
    ) -> None:
        self.model = load_model(model) if isinstance(model, str) else model
        if not hasattr(self.model, "predict") or not hasattr(self.model, "spec"):
            raise ModelError(f"{model!r} is not a segmentation model (needs .spec and .predict)")
        self.config = config or TemporalConfig()
        self.tracks_people = bool(getattr(self.model, "tracks_people", False))
        # models that take whole frames and paste their own masks (person crops, zoom): `track(rgb, t, size)`
        self.frame_input = bool(getattr(self.model, "frame_input", False))
        default = None if self.frame_input else tuple(self.model.spec.input_size)
        self.mask_size = tuple(mask_size) if mask_size else default
        if self.mask_size is not None and (len(self.mask_size) != 2 or min(self.mask_size) < 1):
            raise ValueError(f"mask_size must be (height, width), got {mask_size}")
        self.people: list = []
        self.uses_prior = self.config.prior and bool(self.model.spec.takes_prior)
        # danmask's exported graphs end in the same blur + curve: smoothing twice would only soften edges
        self.smooth_here = self.config.smooth and not self.model.spec.extra.get("blur", False)
        self.cuts = SceneCutDetector(self.config.cut_threshold)
        self.still = StillDetector(self.config.still_pixel_delta, self.config.still_max_changed, self.config.max_skip_s)
        self.jitter = JitterFilter(self.config.jitter_band, self.config.jitter_momentum)
        self.stats = SegmenterStats()
        self._prior: np.ndarray | None = None  # temporal mask before edge smoothing, fed back to the model
        self._last: np.ndarray | None = None  # last returned mask
        self._last_time: float | None = None

    def reset(self) -> None:
        """Forget the past (seek, new shot): no prior, no jitter state, no skipping until the model runs."""
        self.cuts.reset()
        self._drop_state()

    def _drop_state(self) -> None:
        self.still.reset()
        self.jitter.reset()
        self._prior = self._last = self._last_time = None
        self.people = []
        if self.frame_input:
            self.model.reset()

    def step(self, rgb: np.ndarray, t: float) -> np.ndarray:
        """Segment the next displayed frame.

        Args:
            rgb: (H, W, 3) uint8 frame.
            t: its display time in seconds (`VideoFrame.time`; for a still image, 0.0).

        Returns:
            float32 (h, w) soft mask in [0, 1] at `mask_size`.

        Raises:
            ValueError: a frame that is not (H, W, 3) uint8, or a time that is not a finite number.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        t = _seconds(t)
        if not self.frame_input:  # one cheap downscale serves the model's input and the thumbnail
            rgb = shrink(rgb, tuple(self.model.spec.input_size))
        dt = t - self._last_time if self._last_time is not None else 0.0
        self.stats.frames += 1
        thumb = thumbnail(rgb) if (self.config.scene_cut or self.config.skip_still) else None
        cut = self.config.scene_cut and self.cuts.update(thumb)
        if cut:
            self.stats.cuts += 1
            self._drop_state()
        if self.config.skip_still and self._last is not None and self.still.is_still(thumb, t):
            self.stats.skipped += 1
            self._last_time = t
            return self._last.copy()
        mask = self._infer(rgb, t)
        if self.config.jitter:
            mask = self.jitter.update(mask, dt)
        self._prior = mask
        if self.smooth_here:
            mask = smooth_edges(mask, self.config.contrast)
        if thumb is not None:
            self.still.inferred(thumb, t)
        self._last, self._last_time = mask, t
        return mask.copy()

    def _infer(self, rgb: np.ndarray, t: float) -> np.ndarray:
        if self.frame_input:
            mask = self.model.track(rgb, t, self.mask_size)
            self.people = self.model.people if self.tracks_people else []
            return mask
        prior = self._prior if self.uses_prior else None
        raw = np.asarray(self.model.predict(rgb, prior), dtype=np.float32)
        if raw.ndim != 2:
            raise ModelError(f"model {self.model.spec.name} returned shape {raw.shape}, expected (h, w)")
        h, w = self.mask_size
        if raw.shape != (h, w):
            raw = cv2.resize(raw, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(raw, 0.0, 1.0)


def _seconds(t: object) -> float:
    """A frame's display time, checked: the Segmenter never invents one."""
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not math.isfinite(t):
        raise ValueError(f"Segmenter.step needs the frame's display time in seconds (VideoFrame.time), got {t!r}")
    return float(t)
