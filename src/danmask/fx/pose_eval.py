"""Measure `danmask fx pose` where no keypoints are labelled: against person masks and body-part labels.

    python -m danmask.fx.pose_eval [--coco ../shared/data/coco-person] [--cihp ../shared/data/cihp-samples]
                                   [--peer] [--json]

No keypoint annotations are at hand (COCO's keypoint files are not here), so two checks stand in for PCK, both on
images no danmask model learnt its landmarks from (the landmarks are MediaPipe's, untouched):

- **COCO person masks** (every image of the folder): a keypoint shown (visibility >= 0.5) is *on a person* when it
  lies within `TOLERANCE` of the image's diagonal of the union of the annotated people (COCO polygons are coarse).
  Reported: the share of shown keypoints on a person (precision), images with people where anyone was found,
  people found per image against the annotated count, and people reported on images without anyone.
- **CIHP body-part labels**: a shown keypoint *hits its part* when a label it may lie on (`ALLOWED`: the nose on
  the face or hair, a knee on trousers, a skirt or a leg, ...) is within the tolerance. Where it lands on a sided
  label (arm, leg, shoe), the side is checked too: CIHP names sides from the person's own point of view.

Both are looser than PCK (a wrist on the wrong sleeve of the right arm counts), so they find gross errors (a
skeleton on the background, limbs swapped), not a few pixels of drift. `--peer` runs MediaPipe Pose's own
solution (one person, the `mediapipe` wheel) on the same images.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError

TOLERANCE = 0.02  # of the image diagonal
# CIHP labels: 0 background, 1 hat, 2 hair, 3 glove, 4 sunglasses, 5 upper-clothes, 6 dress, 7 coat, 8 socks,
# 9 pants, 10 torso-skin, 11 scarf, 12 skirt, 13 face, 14 left-arm, 15 right-arm, 16 left-leg, 17 right-leg,
# 18 left-shoe, 19 right-shoe
HEAD, UPPER = {1, 2, 4, 13}, {5, 6, 7, 10, 11}
ARMS, LEGS, FEET = {3, 14, 15}, {9, 12, 16, 17}, {8, 18, 19}
ALLOWED = {  # MediaPipe body landmark index ranges -> CIHP labels they may lie on
    range(0, 11): HEAD,  # nose, eyes, ears, mouth
    range(11, 13): UPPER | ARMS | HEAD,  # shoulders (on the edge of the torso, under hair)
    range(13, 23): UPPER | ARMS,  # elbows, wrists, hand points (a sleeve is upper-clothes in CIHP)
    range(23, 25): UPPER | LEGS,  # hips
    range(25, 27): LEGS | {6, 7},  # knees (under a dress or a coat)
    range(27, 33): LEGS | FEET,  # ankles, heels, toes
}
SIDED = {14: "left", 15: "right", 16: "left", 17: "right", 18: "left", 19: "right"}
GROUPS = {"head": range(0, 11), "shoulders": range(11, 13), "arms and hands": range(13, 23),
          "hips": range(23, 25), "knees": range(25, 27), "feet": range(27, 33)}


def allowed_labels(index: int) -> set[int]:
    return next(labels for r, labels in ALLOWED.items() if index in r)


def side_of(index: int) -> str | None:
    """The person's side of a body landmark (MediaPipe: odd indices from the shoulders down are the left)."""
    return None if index < 11 else ("left" if index % 2 else "right")


class PoseRunner:
    """Keypoints of everyone in a still: `danmask fx pose`'s tracker, fresh per image (one frame, t = 0)."""

    name = "danmask fx pose"

    def __init__(self, max_people: int = 6, masks: bool = False) -> None:
        from ..people.salience import SalienceRule
        from ..people.tracker import TrackerConfig
        from .pose import build_tracker

        self.tracker = build_tracker(TrackerConfig(max_people=max_people, salience=SalienceRule(everyone=True)),
                                     masks=masks)

    def __call__(self, rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        self.tracker.reset()
        return [(p.result.landmarks[:33], p.result.visibility[:33]) for p in self.tracker.step(rgb, 0.0)]


class MediaPipePoseRunner:
    """MediaPipe Pose's own solution on a still (one person, the `mediapipe` wheel's full model)."""

    name = "MediaPipe Pose (full, one person)"

    def __init__(self) -> None:
        import os
        import warnings

        os.environ.setdefault("GLOG_minloglevel", "2")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mediapipe.python.solutions.pose import Pose
        self.pose = Pose(static_image_mode=True, model_complexity=1)

    def __call__(self, rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        found = self.pose.process(np.ascontiguousarray(rgb)).pose_landmarks
        if found is None:
            return []
        h, w = rgb.shape[:2]
        lm = np.array([[p.x * w, p.y * h, p.visibility] for p in found.landmark], np.float64)
        return [(lm[:, :2], lm[:, 2])]


def _near(label_map: np.ndarray, radius: int) -> list[np.ndarray]:
    """For each label, a map of pixels within `radius` of it (one dilation per label present)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out = []
    for k in range(20):
        m = (label_map == k).astype(np.uint8)
        out.append(cv2.dilate(m, kernel).astype(bool) if m.any() else m.astype(bool))
    return out


def _shown(people, shape: tuple[int, int]):
    """(person, landmark index, x, y) of every keypoint shown (visibility >= 0.5) inside the image."""
    h, w = shape
    for n, (points, visibility) in enumerate(people):
        for i, ((x, y), v) in enumerate(zip(points, visibility)):
            if v >= 0.5 and 0 <= x < w and 0 <= y < h:
                yield n, i, int(x), int(y)


def coco(folder: str | Path, runner) -> dict:
    """Keypoints against COCO's person masks (`index.csv`, `images/`, `masks/`)."""
    folder = Path(folder)
    index = folder / "index.csv"
    if not index.is_file():
        raise DatasetError(f"{folder}: no index.csv (expects the coco-person layout: index.csv, images/, masks/)")
    rows = list(csv.DictReader(index.open()))
    on = shown = found_any = with_people = 0
    found, annotated, false_people, empty = [], [], 0, 0
    for row in rows:
        rgb = cv2.imread(str(folder / "images" / f"{row['file']}.jpg"))
        mask = cv2.imread(str(folder / "masks" / f"{row['file']}.png"), cv2.IMREAD_GRAYSCALE)
        if rgb is None or mask is None:
            raise DatasetError(f"{folder}: cannot read image or mask {row['file']}")
        people = runner(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB))
        if int(row["n_person_instances"]) == 0:
            empty += 1
            false_people += len(people)
            continue
        with_people += 1
        found_any += bool(people)
        found.append(len(people))
        annotated.append(int(row["n_person_instances"]))
        radius = max(1, round(TOLERANCE * float(np.hypot(*mask.shape))))
        near = cv2.dilate((mask > 127).astype(np.uint8),
                          cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)).astype(bool)
        for _, _, x, y in _shown(people, mask.shape):
            shown += 1
            on += bool(near[y, x])
    found_a, annotated_a = np.array(found), np.array(annotated)
    return {"images_with_people": with_people, "images_without": empty,
            "keypoints_shown": shown, "on_a_person": round(on / max(shown, 1), 4),
            "images_where_someone_was_found": round(found_any / max(with_people, 1), 4),
            "people_found_of_annotated": round(float(np.minimum(found_a, annotated_a).sum()
                                                     / max(annotated_a.sum(), 1)), 4),
            "people_on_empty_images": round(false_people / max(empty, 1), 4)}


def cihp(folder: str | Path, runner) -> dict:
    """Keypoints against CIHP part labels (`images/<id>.jpg`, `parsing/<id>.png`)."""
    folder = Path(folder)
    pairs = [(p, folder / "parsing" / f"{p.stem}.png") for p in sorted((folder / "images").glob("*.jpg"))]
    pairs = [(i, label) for i, label in pairs if label.is_file()]
    if not pairs:
        raise DatasetError(f"{folder}: needs images/<id>.jpg with parsing/<id>.png (CIHP layout)")
    hits = {g: [0, 0] for g in GROUPS}
    sided = [0, 0]
    people = 0
    for image, label in pairs:
        rgb = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        labels = cv2.imread(str(label), cv2.IMREAD_GRAYSCALE)
        near = _near(labels, max(1, round(TOLERANCE * float(np.hypot(*labels.shape)))))
        found = runner(rgb)
        people += len(found)
        for _, i, x, y in _shown(found, labels.shape):
            group = next(g for g, r in GROUPS.items() if i in r)
            here = {k for k in allowed_labels(i) if near[k][y, x]}
            hits[group][0] += bool(here)
            hits[group][1] += 1
            on_sided = {SIDED[k] for k in here if k in SIDED}
            if on_sided and side_of(i) and len(on_sided) == 1:
                sided[0] += side_of(i) in on_sided
                sided[1] += 1
    total = [sum(v[0] for v in hits.values()), sum(v[1] for v in hits.values())]
    return {"images": len(pairs), "people_found": people,
            "part_hit": round(total[0] / max(total[1], 1), 4), "keypoints_shown": total[1],
            "by_group": {g: {"hit": round(a / b, 4) if b else None, "shown": b} for g, (a, b) in hits.items()},
            "right_side": round(sided[0] / sided[1], 4) if sided[1] else None, "sided_keypoints": sided[1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m danmask.fx.pose_eval", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coco", default="../shared/data/coco-person", help="coco-person folder (index.csv, images/, masks/)")
    ap.add_argument("--cihp", default="../shared/data/cihp-samples", help="CIHP-layout folder (images/, parsing/)")
    ap.add_argument("--peer", action="store_true", help="also MediaPipe Pose's own solution (needs `mediapipe`)")
    ap.add_argument("--masks", action="store_true", help="the pose graph with its mask branch (person-track's)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    runners = [PoseRunner(masks=args.masks)]
    if args.peer:
        try:
            runners.append(MediaPipePoseRunner())
        except ImportError:
            print("pose_eval: --peer needs the mediapipe package (pip install 'mediapipe==0.10.14' 'protobuf<5')",
                  file=sys.stderr)
            return 2
    try:
        report = {r.name: {"coco": coco(args.coco, r), "cihp": cihp(args.cihp, r)} for r in runners}
    except DatasetError as exc:
        print(f"pose_eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    for name, r in report.items():
        c, p = r["coco"], r["cihp"]
        print(f"{name}\n  COCO ({c['images_with_people']} images with people, {c['images_without']} without): "
              f"{100 * c['on_a_person']:.1f} % of {c['keypoints_shown']} shown keypoints on a person; someone found "
              f"in {100 * c['images_where_someone_was_found']:.1f} % of images; {100 * c['people_found_of_annotated']:.1f}"
              f" % of annotated people; {c['people_on_empty_images']:.3f} people per empty image\n"
              f"  CIHP ({p['images']} images, {p['people_found']} people found): {100 * p['part_hit']:.1f} % of "
              f"{p['keypoints_shown']} keypoints on their part ("
              + ", ".join(f"{g} {100 * v['hit']:.0f} %" for g, v in p["by_group"].items() if v["hit"] is not None)
              + (f"); right side {100 * p['right_side']:.1f} % of {p['sided_keypoints']}" if p["right_side"] is not None
                 else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
