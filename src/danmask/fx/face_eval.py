"""Measure `danmask fx face-fuse` where no fusion labels exist: robustness on degraded selfies, flicker on video.

    python -m danmask.fx.face_eval [--images ../shared/data/web-people-pseudo/images] [--limit N]
                                   [--video CLIP ...] [--json]

- **Low-quality pictures.** Every picture of the folder where a face is found clean is degraded the ways phone
  selfies are (`DEGRADATIONS`: heavy JPEG, a quarter of the resolution, sensor noise, underexposure, motion blur).
  Reported per degradation: the share of those faces still found and fused, and how far the 468 landmarks moved
  from the clean picture's (mean distance over the distance between the outer eye corners, NME). Landmarks are
  what the warp follows: a face found with an NME of 0.1 is fused about a tenth of an eye span off.
- **Flicker.** On a video, inside the fused face: the mean absolute change of the output between consecutive
  frames (first difference) and its back-and-forth (second difference, half of |2 x_t - x_t-1 - x_t+1|: shimmer),
  each over the same figure of the source. At or under 1.0 the effect adds no flicker of its own. With the
  landmark smoothing on (default) and off (`--no-smooth`), same frames.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError, DatasetError
from .faces import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, FaceTracker


def _jpeg(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 8])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _low_res(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _noise(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)


def _dark(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dim = 255 * (rgb / 255.0) ** 2.2 * 0.5
    return np.clip(dim + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)


def _motion(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = max(3, rgb.shape[1] // 60) | 1
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2] = 1.0 / n
    return cv2.filter2D(rgb, -1, kernel)


DEGRADATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "jpeg q8": _jpeg, "quarter resolution": _low_res, "noise sigma 20": _noise,
    "dark (gamma 2.2, half)": _dark, "motion blur": _motion,
}


def _face(tracker: FaceTracker, rgb: np.ndarray) -> np.ndarray | None:
    """The largest face's landmarks (468, 2) in a still, or None."""
    tracker.reset()
    faces = tracker.step(rgb, 0.0)
    if not faces:
        return None
    return max(faces, key=lambda f: np.ptp(f.landmarks[:, 0])).landmarks[:, :2]


def robustness(folder: str | Path, limit: int | None = None, seed: int = 0) -> dict:
    """Faces found and landmark NME under each degradation, over the pictures with a face found clean."""
    files = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    if not files:
        raise DatasetError(f"{folder}: no pictures (.jpg, .png) here")
    tracker = FaceTracker(max_faces=4, smooth=False)
    rng = np.random.default_rng(seed)
    found = {name: [] for name in DEGRADATIONS}
    nme = {name: [] for name in DEGRADATIONS}
    clean_faces = 0
    for path in files:
        rgb = cv2.imread(str(path))
        if rgb is None:
            raise DatasetError(f"{path}: cannot read the picture")
        rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        clean = _face(tracker, rgb)
        if clean is None:
            continue
        clean_faces += 1
        eyes = float(np.linalg.norm(clean[RIGHT_EYE_OUTER] - clean[LEFT_EYE_OUTER]))
        for name, degrade in DEGRADATIONS.items():
            seen = _face(tracker, degrade(rgb, rng))
            same = seen is not None and abs(float(np.median(seen[:, 0]) - np.median(clean[:, 0]))) < eyes
            found[name].append(same)
            if same:
                nme[name].append(float(np.linalg.norm(seen - clean, axis=1).mean()) / max(eyes, 1.0))
    return {"pictures": len(files), "faces_found_clean": clean_faces,
            "degradations": {name: {"found": round(float(np.mean(found[name])), 4) if clean_faces else None,
                                    "nme_median": round(float(np.median(nme[name])), 4) if nme[name] else None,
                                    "nme_p90": round(float(np.percentile(nme[name], 90)), 4) if nme[name] else None}
                             for name in DEGRADATIONS}}


def flicker(video: str | Path, frames: int = 150, smooth: bool = True) -> dict:
    """Output change / source change between consecutive frames inside the fused faces (template: the first
    frame mirrored, so the face differs from the one it is laid on)."""
    from ..video import iter_frames
    from .face_fuse import FaceFuseEffect

    clip = []
    for frame in iter_frames(video):
        clip.append(frame)
        if len(clip) >= frames:
            break
    if len(clip) < 2:
        raise DatasetError(f"{video}: fewer than two frames")
    try:
        fx = FaceFuseEffect(np.ascontiguousarray(clip[0].rgb[:, ::-1]), smooth=smooth)
    except DanmaskError as exc:
        raise DatasetError(f"{video}: {exc}") from exc
    change = {"output": [], "source": []}  # first differences inside the face
    shimmer = {"output": [], "source": []}  # second differences: back-and-forth from frame to frame
    history: list[tuple[np.ndarray, np.ndarray]] = []
    for frame in clip:
        source = frame.rgb.astype(np.int16)
        output = fx.apply(frame.rgb.copy(), frame).astype(np.int16)
        region = np.zeros(source.shape[:2], np.uint8)
        for face in fx.tracker.faces:
            cv2.fillConvexPoly(region, cv2.convexHull(np.round(face.landmarks[:, :2]).astype(np.int32)), 1)
        history = (history + [(source, output)])[-3:]
        inside = region.astype(bool)
        if len(history) >= 2 and inside.any():
            for k, name in enumerate(("source", "output")):
                change[name].append(float(np.abs(history[-1][k] - history[-2][k])[inside].mean()))
                if len(history) == 3:
                    second = np.abs(2 * history[-2][k] - history[-1][k] - history[-3][k])[inside].mean() / 2
                    shimmer[name].append(float(second))
    out = {"video": str(video), "frames": len(clip), "face_frames": len(change["output"]), "smooth": smooth}
    if change["output"]:
        mean = {k: {n: float(np.mean(v[n])) for n in v} for k, v in (("change", change), ("shimmer", shimmer))}
        out.update({f"{k}_{n}": round(mean[k][n], 2) for k in mean for n in mean[k]},
                   change_ratio=round(mean["change"]["output"] / max(mean["change"]["source"], 1e-6), 3),
                   shimmer_ratio=round(mean["shimmer"]["output"] / max(mean["shimmer"]["source"], 1e-6), 3))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m danmask.fx.face_eval", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/web-people-pseudo/images", help="folder of pictures")
    ap.add_argument("--limit", type=int, help="only the first N pictures")
    ap.add_argument("--video", nargs="*", default=["../shared/data/clips/carphone_pristine.mp4"],
                    help="clips for the flicker measure (default: carphone)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    try:
        report = {"robustness": robustness(args.images, args.limit),
                  "flicker": [flicker(v, smooth=s) for v in args.video for s in (True, False)]}
    except DanmaskError as exc:  # a folder without pictures, a missing or damaged video
        print(f"face_eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    r = report["robustness"]
    print(f"faces found in {r['faces_found_clean']} of {r['pictures']} clean pictures; under each degradation:")
    for name, d in r["degradations"].items():
        nme = f"landmark NME median {d['nme_median']:.3f}, p90 {d['nme_p90']:.3f}" if d["nme_median"] is not None else ""
        print(f"  {name:24s} found {100 * (d['found'] or 0):5.1f} %  {nme}")
    for f in report["flicker"]:
        if f["face_frames"]:
            print(f"flicker {Path(f['video']).name} ({'smoothed' if f['smooth'] else 'no smoothing'}, "
                  f"{f['face_frames']} face frames): change x{f['change_ratio']} of the source's "
                  f"({f['change_output']} / {f['change_source']}), shimmer x{f['shimmer_ratio']} "
                  f"({f['shimmer_output']} / {f['shimmer_source']})")
        else:
            print(f"flicker {Path(f['video']).name}: no face fused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
