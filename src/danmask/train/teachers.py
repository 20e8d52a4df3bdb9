"""Teacher pseudo-labels, cached on disk: an ensemble of RVM (path given at run time, never shipped) and
danmask's own person-track path (Apache-2.0).

Each sample is stored as three PNGs under `cache/<group>/`: `<id>.jpg` (RGB, short side `short_side`),
`<id>.label.png` (soft person mask 0..255) and `<id>.ignore.png` (255 where the loss must not look).
Human masks win where they exist. Elsewhere the two teachers are ensembled: where they agree, the label is
their mean; where they disagree (one says person, the other not), the pixel is `ignore`, taught neither way.
Two teachers that fail differently (RVM bleeds into the background and drops small people; person-track
misses people it never tracked and is blocky at the crop's edge) leave a label that is right where it teaches.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..runtime import load_model

IGNORE_BAND = 9  # px at cache scale: teacher disagreement is forgiven only this close to the teacher's boundary


@dataclass
class Sample:
    group: str
    key: str
    rgb: np.ndarray  # HxWx3 uint8
    gt: np.ndarray | None  # bool HxW human mask, or None
    sequence: str | None  # frames of one sequence are fed to the recurrent teacher in order
    time_s: float = 0.0  # the frame's time in its sequence (the person tracker's schedule is in seconds)


class RvmTeacher:
    """Robust Video Matting run through ONNX Runtime; recurrent state carried within a sequence."""

    def __init__(self, onnx_path: str, size: tuple[int, int] = (288, 512), threads: int = 2) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        self.size = size
        self.reset()

    def reset(self) -> None:
        self.state = [np.zeros((), np.float32)] * 4

    def __call__(self, rgb: np.ndarray, settle: int = 1) -> np.ndarray:
        h, w = self.size
        src = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255.0
        for _ in range(settle):  # still images: let the recurrent state converge on the same frame
            feeds = {"src": src, **{f"r{i + 1}i": s for i, s in enumerate(self.state)}}
            r4o, pha, _fgr, r3o, r2o, r1o = self.session.run(None, feeds)
            self.state = [r1o, r2o, r3o, r4o]
        return cv2.resize(pha[0, :, :, 0], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise FileNotFoundError(path)
    return m > 127


def davis_samples(root: Path, sequences: set[str] | None = None) -> Iterator[Sample]:
    """DAVIS layout; `sequences` limits to a split so validation sequences never reach training."""
    cats = {}
    csv_path = root / "sequences.csv"
    if csv_path.is_file():
        with open(csv_path) as f:
            cats = {r["sequence"]: r["category"] for r in csv.DictReader(f)}
    for seq_dir in sorted((root / "JPEGImages" / "480p").iterdir()):
        seq = seq_dir.name
        if sequences is not None and seq not in sequences:
            continue
        group = "davis-noperson" if cats.get(seq) == "no_person" else "davis-person"
        for i, img in enumerate(sorted(seq_dir.glob("*.jpg"))):
            gt = _read_mask(root / "Annotations" / "480p" / seq / f"{img.stem}.png")
            yield Sample(group, f"{seq}-{img.stem}", _read_rgb(img), gt, seq, i / DAVIS_FPS)


def folder_samples(root: Path, group: str, human: bool) -> Iterator[Sample]:
    """images/ + masks/ with matching stems (COCO person, web-people-pseudo)."""
    for img in sorted((root / "images").iterdir()):
        masks = list((root / "masks").glob(img.stem + ".*"))
        gt = _read_mask(masks[0]) if masks else None
        yield Sample(group if human else group, img.stem, _read_rgb(img), gt, None)


def clip_samples(path: Path, group: str, every: int = 1, max_side: int = 640) -> Iterator[Sample]:
    """Frames of an unlabelled clip, in order (the recurrent teacher needs them in order)."""
    import av

    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            if i % every == 0:
                s = max_side / max(rgb.shape[:2])
                if s < 1:
                    rgb = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                yield Sample(group, f"{path.stem}-{i:05d}", rgb, None, path.stem, float(frame.time or 0.0))


def fuse_labels(gt: np.ndarray | None, rvm: np.ndarray, tracked: np.ndarray,
                gt_is_human: bool) -> tuple[np.ndarray, np.ndarray]:
    """Soft label and ignore mask from a human or model-made mask and the two teachers (RVM, person-track).

    Human GT is the label; RVM disagreeing with it near RVM's boundary (polygon edges vs matting edges) and whole
    annotated people RVM leaves out are ignored. Without human GT the label is the teachers' mean where they
    agree and ignored where they disagree; a model-made mask (web photos) must agree as well.
    """
    if gt is not None and gt_is_human:
        fg = (rvm > 0.5).astype(np.uint8)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (IGNORE_BAND, IGNORE_BAND))
        near_boundary = (cv2.dilate(fg, k) - cv2.erode(fg, k)) > 0
        label = gt.astype(np.float32)
        disagree = (np.abs(label - rvm) > 0.5) & near_boundary
        return label, disagree | unsalient(gt, rvm)
    label = (rvm.astype(np.float32) + tracked.astype(np.float32)) / 2
    disagree = (rvm > 0.5) != (tracked > 0.5)
    if gt is not None:
        disagree |= gt != (label > 0.5)
    return label, disagree


def unsalient(gt: np.ndarray, alpha: np.ndarray, min_alpha: float = 0.5) -> np.ndarray:
    """Annotated people that RVM, a salient-person matting model, mostly leaves out: a crowd behind the subject.

    COCO annotates every person; DAVIS and the product want the main ones. Where the two disagree about a whole
    person, the loss ignores that person instead of teaching either answer.
    """
    n, comp = cv2.connectedComponents(cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)))
    comp[~gt] = 0
    counts = np.bincount(comp.ravel(), minlength=n)
    mean_alpha = np.bincount(comp.ravel(), weights=alpha.ravel(), minlength=n) / np.maximum(counts, 1)
    left_out = np.nonzero(mean_alpha < min_alpha)[0]
    left_out = left_out[left_out > 0]
    if not len(left_out):
        return np.zeros_like(gt, dtype=bool)
    return cv2.dilate(np.isin(comp, left_out).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def build_cache(samples: Iterator[Sample], out_dir: Path, rvm_path: str, human_groups: set[str],
                short_side: int = 288, progress: bool = True) -> int:
    """Label every sample and write it to `out_dir/<group>/`. Returns the number written."""
    from tqdm import tqdm

    rvm = RvmTeacher(rvm_path)
    tracker = load_model("person-track", threads=2)
    last_seq, n = None, 0
    for s in tqdm(samples, disable=not progress, desc="teacher labels", unit="img"):
        if s.sequence != last_seq or s.sequence is None:
            rvm.reset()
            tracker.reset()
        last_seq = s.sequence
        alpha = rvm(s.rgb, settle=1 if s.sequence else 3)
        tracked = tracker.track(s.rgb, s.time_s)
        label, ignore = fuse_labels(s.gt, alpha, tracked, s.group in human_groups)
        scale = short_side / min(s.rgb.shape[:2])
        size = (round(s.rgb.shape[1] * scale), round(s.rgb.shape[0] * scale))
        d = out_dir / s.group
        d.mkdir(parents=True, exist_ok=True)
        rgb = cv2.resize(s.rgb, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(d / f"{s.key}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 93])
        cv2.imwrite(str(d / f"{s.key}.label.png"), (cv2.resize(label, size) * 255).round().astype(np.uint8))
        cv2.imwrite(str(d / f"{s.key}.ignore.png"), cv2.resize(ignore.astype(np.uint8) * 255, size, interpolation=cv2.INTER_NEAREST))
        n += 1
    return n


DAVIS_FPS = 30.0
VAL_SEQUENCES = frozenset({"dance-twirl", "parkour", "camel", "dog", "drift-chicane"})
# Unlabelled clips with people, and how many frames to skip between labelled ones (long or static clips more).
# `dog.mp4` is listed as person-free in the data notes, but a woman is in every frame: it is a clip with people.
PEOPLE_CLIPS = {"bikes.mp4": 1, "vtest.avi": 2, "carphone_pristine.mp4": 1, "bedroom.mp4": 3, "juggle.mp4": 2,
                "dog.mp4": 3}


def training_samples(data_root: Path, val_sequences: frozenset[str] = frozenset()) -> Iterator[Sample]:
    """Every training source in ../shared/data. All DAVIS sequences are labelled unless `val_sequences` names
    some; training leaves out its validation sequences itself (`TrainConfig.val_sequences`), so one cache serves
    every leave-one-sequence-out fold."""
    davis = data_root / "davis-people"
    all_seqs = {p.name for p in (davis / "JPEGImages" / "480p").iterdir()}
    yield from davis_samples(davis, all_seqs - set(val_sequences))
    yield from folder_samples(data_root / "coco-person", "coco", human=True)
    yield from folder_samples(data_root / "web-people-pseudo", "web", human=False)
    clips = data_root / "clips"
    for name, every in PEOPLE_CLIPS.items():
        if (clips / name).is_file():
            yield from clip_samples(clips / name, "clips", every=every)
    for s in clip_samples(clips / "bigbuckbunny.mp4", "noperson-clip", every=2):
        s.gt = np.zeros(s.rgb.shape[:2], bool)  # an animation with no people: known-empty
        yield s


HUMAN_GROUPS = frozenset({"davis-person", "davis-noperson", "coco", "noperson-clip"})
