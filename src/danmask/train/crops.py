"""Person-centred training crops for the crop segmenter, made by the runtime's own tracker.

Every crop is framed exactly as at run time: the person tracker (detector, four turns, body-aligned ROI,
followed frame to frame through a sequence) says where each person is, and the crop around that ROI is cut with
1.5x context so training can jitter it (`CropDataset`). Labels, by source:

- human masks (DAVIS, COCO): the mask of the person the crop is about. DAVIS labels one salient person, so only
  the tracked person who matches it gives a crop (others are unlabelled, not background); COCO labels every
  person as one union, so the connected parts of that union that the crop's person does not cover are ignored;
  COCO's coarse polygon edges are ignored where the two teachers disagree with them;
- model-made masks (web photos) and unlabelled clips: the teachers, MediaPipe Pose heavy's mask in the same crop
  (Apache-2.0; a crop model of the same family, four times larger) and the RVM matting teacher's alpha over
  the whole frame (GPL-3.0: labels only), as the label where they agree and `ignore` where they disagree;
- no-person frames (DAVIS negatives, the dog and animation clips): any crop the tracker makes there is labelled
  empty, which teaches the crop segmenter not to find people in animals.

Each sample is `<group>/<key>.jpg` (context crop, 384 px), `.label.png`, `.ignore.png` under the cache folder,
and `index.csv` (group, key, sequence) for leave-one-sequence-out splits.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..people.landmarks import CROP_SIDE
from ..people.roi import Roi, paste
from ..people.tracker import Person, PersonTracker, TrackerConfig
from .teachers import IGNORE_BAND, RvmTeacher, Sample, clip_samples, davis_samples, folder_samples

CONTEXT = 1.5  # the stored crop spans this many ROI sides
STORED_SIDE = round(CROP_SIDE * CONTEXT)  # 384 px
MATCH_IOU = 0.3  # a tracked person is the labelled one when their mask overlaps the label this much


@dataclass
class CropSample:
    group: str
    key: str
    sequence: str
    rgb: np.ndarray  # (384, 384, 3) uint8, the ROI with context
    label: np.ndarray  # (384, 384) uint8 0..255
    ignore: np.ndarray  # (384, 384) uint8 0/255


def context_roi(roi: Roi) -> Roi:
    return Roi(roi.cx, roi.cy, roi.size * CONTEXT, roi.angle)


def cut(image: np.ndarray, roi: Roi, nearest: bool = False) -> np.ndarray:
    """The ROI with context, STORED_SIDE square (outside the frame: zeros)."""
    m = context_roi(roi).crop_matrix(STORED_SIDE)
    return cv2.warpAffine(image, m, (STORED_SIDE, STORED_SIDE),
                          flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def outside(roi: Roi, size: tuple[int, int]) -> np.ndarray:
    """255 where the context crop lies outside the frame: padding, not background."""
    return 255 - cut(np.full(size, 255, np.uint8), roi, nearest=True)


def subject_parts(label: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a union-of-people label into the part the tracked person covers and the other people (ignored)."""
    fg = label > 127
    n, comp = cv2.connectedComponents(fg.astype(np.uint8))
    overlap = np.bincount(comp[fg & (person > 0.5)], minlength=n)
    sizes = np.bincount(comp[fg], minlength=n)
    mine = np.nonzero(overlap > 0.2 * np.maximum(sizes, 1))[0]
    mine = mine[mine > 0]
    subject = np.isin(comp, mine) & fg
    return subject, fg & ~subject


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


class HeavyTeacher:
    """MediaPipe Pose heavy's mask in a crop (LiteRT; the .tflite from `npm pack @mediapipe/pose`)."""

    def __init__(self, path: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=path, num_threads=2)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        outs = self.interp.get_output_details()
        self.out = next(d["index"] for d in outs if tuple(d["shape"][1:]) == (CROP_SIDE, CROP_SIDE, 1))

    def __call__(self, rgb: np.ndarray, roi: Roi) -> np.ndarray:
        """The teacher's probability over the stored (context) crop, zero beyond its own ROI."""
        from ..people.roi import crop

        self.interp.set_tensor(self.inp, (crop(rgb, roi, CROP_SIDE).astype(np.float32) / 255.0)[None])
        self.interp.invoke()
        logits = self.interp.get_tensor(self.out)[0, :, :, 0]
        prob = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        inner = round(STORED_SIDE / CONTEXT)
        pad = (STORED_SIDE - inner) // 2
        big = np.zeros((STORED_SIDE, STORED_SIDE), np.float32)
        big[pad:pad + inner, pad:pad + inner] = cv2.resize(prob, (inner, inner), interpolation=cv2.INTER_LINEAR)
        return big


def _disagreement(a: np.ndarray, b: np.ndarray, band: int = IGNORE_BAND) -> np.ndarray:
    """Pixels where two soft masks disagree, near either one's boundary (a whole missing limb is kept)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (band, band))
    near = np.zeros(a.shape, bool)
    for m in (a, b):
        fg = (m > 0.5).astype(np.uint8)
        near |= (cv2.dilate(fg, k) - cv2.erode(fg, k)) > 0
    return (np.abs(a - b) > 0.5) & near


class CropBuilder:
    """Runs the tracker over images and sequences and turns each tracked person into a labelled crop."""

    def __init__(self, tracker: PersonTracker, heavy: HeavyTeacher | None, rvm: RvmTeacher | None) -> None:
        self.tracker, self.heavy, self.rvm = tracker, heavy, rvm

    def crops(self, samples: Iterable[Sample], human: bool, negative: bool = False) -> Iterator[CropSample]:
        """Crops of every tracked person. Frames of one sequence are tracked in order (as at run time)."""
        last_seq, t = None, 0.0
        for s in samples:
            if s.sequence is None or s.sequence != last_seq:
                self.tracker.reset()
                if self.rvm is not None:
                    self.rvm.reset()
                t = 0.0
            last_seq = s.sequence
            t += 1 / 30
            people = self.tracker.step(s.rgb, t)
            alpha = None
            if self.rvm is not None and not human and not negative:
                alpha = self.rvm(s.rgb, settle=1 if s.sequence else 3)
            for person in people:
                sample = self._label(s, person, human, negative, alpha)
                if sample is not None:
                    yield sample

    def _label(self, s: Sample, person: Person, human: bool, negative: bool,
               alpha: np.ndarray | None) -> CropSample | None:
        size = s.rgb.shape[:2]
        roi = person.result.roi
        key = f"{s.key}-p{person.id}"
        rgb, pad = cut(s.rgb, roi), outside(roi, size)
        if negative:
            zero = np.zeros(pad.shape, np.uint8)
            return CropSample(s.group, key, s.sequence or "", rgb, zero, pad)
        mine = paste(person.result.mask, roi, size)
        if human and s.gt is not None:
            subject, others = subject_parts(s.gt.astype(np.uint8) * 255, mine)
            if s.group.startswith("davis"):  # one labelled person: crops of anyone else carry no label
                if _iou(subject, mine > 0.5) < MATCH_IOU:
                    return None
            label = cut(subject.astype(np.uint8) * 255, roi)
            ignore = np.maximum(pad, cut(others.astype(np.uint8) * 255, roi, nearest=True))
            if self.heavy is not None and s.group == "coco" and subject.any():  # coarse polygon edges
                ignore[_disagreement(label / 255.0, self.heavy(s.rgb, roi))] = 255
            return CropSample(s.group, key, s.sequence or "", rgb, label, ignore)
        teachers = []
        if s.gt is not None:  # a model-made mask: split by person like a human one, then treat as a teacher
            subject, others = subject_parts(s.gt.astype(np.uint8) * 255, mine)
            teachers.append(cut(subject.astype(np.float32), roi))
            pad = np.maximum(pad, cut(others.astype(np.uint8) * 255, roi, nearest=True))
        if alpha is not None:
            subject, others = subject_parts((alpha > 0.5).astype(np.uint8) * 255, mine)
            teachers.append(cut((alpha * subject).astype(np.float32), roi))
            pad = np.maximum(pad, cut(others.astype(np.uint8) * 255, roi, nearest=True))
        if self.heavy is not None:
            teachers.append(self.heavy(s.rgb, roi))
        if not teachers:
            return None
        label = teachers[0]
        ignore = pad.copy()
        for other in teachers[1:]:
            ignore[_disagreement(label, other)] = 255
        return CropSample(s.group, key, s.sequence or "", rgb, (label * 255).round().astype(np.uint8), ignore)


def write_crops(crops: Iterable[CropSample], out: Path, progress: bool = True) -> int:
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.csv"
    new = not index.exists()
    n = 0
    with index.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(["group", "key", "sequence"])
        for c in tqdm(crops, disable=not progress, desc="crops", unit="crop"):
            d = out / c.group
            d.mkdir(exist_ok=True)
            cv2.imwrite(str(d / f"{c.key}.jpg"), cv2.cvtColor(c.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 93])
            cv2.imwrite(str(d / f"{c.key}.label.png"), c.label)
            cv2.imwrite(str(d / f"{c.key}.ignore.png"), c.ignore)
            writer.writerow([c.group, c.key, c.sequence])
            n += 1
    return n


def build_crop_cache(data: Path, out: Path, tracker: PersonTracker, heavy_path: str | None, rvm_path: str | None,
                     progress: bool = True) -> int:
    """Crops from every source in ../shared/data (see the module docstring for how each is labelled)."""
    heavy = HeavyTeacher(heavy_path) if heavy_path else None
    rvm = RvmTeacher(rvm_path) if rvm_path else None
    builder = CropBuilder(tracker, heavy, rvm)
    davis = data / "davis-people"
    cats = {}
    with (davis / "sequences.csv").open() as fh:
        cats = {r["sequence"]: r["category"] for r in csv.DictReader(fh)}
    person_seqs = {s for s, c in cats.items() if c != "no_person"}
    clips = data / "clips"
    sources = [
        (davis_samples(davis, person_seqs), True, False),
        (davis_samples(davis, set(cats) - person_seqs), True, True),
        (folder_samples(data / "coco-person", "coco", human=True), True, False),
        (folder_samples(data / "web-people-pseudo", "web", human=False), False, False),
    ]
    # dog.mp4 is listed in the data README as a clip without people, but a woman plays with the dog in every frame
    for name, every in (("bikes", 2), ("vtest", 4), ("carphone_pristine", 4), ("bedroom", 1), ("juggle", 2),
                        ("dog", 3)):
        path = next(clips.glob(f"{name}.*"), None)
        if path is not None:
            sources.append((clip_samples(path, "clips", every=every, max_side=960), False, False))
    for name in ("bigbuckbunny",):
        path = next(clips.glob(f"{name}.*"), None)
        if path is not None:
            sources.append((clip_samples(path, "noperson-clip", every=3, max_side=960), False, True))
    n = 0
    for samples, human, negative in sources:
        n += write_crops(builder.crops(samples, human, negative), out, progress)
    return n


def everyone_tracker(detector_path: str, landmarker_path: str, threads: int = 2) -> PersonTracker:
    """The runtime tracker with every person tracked (up to 6): the labels decide who counts."""
    from ..people.detector import PersonDetector
    from ..people.landmarks import PoseLandmarker
    from ..people.salience import SalienceRule

    return PersonTracker(PersonDetector(detector_path, threads), PoseLandmarker(landmarker_path, threads),
                         TrackerConfig(max_people=6, salience=SalienceRule(everyone=True)))
