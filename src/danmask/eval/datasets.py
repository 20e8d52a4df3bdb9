"""Evaluation dataset readers: DAVIS layout, flat images/ + masks/ folders, and video files with mask PNGs.

Every reader yields `Sequence`s whose frames come in display order, loaded lazily so a long sequence never sits
in memory. Whether a sequence has a person comes from DAVIS's `sequences.csv` (`category` = `no_person`) when
present, otherwise from its masks (all empty = no person). In a no-person sequence the ground truth is empty by
definition, whatever the annotation files hold (DAVIS annotates other objects there).

Every frame carries its display time in seconds, because the Segmenter never invents one: a video's frames have
their own; image sequences (DAVIS) have none on disk, so frame k is shown at k / fps, with fps from an optional
`fps` column of sequences.csv, else DEFAULT_FPS. k is the number that ends the file name (00042.jpg: 42, so a
subsampled sequence keeps its true spacing), or, when not every name ends in one, the position in name order.
A lone image is shown at 0.
"""
from __future__ import annotations

import csv
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".ts")
NO_PERSON = "no_person"
_INDEX = re.compile(r"(\d+)$")  # the frame number that ends a file stem
DEFAULT_FPS = 30.0  # frame rate of an image sequence that declares none (DAVIS's clips are 24-30 fps)


@dataclass
class EvalFrame:
    """One frame to segment; `gt` is None when this frame has no annotation (it is still segmented)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    gt: np.ndarray | None  # (h, w) bool person mask at the annotation's resolution
    frame_id: str  # file stem or frame index, for reports
    time: float  # display time in seconds (see the module docstring for image sequences)


@dataclass
class Sequence:
    """A clip scored as a unit: metrics are averaged per sequence, then over sequences."""

    name: str
    has_person: bool
    length: int  # frames that will be yielded
    load: Callable[[], Iterator[EvalFrame]]

    def frames(self) -> Iterator[EvalFrame]:
        for frame in self.load():
            if not self.has_person and frame.gt is not None:
                frame.gt = np.zeros_like(frame.gt)
            yield frame


def read_mask(path: Path) -> np.ndarray:
    """A person mask from a PNG: any value > 127 is foreground. Palette PNGs (DAVIS style) count every
    non-zero index as foreground, and colour masks use their brightest channel."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                return np.asarray(im) > 0
            if im.mode == "1":
                return np.asarray(im).astype(bool)
            if im.mode in ("RGB", "RGBA"):
                return np.asarray(im.convert("RGB")).max(axis=2) > 127
            if im.mode == "LA":
                return np.asarray(im.convert("L")) > 127
            return np.asarray(im) > 127
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read mask ({exc})") from exc


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 image, pixels as stored (EXIF orientation is ignored, like the annotations)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image ({exc})") from exc


def check_sizes(gt: np.ndarray, rgb: np.ndarray, where: str) -> None:
    """Masks may be at another resolution than the frames, but must cover the same picture."""
    (mh, mw), (h, w) = gt.shape, rgb.shape[:2]
    if abs(mw / mh - w / h) > 0.02 * (w / h):
        raise DatasetError(f"{where}: mask is {mw}x{mh} but the frame is {w}x{h} (different aspect ratio)")


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _image_pairs(images: list[tuple[Path, float]], mask_dir: Path) -> Iterator[EvalFrame]:
    """(image, display time) pairs with the mask of the same stem."""
    masks = {p.stem: p for p in _files(mask_dir, (".png",))}
    for path, time in images:
        rgb, gt = read_image(path), read_mask(masks[path.stem])
        check_sizes(gt, rgb, str(masks[path.stem]))
        yield EvalFrame(rgb, gt, path.stem, time)


def _any_foreground(paths: list[Path]) -> bool:
    return any(read_mask(p).any() for p in paths)


def _warn(message: str) -> None:
    print(f"danmask eval: warning: {message}", file=sys.stderr)


# --- DAVIS ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SequenceFacts:
    """One row of a DAVIS-style sequences.csv."""

    category: str
    fps: float


def read_sequence_table(csv_path: Path) -> dict[str, SequenceFacts]:
    """sequence -> facts from DAVIS-style sequences.csv (columns `sequence`, `category`, optional `fps`)."""
    try:
        with csv_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: unreadable ({exc})") from exc
    if rows and not {"sequence", "category"} <= set(rows[0]):
        raise DatasetError(f"{csv_path}: needs columns 'sequence' and 'category' (has {', '.join(rows[0])})")
    return {r["sequence"].strip(): SequenceFacts((r["category"] or "").strip(), _fps(r.get("fps"), csv_path))
            for r in rows if r.get("sequence")}


def _fps(text: str | None, where: Path) -> float:
    if not text or not text.strip():
        return DEFAULT_FPS
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not (fps > 0 and math.isfinite(fps)):
        raise DatasetError(f"{where}: fps must be a positive number, got {text!r}")
    return fps


def davis_resolution(root: Path) -> str:
    """`480p` when present, else the only resolution folder there is (e.g. `Full-Resolution`)."""
    found = sorted(p.name for p in (root / "JPEGImages").iterdir() if p.is_dir())
    if "480p" in found or len(found) != 1:
        return "480p"
    return found[0]


def davis_sequences(root: Path, resolution: str | None = None) -> list[Sequence]:
    """`JPEGImages/<res>/<seq>/*.jpg` + `Annotations/<res>/<seq>/*.png`, matched by file stem."""
    resolution = resolution or davis_resolution(root)
    img_root, ann_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    if not img_root.is_dir() or not ann_root.is_dir():
        raise DatasetError(f"{root}: DAVIS layout needs JPEGImages/{resolution}/ and Annotations/{resolution}/")
    csv_path = root / "sequences.csv"
    table = read_sequence_table(csv_path) if csv_path.is_file() else {}
    sequences = []
    for seq_dir in sorted(p for p in img_root.iterdir() if p.is_dir()):
        ann_dir = ann_root / seq_dir.name
        if not ann_dir.is_dir():
            _warn(f"{seq_dir.name}: no Annotations folder, sequence skipped")
            continue
        masks = {p.stem: p for p in _files(ann_dir, (".png",))}
        facts = table.get(seq_dir.name)
        fps = facts.fps if facts else DEFAULT_FPS
        images = [(p, k / fps) for k, p in frame_numbers(_files(seq_dir, IMAGE_SUFFIXES)) if p.stem in masks]
        if not images:
            _warn(f"{seq_dir.name}: no frame has an annotation with the same name, sequence skipped")
            continue
        if facts is None:
            has_person = _any_foreground([masks[p.stem] for p, _ in images])
        else:
            has_person = facts.category != NO_PERSON
        sequences.append(Sequence(seq_dir.name, has_person, len(images),
                                  lambda images=images, ann_dir=ann_dir: _image_pairs(images, ann_dir)))
    missing = sorted(set(table) - {s.name for s in sequences})
    if missing and sequences:
        _warn(f"sequences.csv lists sequences that are not on disk: {', '.join(missing)}")
    return sequences


def frame_numbers(paths: list[Path]) -> list[tuple[int, Path]]:
    """(frame number, path) in name order: the numbers that end the names when they all do and increase, else
    the positions (an unannotated frame still takes its place)."""
    found = [_INDEX.search(p.stem) for p in paths]
    numbers = [int(m.group(1)) for m in found if m]
    if len(numbers) == len(paths) and all(a < b for a, b in zip(numbers, numbers[1:])):
        return list(zip(numbers, paths))
    return list(enumerate(paths))


# --- flat images/ + masks/ -----------------------------------------------------------------------------------

def image_folder_sequences(root: Path) -> list[Sequence]:
    """COCO-style `images/` + `masks/` with matching stems: every image is its own one-frame sequence."""
    img_dir, mask_dir = root / "images", root / "masks"
    masks = {p.stem for p in _files(mask_dir, (".png",))}
    images = [p for p in _files(img_dir, IMAGE_SUFFIXES) if p.stem in masks]
    unmatched = len(_files(img_dir, IMAGE_SUFFIXES)) - len(images)
    if unmatched:
        _warn(f"{unmatched} image(s) in {img_dir} have no mask with the same name and are skipped")
    sequences = []
    for path in images:
        has_person = bool(read_mask(mask_dir / f"{path.stem}.png").any())
        sequences.append(Sequence(path.stem, has_person, 1,
                                  lambda path=path: _image_pairs([(path, 0.0)], mask_dir)))
    return sequences


# --- video + mask PNGs ---------------------------------------------------------------------------------------

def mask_index(folder: Path) -> dict[int, Path]:
    """Frame index (display order, from 0) -> mask file; the index is the number that ends the file stem."""
    found: dict[int, Path] = {}
    for path in _files(folder, (".png",)):
        m = _INDEX.search(path.stem)
        if m is None:
            raise DatasetError(f"{path}: mask names must end with the frame number (e.g. 00012.png)")
        index = int(m.group(1))
        if index in found:
            raise DatasetError(f"{folder}: two masks for frame {index}: {found[index].name}, {path.name}")
        found[index] = path
    if not found:
        raise DatasetError(f"{folder}: no mask PNGs")
    return found


def _video_frames(video: Path, masks: dict[int, Path]) -> Iterator[EvalFrame]:
    from ..video import iter_frames

    last = max(masks)
    for frame in iter_frames(video):
        gt = None
        if frame.index in masks:
            gt = read_mask(masks[frame.index])
            check_sizes(gt, frame.rgb, str(masks[frame.index]))
        yield EvalFrame(frame.rgb, gt, str(frame.index), frame.time)
        if frame.index >= last:
            return
    raise DatasetError(f"{video}: ended before frame {last}, which has a mask")


def video_sequence(video: Path, mask_dir: Path) -> Sequence:
    """A video scored on the frames that have a mask (all frames up to the last mask are segmented)."""
    if not mask_dir.is_dir():
        raise DatasetError(f"{mask_dir}: mask folder not found")
    masks = mask_index(mask_dir)
    return Sequence(video.stem, _any_foreground(list(masks.values())), max(masks) + 1,
                    lambda: _video_frames(video, masks))


def default_mask_dir(video: Path) -> Path:
    """Where a video's masks live when not given: `<stem>_masks/`, `<stem>/` or `masks/` beside it."""
    for candidate in (video.with_name(f"{video.stem}_masks"), video.with_suffix(""), video.with_name("masks")):
        if candidate.is_dir():
            return candidate
    raise DatasetError(f"{video}: no mask folder found ({video.stem}_masks/, {video.stem}/ or masks/ beside it); "
                       "give one with --masks")


def video_folder_sequences(root: Path) -> list[Sequence]:
    """A folder of videos, each with its mask folder beside it (see default_mask_dir)."""
    return [video_sequence(v, default_mask_dir(v)) for v in _files(root, VIDEO_SUFFIXES)]


# --- entry point ---------------------------------------------------------------------------------------------

def load_dataset(path: str | Path, masks: str | Path | None = None) -> list[Sequence]:
    """Recognise the layout of `path` and return its sequences (raises DatasetError when none is usable)."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"{root}: dataset not found")
    try:
        if root.is_file():
            if root.suffix.lower() not in VIDEO_SUFFIXES:
                raise DatasetError(f"{root}: a dataset file must be a video ({', '.join(VIDEO_SUFFIXES)})")
            sequences = [video_sequence(root, Path(masks) if masks else default_mask_dir(root))]
        elif masks is not None:
            raise DatasetError("--masks goes with a video file, not a folder")
        elif (root / "JPEGImages").is_dir():
            sequences = davis_sequences(root)
        elif (root / "images").is_dir() and (root / "masks").is_dir():
            sequences = image_folder_sequences(root)
        elif _files(root, VIDEO_SUFFIXES):
            sequences = video_folder_sequences(root)
        else:
            raise DatasetError(f"{root}: unknown layout; expected JPEGImages/+Annotations/ (DAVIS), "
                               "images/+masks/, or video files with mask folders")
    except PermissionError as exc:
        raise DatasetError(f"{exc.filename}: permission denied") from exc
    if not sequences:
        raise DatasetError(f"{root}: no frame has a matching mask")
    return sequences

