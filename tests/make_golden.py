"""Golden outputs of the shipped weights: what each graph computes on fixed inputs made here, stored small.

tests/test_golden_outputs.py recomputes them and fails when a weight file no longer computes what it did (a
swapped, truncated or retrained file). After changing weights on purpose (say a retrained person-pose.onnx),
regenerate and commit tests/golden/outputs.json with them:

    python tests/make_golden.py                  # every entry
    python tests/make_golden.py person-pose      # only the entries named

Entries: every registered whole-frame model (backend "onnx"), and the two graphs of the composite person-track
model, `person-detector` and `person-pose`, run directly. Inputs are danmask.synthetic's person frame (made in
memory, never encoded, so bit-exact everywhere) at several sizes, with its true mask as the prior of prior models.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from danmask.runtime import list_models, load_model
from danmask.runtime.onnx_backend import session
from danmask.synthetic import person_frame

GOLDEN = Path(__file__).resolve().parent / "golden" / "outputs.json"
GRAPHS = ("person-detector", "person-pose")  # the person-track model's graphs, run on their own
GRID = (8, 8)  # (h, w) that masks are area-averaged to before they are stored
# absolute tolerance per kind of number: probabilities, pixel coordinates
ATOL = {"probability": 2e-3, "pixels": 0.1}
DIGITS = 5


def golden_names() -> list[str]:
    """Every entry the golden file must hold."""
    return [name for name, spec in list_models().items() if spec.backend == "onnx"] + list(GRAPHS)


def weight_file(name: str) -> Path:
    if name in GRAPHS:
        part = {"person-detector": "detector", "person-pose": "landmarker"}[name]
        return Path(list_models()["person-track"].extra["parts"][part])
    return Path(list_models()[name].path)


def _grid(mask: np.ndarray) -> list[float]:
    return _rounded(cv2.resize(np.asarray(mask, np.float32), GRID[::-1], interpolation=cv2.INTER_AREA))


def _rounded(values) -> list[float]:
    return [round(float(v), DIGITS) for v in np.asarray(values, np.float64).ravel()]


def whole_frame_values(name: str, path: str | None = None, device: str = "cpu") -> dict[str, list[float]]:
    """A whole-frame model's masks on two person frames (the second of another size and aspect, without prior).
    `path` runs another weight file under this model's spec (what a swapped file would do)."""
    from dataclasses import replace

    from danmask.runtime.registry import resolve

    spec = resolve(name)
    spec = replace(spec, path=path) if path else spec
    model = load_model(name, device=device) if not path else _onnx_model(spec, device)
    first, truth = person_frame((180, 320), seed=0)
    second, _ = person_frame((240, 240), seed=1)
    prior = truth.astype(np.float32) if spec.takes_prior else None
    return {"person": _grid(model.predict(first, prior)), "other": _grid(model.predict(second, None))}


def _onnx_model(spec, device: str):
    from danmask.runtime.onnx_backend import OnnxSegModel

    return OnnxSegModel(spec, threads=1, device=device)


def _src(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 RGB in [0, 1], the graphs' `src`."""
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def detector_values(path: str | None = None, device: str = "cpu") -> dict[str, list[float]]:
    """person-detector.onnx on a 416x416 person frame: the 10 best scores, the mean score and box, and the
    score-weighted box (stable where single boxes may trade places)."""
    graph = session(str(path or weight_file("person-detector")), 1, device)
    boxes, scores = graph.run(["boxes", "scores"], {"src": _src(person_frame((416, 416), seed=2)[0])})
    boxes, scores = boxes[0].astype(np.float64), scores[0].astype(np.float64)
    weighted = (boxes * scores[:, None]).sum(0) / max(scores.sum(), 1e-9)
    return {"top_scores": _rounded(np.sort(scores)[::-1][:10]), "mean_score": _rounded([scores.mean()]),
            "mean_box": _rounded(boxes.mean(0)), "weighted_box": _rounded(weighted)}


def pose_values(path: str | None = None, device: str = "cpu") -> dict[str, list[float]]:
    """person-pose.onnx on a batch of two 256x256 crops: landmark x, y, presence, and the masks."""
    graph = session(str(path or weight_file("person-pose")), 1, device)
    crops = np.concatenate([_src(person_frame((256, 256), seed=s)[0]) for s in (3, 4)])
    landmarks, presence, mask = graph.run(["landmarks", "presence", "mask"], {"src": crops})
    return {"landmarks_xy": _rounded(landmarks[:, :, :2]), "presence": _rounded(presence),
            "mask": [v for m in mask[:, 0] for v in _grid(m)]}


def _maker(name: str) -> tuple[Callable[..., dict], dict[str, str]]:
    """Entry `name`'s function of (path, device), and the kind of number ("probability", "pixels") of each key."""
    if name == "person-detector":
        return detector_values, {"top_scores": "probability", "mean_score": "probability", "mean_box": "pixels",
                                 "weighted_box": "pixels"}
    if name == "person-pose":
        return pose_values, {"landmarks_xy": "pixels", "presence": "probability", "mask": "probability"}
    return (lambda path=None, device="cpu": whole_frame_values(name, path, device)), {"person": "probability",
                                                                                       "other": "probability"}


def compute(name: str, path: str | None = None, device: str = "cpu") -> dict[str, list[float]]:
    """The golden values of entry `name`, from its own weight file or from `path`."""
    return _maker(name)[0](path=path, device=device)


def mismatches(name: str, want: dict[str, list[float]], got: dict[str, list[float]], scale: float = 1.0) -> list[str]:
    """Keys of entry `name` whose values moved beyond the tolerance (x `scale`), with the largest move."""
    kinds = _maker(name)[1]
    out = []
    for key, kind in kinds.items():
        a, b = np.asarray(want.get(key, []), np.float64), np.asarray(got.get(key, []), np.float64)
        if a.shape != b.shape:
            out.append(f"{key}: {b.size} values, golden has {a.size}")
        elif not np.allclose(a, b, rtol=0.0, atol=ATOL[kind] * scale):
            out.append(f"{key}: moved by up to {np.abs(a - b).max():.4g} (tolerance {ATOL[kind] * scale:g})")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str]) -> int:
    names = argv or golden_names()
    unknown = sorted(set(names) - set(golden_names()))
    if unknown:
        print(f"make_golden: unknown entries {', '.join(unknown)}; valid: {', '.join(golden_names())}",
              file=sys.stderr)
        return 2
    doc = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    entries = {k: v for k, v in doc.get("entries", {}).items() if k in golden_names()}
    for name in names:
        path = weight_file(name)
        entries[name] = {"file": path.name, "sha256": sha256(path), "values": compute(name)}
        print(f"{name}: {path.name}")
    doc = {"regenerate": "python tests/make_golden.py [NAME ...]", "grid": list(GRID), "atol": ATOL,
           "entries": dict(sorted(entries.items()))}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
