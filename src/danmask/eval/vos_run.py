"""`danmask eval DATASET --vos`: propagate the first frame's object masks with every method, score J and F.

DATASET is in DAVIS layout (`JPEGImages/<res>/<seq>/*.jpg`, `Annotations/<res>/<seq>/*.png`). The first frame of
each sequence must have an annotation: its objects are what every method propagates. A palette PNG gives one
object per index (255 is DAVIS's void and counts as background, as in the official loader); any other PNG is one
object (pixels > 127, DAVIS-2016 style). Sequences marked `no_person` in sequences.csv are skipped (their truth
is blanked on purpose). Frames are scored where an annotation exists, DAVIS's way: all annotated frames but the
first and the last (see `vos.py`). A sequence with fewer than three annotated frames cannot be scored: with -o
its propagation is written as an overlay video and a picture to look at.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError, ModelError, OutputError
from . import vos
from .datasets import (DEFAULT_FPS, IMAGE_SUFFIXES, NO_PERSON, _files, davis_resolution, frame_numbers, read_image,
                       read_mask, read_sequence_table)
from .vos_methods import Frame, Masks, Propagator

SHEET_HEIGHT = 240  # pixels per tile of the overlay pictures


# --- data ----------------------------------------------------------------------------------------------------

def read_labels(path: Path) -> np.ndarray:
    """Object ids (int32 (H, W), 0 = background) of an annotation PNG (module docstring)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                labels = np.asarray(im).astype(np.int32)
                labels[labels == 255] = 0
                return labels
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read mask ({exc})") from exc
    return read_mask(path).astype(np.int32)


@dataclass
class VosSequence:
    name: str
    images: list[tuple[Path, float]]  # (frame, display time in seconds), display order
    annotations: dict[str, Path]  # frame stem -> annotation PNG
    fps: float
    numbers: list[int] = field(default_factory=list)  # frame numbers (for video timestamps)

    @property
    def annotated(self) -> list[str]:
        return [p.stem for p, _ in self.images if p.stem in self.annotations]

    @property
    def scored(self) -> list[str]:
        """Stems DAVIS scores: annotated frames but the first and the last."""
        annotated = self.annotated
        return annotated[vos.davis_frames(len(annotated))]

    def frames(self) -> Iterator[Frame]:
        for path, t in self.images:
            yield read_image(path), t

    def first_labels(self) -> np.ndarray:
        return read_labels(self.annotations[self.images[0][0].stem])


def vos_sequences(root: str | Path) -> tuple[list[VosSequence], list[str]]:
    """The sequences of a DAVIS-layout folder whose first frame has objects, and notes on what was skipped."""
    root = Path(root)
    if not (root / "JPEGImages").is_dir():
        raise DatasetError(f"{root}: --vos needs a DAVIS layout (JPEGImages/<res>/<seq>/ and Annotations/<res>/<seq>/)")
    res = davis_resolution(root)
    img_root, ann_root = root / "JPEGImages" / res, root / "Annotations" / res
    if not img_root.is_dir() or not ann_root.is_dir():
        raise DatasetError(f"{root}: DAVIS layout needs JPEGImages/{res}/ and Annotations/{res}/")
    table = read_sequence_table(root / "sequences.csv") if (root / "sequences.csv").is_file() else {}
    sequences, notes, no_person = [], [], []
    for seq_dir in sorted(p for p in img_root.iterdir() if p.is_dir()):
        facts = table.get(seq_dir.name)
        if facts is not None and facts.category == NO_PERSON:
            no_person.append(seq_dir.name)
            continue
        ann_dir = ann_root / seq_dir.name
        masks = {p.stem: p for p in _files(ann_dir, (".png",))} if ann_dir.is_dir() else {}
        numbered = frame_numbers(_files(seq_dir, IMAGE_SUFFIXES))
        fps = facts.fps if facts else DEFAULT_FPS
        if not numbered or numbered[0][1].stem not in masks:
            notes.append(f"{seq_dir.name}: skipped, its first frame has no annotation")
            continue
        seq = VosSequence(seq_dir.name, [(p, k / fps) for k, p in numbered], masks, fps, [k for k, _ in numbered])
        if not seq.first_labels().any():
            notes.append(f"{seq_dir.name}: skipped, its first frame's annotation has no object")
            continue
        sequences.append(seq)
    if no_person:
        notes.append(f"skipped {len(no_person)} no_person sequence(s) of sequences.csv")
    if not sequences:
        raise DatasetError(f"{root}: no sequence whose first frame has an annotated object")
    return sequences, notes


# --- overlays ------------------------------------------------------------------------------------------------

def colour(object_id: int) -> np.ndarray:
    """A distinct, stable RGB colour per id (hues a golden angle apart)."""
    hsv = np.uint8([[[int(object_id * 0.618034 * 180) % 180, 220, 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def overlay(rgb: np.ndarray, masks: Masks) -> np.ndarray:
    """The frame with each object tinted in its colour and outlined."""
    out = rgb.astype(np.float32)
    for k, m in masks.items():
        if m.shape != rgb.shape[:2] or not m.any():
            continue
        out[m] = 0.5 * out[m] + 0.5 * colour(k)
    out = out.astype(np.uint8)
    for k, m in masks.items():
        if m.shape == rgb.shape[:2] and m.any():
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour(k)), 1, cv2.LINE_AA)
    return out


class OverlayWriter:
    """An overlay video (H.264, optional) and a 2x2 picture of four frames (first, 1/3, 2/3, last)."""

    def __init__(self, folder: Path, stem: str, seq: VosSequence, video: bool) -> None:
        self.folder, self.stem, self.seq = folder, stem, seq
        n = len(seq.images)
        self.picks = sorted({0, n // 3, (2 * n) // 3, n - 1})
        self.tiles: list[np.ndarray] = []
        self.container = self.stream = None
        if video:
            self._open_video()

    def _open_video(self) -> None:
        import av

        path = self.folder / f"{self.stem}.mp4"
        rate = Fraction(self.seq.fps).limit_denominator(1001)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=rate)
        h, w = read_image(self.seq.images[0][0]).shape[:2]
        self.stream.width, self.stream.height = w + w % 2, h + h % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = 1 / rate
        self.stream.options = {"crf": "20", "preset": "veryfast"}

    def add(self, index: int, rgb: np.ndarray, masks: Masks) -> None:
        import av

        picture = overlay(rgb, masks)
        if index in self.picks:
            self.tiles.append(_caption(_shrink(picture), f"{self.stem} frame {self.seq.images[index][0].stem}"))
        if self.stream is not None:
            h, w = picture.shape[:2]
            even = np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(even, format="rgb24")
            frame.pts = self.seq.numbers[index] - self.seq.numbers[0]
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def close(self) -> list[Path]:
        written = []
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            written.append(self.folder / f"{self.stem}.mp4")
        if self.tiles:
            path = self.folder / f"{self.stem}.jpg"
            if not cv2.imwrite(str(path), cv2.cvtColor(_sheet(self.tiles), cv2.COLOR_RGB2BGR)):
                raise OutputError(f"{path}: cannot write")
            written.append(path)
        return written


def _shrink(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(w * SHEET_HEIGHT / h)), SHEET_HEIGHT), interpolation=cv2.INTER_AREA)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((20, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def _sheet(tiles: list[np.ndarray]) -> np.ndarray:
    h, w = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    tiles = tiles + [np.full((h, w, 3), 255, np.uint8)] * (len(tiles) % 2)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, w - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    rows = [np.hstack(padded[i:i + 2]) for i in range(0, len(padded), 2)]
    return np.vstack(rows)


# --- scoring -------------------------------------------------------------------------------------------------

@dataclass
class SequenceRun:
    """One method on one sequence: per-object scores (empty when the sequence has no truth to score)."""

    name: str
    objects: list[vos.ObjectScore]
    frames: int
    seconds: float  # inside the method (decoding and scoring excluded)
    overlays: list[Path] = field(default_factory=list)


@dataclass
class MethodRun:
    method: str
    sequences: list[SequenceRun]

    def summary(self) -> dict:
        """The JSON of one method: DAVIS means over objects, and per sequence (mean over its objects)."""
        scored = [s for s in self.sequences if s.objects]
        seconds = sum(s.seconds for s in self.sequences)
        frames = sum(s.frames for s in self.sequences)
        return {
            "method": self.method,
            "mean": vos.mean_summary([o for s in scored for o in s.objects]),
            "per_sequence": {s.name: {**vos.mean_summary(s.objects),
                                      "per_object": {str(o.object_id): o.summary() for o in s.objects}}
                             for s in scored},
            "unscored": [s.name for s in self.sequences if not s.objects],
            "frames": frames,
            "seconds": seconds,
            "fps": frames / seconds if seconds > 0 else None,
            "overlays": [str(p) for s in self.sequences for p in s.overlays],
        }


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


class _Timed:
    """Wraps the frame iterator: time spent decoding is not the method's; remembers the last frame."""

    def __init__(self, seq: VosSequence) -> None:
        self.inner, self.decode_s, self.rgb, self.taken = seq.frames(), 0.0, None, 0

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        start = time.perf_counter()
        try:
            rgb, t = next(self.inner)
        finally:
            self.decode_s += time.perf_counter() - start
        self.rgb, self.taken = rgb, self.taken + 1
        return rgb, t


def run_sequence(method: Propagator, seq: VosSequence, out: Path | None = None) -> SequenceRun:
    """Propagate seq's first-frame objects with `method`, score the frames DAVIS scores, write overlays to `out`."""
    labels = seq.first_labels()
    ids = [int(k) for k in np.unique(labels) if k != 0]
    frames = _Timed(seq)
    first = read_image(seq.images[0][0]).shape[:2]
    first_masks = {k: _resize_nearest(labels == k, first) for k in ids}
    scored = set(seq.scored)
    per_object = {k: vos.ObjectScore(seq.name, k, [], [], []) for k in ids}
    writer = OverlayWriter(out, f"{seq.name}_{_slug(method.name)}", seq, video=not scored) if out else None
    count, score_s, start = 0, 0.0, time.perf_counter()
    for masks in method.propagate(frames, first_masks):
        tick = time.perf_counter()
        if count >= len(seq.images):
            raise ModelError(f"{method.name}: yielded more mask sets than {seq.name} has frames ({len(seq.images)})")
        if frames.taken != count + 1:
            raise ModelError(f"{method.name}: yielded the masks of frame {count} of {seq.name} after taking "
                             f"{frames.taken} frames (must take exactly that frame first)")
        _check(method, seq, count, masks, ids, frames.rgb)
        stem = seq.images[count][0].stem
        if stem in scored:
            truth = read_labels(seq.annotations[stem])
            for k, obj in per_object.items():
                pred, gt = _resize_nearest(masks[k], truth.shape), truth == k
                obj.frames.append(stem)
                obj.j.append(vos.j_measure(pred, gt))
                obj.f.append(vos.f_measure(pred, gt))
        if writer is not None:
            writer.add(count, frames.rgb, masks)
        count += 1
        score_s += time.perf_counter() - tick
    seconds = time.perf_counter() - start - score_s - frames.decode_s
    if count != len(seq.images):
        raise ModelError(f"{method.name}: yielded {count} mask sets for the {len(seq.images)} frames of {seq.name}")
    overlays = writer.close() if writer is not None else []
    objects = list(per_object.values()) if scored else []
    return SequenceRun(seq.name, objects, count, seconds, overlays)


def _check(method: Propagator, seq: VosSequence, index: int, masks: Masks, ids: list[int], rgb: np.ndarray) -> None:
    if set(masks) != set(ids):
        raise ModelError(f"{method.name}: frame {index} of {seq.name} has masks for ids {sorted(masks)}, "
                         f"expected {ids}")
    for k, m in masks.items():
        if m.shape != rgb.shape[:2] or m.dtype != bool:
            raise ModelError(f"{method.name}: mask {k} of frame {index} of {seq.name} is {m.shape} {m.dtype}, "
                             f"expected {rgb.shape[:2]} bool")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def evaluate_vos(sequences: list[VosSequence], methods: list[Propagator], out: Path | None = None,
                 progress: bool = False) -> list[MethodRun]:
    """Every method on every sequence (overlays and pictures into `out` when given)."""
    runs = []
    for method in methods:
        done = []
        for seq in sequences:
            if progress:
                print(f"{method.name}: {seq.name} ({len(seq.images)} frames)", file=sys.stderr, flush=True)
            done.append(run_sequence(method, seq, out))
        runs.append(MethodRun(method.name, done))
    return runs


# --- output --------------------------------------------------------------------------------------------------

COLUMNS = (("J&F", "JF"), ("J", "J"), ("F", "F"), ("J rec", "J_recall"), ("F rec", "F_recall"),
           ("J dec", "J_decay"), ("F dec", "F_decay"))


def _num(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _fps(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_rows(summaries: list[dict]) -> list[list[str]]:
    """[method, sequence, objects, frames, J&F, J, F, J recall, F recall, J decay, F decay] per sequence + mean."""
    rows = []
    for s in summaries:
        for name, seq in s["per_sequence"].items():
            rows.append([s["method"], name, str(seq["objects"]), str(seq["frames"])] +
                        [_num(seq[k]) for _, k in COLUMNS])
        if s["mean"]:
            m = s["mean"]
            rows.append([s["method"], "mean", str(m["objects"]), str(m["frames"])] + [_num(m[k]) for _, k in COLUMNS])
    return rows


HEADER = ["method", "sequence", "objects", "frames"] + [c for c, _ in COLUMNS]


def print_table(summaries: list[dict]) -> None:
    rows = table_rows(summaries)
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(HEADER, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def write_report(summaries: list[dict], out: Path, dataset: str, notes: list[str]) -> Path:
    """`vos.md` (tables, pictures) and `vos.json` (everything) in `out`; returns the markdown's path."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    doc = {"dataset": dataset, "date": stamp, "bound_th": vos.BOUND_TH,
           "scored_frames": "annotated frames but the first (given) and the last, as DAVIS", "notes": notes,
           "methods": summaries}
    lines = [f"# danmask eval --vos: {dataset}", "",
             f"{stamp}. J = region IoU, F = boundary F-measure (tolerance ceil({vos.BOUND_TH} x diagonal) px), "
             "as DAVIS; each object's first frame is given, the first and last annotated frames are not scored. "
             "rec = share of frames > 0.5, dec = first quarter's mean - last quarter's. Means are over objects.", ""]
    rows = table_rows(summaries)
    if rows:
        lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * 2 + "---:|" * (len(HEADER) - 2)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    if summaries:
        lines += ["", "| method | frames | seconds in the method | frames/s |", "|---|---:|---:|---:|"]
        lines += [f"| {s['method']} | {s['frames']} | {s['seconds']:.1f} | {_fps(s['fps'])} |" for s in summaries]
    pictures = [Path(p).name for s in summaries for p in s["overlays"]]
    if pictures:
        lines += ["", "## Overlays", ""]
        lines += [f"![{p}]({p})" if p.endswith(".jpg") else f"- video: [{p}]({p})" for p in pictures]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    try:
        (out / "vos.json").write_text(json.dumps(_clean(doc), indent=1), encoding="utf-8")
        path = out / "vos.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc
    return path


def _clean(value):
    """JSON has no NaN: undefined scores are null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run_cli(args) -> int:
    """The `--vos` branch of `danmask eval` (arguments of commands/evaluate.py)."""
    from ..outputs import check_folder
    from .vos_methods import BASELINES, make_method

    if args.masks:
        raise DatasetError("--masks does not go with --vos (it reads a DAVIS layout)")
    out = check_folder(args.output) if args.output else None
    sequences, notes = vos_sequences(args.dataset)
    if not any(s.scored for s in sequences):
        if out is None:
            raise DatasetError(f"{args.dataset}: no sequence has truth after its first frame, so nothing can be "
                               "scored; give -o DIR to write overlays of the propagation")
    elif out is None and any(not s.scored for s in sequences):
        notes.append("sequences without later truth skipped (-o DIR writes overlays of them)")
        sequences = [s for s in sequences if s.scored]
    methods = [make_method(m, threads=args.threads, device=args.device) for m in (args.model or BASELINES)]
    progress = not args.quiet and sys.stderr.isatty()
    runs = evaluate_vos(sequences, methods, out, progress=progress)
    summaries = [_clean(r.summary()) for r in runs]
    for note in notes:
        print(f"danmask eval: {note}", file=sys.stderr)
    if args.json:
        for s in summaries:
            print(json.dumps(s), flush=True)
    else:
        scored = sum(1 for s in sequences if s.scored)
        print(f"dataset {args.dataset}: {len(sequences)} sequences, {scored} with truth to score "
              f"({sum(len(s.scored) for s in sequences)} frames each method)")
        if scored:
            print_table(summaries)
    if out is not None:
        path = write_report(summaries, out, str(args.dataset), notes)
        print(f"report: {path}", file=sys.stderr)
    return 0
