"""`danmask fx style STYLE_IMAGE SOURCE`: arbitrary style transfer with continuous strength and stroke size.

Magenta's arbitrary image stylisation (Ghiasi et al. 2017; the int8 TFLite pair, Apache-2.0, shipped in
`fx/weights/`): a style network (int8, ai-edge-litert) turns a 256x256 picture into a 100-number style vector, a
transfer network paints a content picture with a style vector. The int8 transfer graph is fixed at 384x384 and
slow (255 ms); it runs here as danmask's float ONNX rebuild of it (`fx.style_onnx`: the same weights dequantised,
any size), 61 ms at 320x240.

- **strength** (0..1): the vector painted with is `strength * style + (1 - strength) * content`, the content's
  own vector coming from the frame itself (averaged over frames, so it does not flicker): 0 keeps the frame's
  own look, 1 is the full style, anything between is a continuous mix.
- **stroke** (0..2): the stroke pyramid. At level k the frame is painted at a long side of min(384, the frame's)
  / 2^k, so its strokes are 2^k times as large relative to the frame; a fractional stroke blends the two levels
  around it (stroke 0.5: half level 0, half level 1). A whole stroke runs the transfer once per frame, a
  fractional one twice (the second at a quarter of the pixels).

**paint_every** N > 1 trades exactness for speed
(keyframes and flow, as video stylisation commonly does): every Nth frame is painted, and the frames between show
the last painted frame carried along by the optical flow (OpenCV's DIS, ultrafast preset) from that keyframe to
the frame, which costs a few milliseconds instead of a transfer pass.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from ..video import VideoFrame
from .loop import FxResult, run_effect
from .tflite import TfLite

WEIGHTS = Path(__file__).resolve().parent / "weights"
PREDICT = WEIGHTS / "magenta-style-predict-int8.tflite"
TRANSFER = WEIGHTS / "magenta-style-transfer-int8.tflite"  # the source of the ONNX rebuild (fx.style_onnx)
TRANSFER_ONNX = WEIGHTS / "magenta-style-transfer.onnx"
STYLE_SIDE, CANVAS = 256, 384
MAX_STROKE = 2.0
CONTENT_EMA = 0.2  # weight of the newest frame in the content's running style vector


def read_image(path: str | Path) -> np.ndarray:
    """An RGB picture from a file. Raises DanmaskError (one line) when it is missing or not a picture."""
    if not Path(path).is_file():
        raise DanmaskError(f"{path}: image not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DanmaskError(f"{path}: not a readable image")
    return np.ascontiguousarray(bgr[..., ::-1])


def _square(rgb: np.ndarray, side: int) -> np.ndarray:
    """The centre square of `rgb` resized to side x side, in [0, 1]."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(rgb[y:y + s, x:x + s], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


class Stylizer:
    """`vector(rgb)` -> a (100,) style vector; `paint(rgb, vector, level)` -> the frame painted at pyramid level.

    The style network is the int8 TFLite file (LiteRT); the transfer network is its float ONNX rebuild
    (`fx.style_onnx`: same weights, dequantised, any input size) run by ONNX Runtime at each level's own size.
    """

    def __init__(self, threads: int = 1, device: str = "cpu") -> None:
        from ..runtime.onnx_backend import session

        self.predict = TfLite(PREDICT, threads)
        self.transfer = session(str(TRANSFER_ONNX), threads, device)
        self.inputs = [i.name for i in self.transfer.get_inputs()]

    def vector(self, rgb: np.ndarray) -> np.ndarray:
        return self.predict.run(_square(rgb, STYLE_SIDE)[None])[0].reshape(-1)

    def paint(self, rgb: np.ndarray, vector: np.ndarray, level: int) -> np.ndarray:
        """Level k paints the frame resized to a long side of min(384, the frame's) / 2^k (sides rounded to 4k),
        so its strokes are 2^k times as large relative to the frame; the painting is resized back."""
        h, w = rgb.shape[:2]
        scale = min(CANVAS, max(h, w)) / 2 ** level / max(h, w)
        nw, nh = (max(16, 4 * round(v * scale / 4)) for v in (w, h))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
        feed = dict(zip(self.inputs, (small[None].astype(np.float32) / 255, vector.reshape(1, 1, 1, -1))))
        out = self.transfer.run(None, feed)[0][0]
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass
class StyleStats:
    transfer_ms: list[float] = field(default_factory=list)  # per painted frame, every level together
    passes: int = 0
    carried: int = 0  # frames shown as a keyframe's painting moved by optical flow

    def summary(self) -> dict:
        return {"transfer_ms": round(float(np.median(self.transfer_ms)), 1) if self.transfer_ms else None,
                "transfer_passes": self.passes, "flow_frames": self.carried}


class StyleEffect:
    """Per frame: the content vector (running average), the mixed vector, one or two pyramid levels, blended."""

    def __init__(self, style: np.ndarray | str | Path, *, strength: float = 1.0, stroke: float = 0.0,
                 paint_every: int = 1, threads: int = 1, device: str = "cpu") -> None:
        if not 0.0 <= strength <= 1.0:
            raise DanmaskError(f"style: --strength must be in 0..1 (got {strength})")
        if not 0.0 <= stroke <= MAX_STROKE:
            raise DanmaskError(f"style: --stroke must be in 0..{MAX_STROKE:g} (got {stroke})")
        if not (isinstance(paint_every, int) and paint_every >= 1):
            raise DanmaskError(f"style: paint_every must be a whole number >= 1 (got {paint_every})")
        image = read_image(style) if not isinstance(style, np.ndarray) else style
        self.model = Stylizer(threads, device)
        self.style = self.model.vector(image)
        self.strength, self.stroke = strength, stroke
        self.content: np.ndarray | None = None
        self.paint_every, self.frames = paint_every, 0
        self.key: tuple[np.ndarray, np.ndarray] | None = None  # (grey keyframe, its painting) for paint_every > 1
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if paint_every > 1 else None
        self.stats = StyleStats()

    def mixed(self, rgb: np.ndarray) -> np.ndarray:
        if self.strength >= 1.0:
            return self.style
        v = self.model.vector(rgb)
        self.content = v if self.content is None else CONTENT_EMA * v + (1 - CONTENT_EMA) * self.content
        return self.strength * self.style + (1 - self.strength) * self.content

    def apply(self, rgb: np.ndarray, frame: VideoFrame | None = None) -> np.ndarray:
        index, self.frames = self.frames, self.frames + 1
        if self.paint_every > 1:
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            if self.key is not None and index % self.paint_every and self.key[0].shape == grey.shape:
                return self.carried(grey)
            out = self.paint(rgb)
            self.key = (grey, out)
            return out
        return self.paint(rgb)

    def carried(self, grey: np.ndarray) -> np.ndarray:
        """The keyframe's painting moved along the flow from this frame back to the keyframe."""
        key_grey, painted = self.key
        flow = self.flow.calc(grey, key_grey, None)  # where each pixel of this frame was in the keyframe
        h, w = grey.shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.stats.carried += 1
        return cv2.remap(painted, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def paint(self, rgb: np.ndarray) -> np.ndarray:
        vector = self.mixed(rgb)
        t0 = time.perf_counter()
        lo = int(math.floor(self.stroke))
        w = self.stroke - lo
        out = self.model.paint(rgb, vector, lo)
        self.stats.passes += 1
        if w > 1e-3:
            out = (1 - w) * out + w * self.model.paint(rgb, vector, lo + 1)
            self.stats.passes += 1
        self.stats.transfer_ms.append((time.perf_counter() - t0) * 1000)
        return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class StyleResult(FxResult):
    stats: StyleStats = field(default_factory=StyleStats)


def run_style(style: str | Path | np.ndarray, source: str | Path, *, output: str | Path | None = None,
              strength: float = 1.0, stroke: float = 0.0, paint_every: int = 1, realtime: bool = False,
              timeout: float = 5.0,
              stop_after: float | None = None, stop: threading.Event | None = None, threads: int = 1,
              device: str = "cpu", progress: bool = False) -> StyleResult:
    """Paint every frame of `source` in the style of the picture `style`.

    Args:
        style: the style picture (a file, or an RGB array).
        source: a video file, a camera (/dev/videoN), a stream URL, or a file with `realtime`.
        output: the stylised video (None: none written).
        strength: 0..1, from the frame's own look (0) to the full style (1), by mixing style vectors.
        stroke: 0..2, the stroke size: level k of the pyramid paints the frame at 1/2^k of the canvas (strokes
            2^k times as large); fractions blend two levels (and cost two passes).
        paint_every: paint every Nth frame only; the frames between carry the last painting along the optical
            flow (faster, inexact where things appear or disappear).
        realtime, timeout, stop_after: live sources (see `danmask live`); stop after `stop_after` seconds.
        stop: set it to end the run cleanly (the output is a complete file of the frames so far).
        device: where the transfer network runs (ONNX Runtime: cpu, cuda, auto); the style network runs on the
            CPU (LiteRT).

    Raises:
        VideoError, OutputError, ModelError, DanmaskError (a missing style picture, a value out of range).

    Example:
        >>> run_style("starry.jpg", "clip.mp4", output="out.mp4", strength=0.7, stroke=1)  # doctest: +SKIP
    """
    from .loop import check_paths

    check_paths(source, output)
    fx = StyleEffect(style, strength=strength, stroke=stroke, paint_every=paint_every, threads=threads,
                     device=device)
    base = run_effect(fx, source, output, realtime=realtime, timeout=timeout, stop_after=stop_after, stop=stop,
                      progress=progress, desc="style")
    return StyleResult(**vars(base), stats=fx.stats)
