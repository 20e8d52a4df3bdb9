"""`danmask fx face-fuse TEMPLATE SOURCE`: a template face laid onto every face, following its landmarks.

Per face and frame (`fx.faces`: MediaPipe face detector + 468-landmark face mesh, smoothed in time):

1. **Warp** (pose-aware, piecewise affine): the template's landmarks are split into Delaunay triangles once;
   each triangle is mapped by its own affine map onto the same triangle of the face. The triangles are drawn far
   to near by the face's landmark depth, so when the head turns the near side covers the far one. One
   `cv2.remap` does every pixel (a triangle-index map + per-triangle affine maps, no per-triangle loop over
   pixels).
2. **Skin tone**: a lookup table per colour channel (histogram matching of the warped template to the face,
   inside the face region), averaged over frames per face so the tone does not flicker.
3. **Blend**: Poisson (`cv2.seamlessClone`, default) or a feathered alpha edge (`blend="feather"`), inside the
   face region slightly shrunk.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from ..video import VideoFrame
from .faces import Face, FaceTracker
from .loop import FxResult, run_effect
from .style import read_image

BLENDS = ("seamless", "feather")
LUT_EMA = 0.3  # weight of the newest frame's lookup table


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) index triangles of a Delaunay triangulation of (N, 2) points."""
    x0, y0 = points.min(0) - 1
    x1, y1 = points.max(0) + 1
    sub = cv2.Subdiv2D((int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1 - x0)) + 2, int(np.ceil(y1 - y0)) + 2))
    index = {}
    for i, p in enumerate(points):
        key = (float(p[0]), float(p[1]))
        if key not in index:
            index[key] = i
            sub.insert(key)
    tris = []
    for t in sub.getTriangleList():
        corners = [(float(t[0]), float(t[1])), (float(t[2]), float(t[3])), (float(t[4]), float(t[5]))]
        if all(c in index for c in corners):
            tris.append([index[c] for c in corners])
    return np.array(tris, np.int32)


def piecewise_affine(src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, triangles: np.ndarray,
                     size: tuple[int, int], depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`src` warped so that each triangle of `src_pts` lands on the same triangle of `dst_pts`.

    Returns (warped image of (h, w) `size`, bool mask of the pixels any triangle covers). `depth` (N,): draw
    triangles far (large) to near, so that nearer ones win where they overlap.
    """
    h, w = size
    d = dst_pts[triangles].astype(np.float64)  # (T, 3, 2)
    s = src_pts[triangles].astype(np.float64)
    a = np.concatenate([d, np.ones((len(d), 3, 1))], 2)  # (T, 3, 3): rows [x, y, 1]
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-6
    maps = np.zeros((len(d), 2, 3))
    maps[ok] = np.transpose(np.linalg.solve(a[ok], s[ok]), (0, 2, 1))  # dst (x, y, 1) -> src (x, y)
    order = np.argsort(-depth[triangles].mean(1)) if depth is not None else np.arange(len(d))
    index = np.full((h, w), -1, np.int32)
    for t in order:
        if ok[t]:
            cv2.fillConvexPoly(index, np.round(d[t]).astype(np.int32), int(t))
    covered = index >= 0
    ys, xs = np.nonzero(covered)
    m = maps[index[ys, xs]]
    map_x = np.full((h, w), -1, np.float32)
    map_y = np.full((h, w), -1, np.float32)
    map_x[ys, xs] = m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2]
    map_y[ys, xs] = m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2]
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, covered


def match_lut(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(256, C) lookup table mapping the values of `source` (N, C) so that their histogram per channel matches
    `reference` (M, C)'s (cumulative-distribution matching)."""
    lut = np.zeros((256, source.shape[1]), np.float32)
    levels = np.arange(256)
    for c in range(source.shape[1]):
        cs = np.cumsum(np.bincount(source[:, c], minlength=256)).astype(np.float64)
        cr = np.cumsum(np.bincount(reference[:, c], minlength=256)).astype(np.float64)
        cs /= max(cs[-1], 1)
        cr /= max(cr[-1], 1)
        lut[:, c] = np.interp(cs, cr, levels)
    return lut


def apply_lut(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    out = np.empty_like(rgb)
    for c in range(3):
        out[..., c] = np.clip(lut[:, c] + 0.5, 0, 255).astype(np.uint8)[rgb[..., c]]
    return out


@dataclass
class Template:
    """The template picture, its face's landmarks and the Delaunay triangles over them."""

    rgb: np.ndarray
    landmarks: np.ndarray  # (468, 3)
    triangles: np.ndarray

    @classmethod
    def load(cls, template: str | Path | np.ndarray, threads: int = 1) -> Template:
        rgb = read_image(template) if not isinstance(template, np.ndarray) else template
        faces = FaceTracker(max_faces=1, threads=threads, smooth=False).step(rgb, 0.0)
        if not faces:
            name = template if not isinstance(template, np.ndarray) else "the template"
            raise DanmaskError(f"{name}: no face found in the template picture")
        lm = faces[0].landmarks
        return cls(rgb, lm, delaunay(lm[:, :2]))


def fuse(frame: np.ndarray, face: Face, template: Template, *, blend: str = "seamless",
         lut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """`frame` with the template's face laid onto `face`; returns (picture, the skin-tone table used)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = face.box()
    pad = 4
    bx0, by0 = max(0, int(x0) - pad), max(0, int(y0) - pad)
    bx1, by1 = min(w, int(np.ceil(x1)) + pad + 1), min(h, int(np.ceil(y1)) + pad + 1)
    if bx1 - bx0 < 8 or by1 - by0 < 8:
        return frame, lut
    dst = face.landmarks[:, :2] - [bx0, by0]
    warped, covered = piecewise_affine(template.rgb, template.landmarks[:, :2], dst, template.triangles,
                                       (by1 - by0, bx1 - bx0), depth=face.landmarks[:, 2])
    mask = cv2.erode(covered.astype(np.uint8) * 255, np.ones((3, 3), np.uint8), iterations=2)
    inside = mask > 0
    if inside.sum() < 50:
        return frame, lut
    region = frame[by0:by1, bx0:bx1]
    new = match_lut(warped[inside], region[inside])
    lut = new if lut is None else LUT_EMA * new + (1 - LUT_EMA) * lut
    warped = apply_lut(warped, lut)
    out = frame.copy()
    if blend == "seamless":
        full = np.zeros_like(frame)
        full[by0:by1, bx0:bx1] = warped
        full_mask = np.zeros((h, w), np.uint8)
        full_mask[by0:by1, bx0:bx1] = mask
        ys, xs = np.nonzero(full_mask)
        centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        if xs.min() > 0 and ys.min() > 0 and xs.max() < w - 1 and ys.max() < h - 1:
            return cv2.seamlessClone(full, frame, full_mask, centre, cv2.NORMAL_CLONE), lut
    radius = max(1, int(0.04 * max(bx1 - bx0, by1 - by0))) * 2 + 1
    alpha = cv2.GaussianBlur(cv2.erode(mask, np.ones((radius, radius), np.uint8)), (radius * 2 + 1,) * 2, 0)
    alpha = (alpha.astype(np.float32) / 255)[..., None]
    out[by0:by1, bx0:bx1] = (warped * alpha + region * (1 - alpha) + 0.5).astype(np.uint8)
    return out, lut


@dataclass
class FuseStats:
    faces_ms: list[float] = field(default_factory=list)
    fuse_ms: list[float] = field(default_factory=list)
    faces: int = 0  # face-frames fused

    def summary(self) -> dict:
        med = lambda v: round(float(np.median(v)), 1) if v else None  # noqa: E731
        return {"faces_ms": med(self.faces_ms), "fuse_ms": med(self.fuse_ms), "face_frames": self.faces}


class FaceFuseEffect:
    def __init__(self, template: str | Path | np.ndarray, *, blend: str = "seamless", max_faces: int = 2,
                 smooth: bool = True, threads: int = 1) -> None:
        if blend not in BLENDS:
            raise DanmaskError(f"face-fuse: blend must be one of {', '.join(BLENDS)} (got {blend!r})")
        self.template = Template.load(template, threads)
        self.tracker = FaceTracker(max_faces=max_faces, threads=threads, smooth=smooth)
        self.blend = blend
        self.luts: dict[int, np.ndarray] = {}
        self.stats = FuseStats()

    def apply(self, rgb: np.ndarray, frame: VideoFrame) -> np.ndarray:
        t0 = time.perf_counter()
        faces = self.tracker.step(rgb, frame.time)
        t1 = time.perf_counter()
        for face in faces:
            rgb, self.luts[face.id] = fuse(rgb, face, self.template, blend=self.blend, lut=self.luts.get(face.id))
        self.luts = {f.id: self.luts[f.id] for f in faces if self.luts.get(f.id) is not None}
        self.stats.faces += len(faces)
        self.stats.faces_ms.append((t1 - t0) * 1000)
        self.stats.fuse_ms.append((time.perf_counter() - t1) * 1000)
        return rgb


@dataclass
class FaceFuseResult(FxResult):
    stats: FuseStats = field(default_factory=FuseStats)


def run_face_fuse(template: str | Path | np.ndarray, source: str | Path, *, output: str | Path | None = None,
                  blend: str = "seamless", max_faces: int = 2, smooth: bool = True, realtime: bool = False,
                  timeout: float = 5.0, stop_after: float | None = None, stop: threading.Event | None = None,
                  threads: int = 1, device: str = "cpu", progress: bool = False) -> FaceFuseResult:
    """Lay the face of the picture `template` onto every face of `source`.

    Args:
        template: a picture with one face (a file, or an RGB array).
        source: a video file, a camera (/dev/videoN), a stream URL, or a file with `realtime`.
        output: the video with the faces fused (None: none written).
        blend: "seamless" (Poisson blending) or "feather" (a soft alpha edge; cheaper).
        max_faces: faces followed at once.
        smooth: smooth the landmarks in time (One Euro filter) so video does not flicker.
        realtime, timeout, stop_after: live sources (see `danmask live`); stop after `stop_after` seconds.
        stop: set it to end the run cleanly (the output is a complete file of the frames so far).
        device: accepted for the CLI's common shape; the face models run on the CPU (LiteRT).

    Raises:
        VideoError, OutputError, ModelError, DanmaskError (no template picture, no face in it, a bad blend).

    Example:
        >>> run_face_fuse("template.png", "clip.mp4", output="fused.mp4")  # doctest: +SKIP
    """
    from .loop import check_paths

    check_paths(source, output)
    fx = FaceFuseEffect(template, blend=blend, max_faces=max_faces, smooth=smooth, threads=threads)
    base = run_effect(fx, source, output, realtime=realtime, timeout=timeout, stop_after=stop_after, stop=stop,
                      progress=progress, desc="face-fuse")
    return FaceFuseResult(**vars(base), stats=fx.stats)
