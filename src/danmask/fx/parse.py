"""`danmask fx parse`: per-pixel body parts of every person, and effects drawn from them. Two networks give the
parts (`MODELS`): BodyPix (`fx.bodypix`, the default) or danmask's own distilled int8 student (`fx.parse_student`).

Effects (`EFFECTS`):
- `colour-map`: each part group (head, torso, arms, hands, legs, feet) tinted with its own colour over the frame;
- `recolour-torso`: the torso (clothes on the upper body) turned to `colour`, keeping the fabric's shading
  (hue and saturation replaced, lightness kept): the rest of the picture is untouched;
- `danmaku`: bullet comments that pass behind the chosen part groups only (default head and hands: the face and
  the gestures stay clear, the comments cross the clothes), with danmask's own layout and burn-in (`fx.behind`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError, ModelError
from ..video import VideoFrame
from .bodypix import DEFAULT_BOX, GROUPS, BodyPix
from .loop import FxResult, run_effect

EFFECTS = ("colour-map", "recolour-torso", "danmaku")
MODELS = ("bodypix", "student")  # the first is the default
# RGB per group (index 0 = background, unused)
PALETTE = np.array([(0, 0, 0), (255, 200, 60), (60, 120, 255), (60, 220, 90), (255, 80, 200), (230, 60, 50),
                    (150, 90, 255)], np.uint8)
ALPHA = 0.55  # colour-map opacity over the frame
DEFAULT_COLOUR = (40, 200, 255)  # recolour-torso's default, RGB


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#RRGGBB' or 'RRGGBB' -> (r, g, b).

    Raises:
        DanmaskError: not six hex digits.
    """
    t = text.strip().lstrip("#")
    if len(t) != 6 or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise DanmaskError(f"colour must be #RRGGBB, got {text!r}")
    return int(t[0:2], 16), int(t[2:4], 16), int(t[4:6], 16)


def colour_map(rgb: np.ndarray, groups: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Every person pixel blended with its group's colour (`PALETTE`); background untouched."""
    person = groups > 0
    out = rgb.copy()
    blend = rgb[person].astype(np.float32) * (1 - alpha) + PALETTE[groups[person]].astype(np.float32) * alpha
    out[person] = blend.astype(np.uint8)
    return out


def recolour(rgb: np.ndarray, region: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """`region` (bool) turned to `colour`'s hue and saturation, each pixel keeping its own lightness; edges
    feathered over a pixel or two so the region does not look cut out."""
    hls = cv2.cvtColor(rgb, cv2.COLOR_RGB2HLS)
    target = cv2.cvtColor(np.uint8([[colour]]), cv2.COLOR_RGB2HLS)[0, 0]
    tinted = hls.copy()
    tinted[..., 0], tinted[..., 2] = target[0], target[2]
    tinted = cv2.cvtColor(tinted, cv2.COLOR_HLS2RGB)
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), max(0.8, rgb.shape[0] / 360))[..., None]
    return (rgb * (1 - soft) + tinted * soft).astype(np.uint8)


@dataclass
class ParseStats:
    """Time per frame in the networks (BodyPix; with per_person also the detector and every crop's pass)."""

    model_ms: list[float] = field(default_factory=list)


def create_parser(model: str | Path = MODELS[0], *, input_size: tuple[int, int] = DEFAULT_BOX, threads: int = 1,
                  device: str = "cpu"):
    """The network by name (`MODELS`) or a student .onnx file: an object with `parts(rgb, size=None)` -> group
    map and `model_ms` (such an object given instead of a name is returned as it is).

    Raises:
        DanmaskError: an unknown name (the message lists the valid ones).
        ModelError: a student file that is missing or not a parse-student graph.
    """
    if not isinstance(model, (str, Path)):
        return model
    if model == "bodypix":
        return BodyPix(input_size=input_size, threads=threads, device=device)
    if model == "student" or str(model).endswith(".onnx"):
        from .parse_student import WEIGHTS, ParseStudent

        path = WEIGHTS if model == "student" else Path(model)
        if not path.is_file():
            raise ModelError(f"{path}: student ONNX file not found")
        return ParseStudent(input_size=input_size, threads=threads, device=device, path=path)
    raise DanmaskError(f"unknown parse model {model!r}; valid: {', '.join(MODELS)}, or a student .onnx file")


class ParseEffect:
    """Per frame: the part groups (BodyPix or the student), then the chosen effect drawn."""

    def __init__(self, *, effect: str = "colour-map", colour: tuple[int, int, int] = DEFAULT_COLOUR,
                 input_size: tuple[int, int] = DEFAULT_BOX, per_person: bool = False, comments=None,
                 protect: str | tuple[str, ...] = ("head", "hands"), font: str | Path | None = None,
                 threads: int = 1, device: str = "cpu", model: str = MODELS[0]) -> None:
        if effect not in EFFECTS:
            raise DanmaskError(f"unknown effect {effect!r}; valid: {', '.join(EFFECTS)}")
        self.effect, self.colour = effect, colour
        self.behind = None
        if effect == "danmaku":
            if comments is None:
                raise DanmaskError("--effect danmaku needs a comment file (-c/--comments FILE)")
            from .behind import BehindParts

            self.behind = BehindParts(comments, protect, font)
        self.model = create_parser(model, input_size=input_size, threads=threads, device=device)
        self.crops = None
        if per_person:
            from .crops import PersonCrops

            self.crops = PersonCrops(self.model, threads=threads, device=device)
        self.stats = ParseStats()

    def groups(self, rgb: np.ndarray) -> np.ndarray:
        """Part groups (0 background, 1..6 = GROUPS) at the frame's size: whole frame, or person by person."""
        runner = self.crops or self.model
        groups = runner.parts(rgb)
        self.stats.model_ms.append(runner.model_ms)
        return groups

    def apply(self, rgb: np.ndarray, frame: VideoFrame | None = None) -> np.ndarray:
        groups = self.groups(rgb)
        if self.behind is not None:
            return self.behind.draw(rgb, groups, frame.time if frame is not None else 0.0)
        if self.effect == "recolour-torso":
            return recolour(rgb, groups == GROUPS.index("torso") + 1, self.colour)
        return colour_map(rgb, groups)


@dataclass
class ParseResult(FxResult):
    stats: ParseStats = field(default_factory=ParseStats)

    @property
    def model_ms(self) -> float:
        """Median time in the networks per frame."""
        return float(np.median(self.stats.model_ms)) if self.stats.model_ms else 0.0


def run_parse(source: str | Path, *, output: str | Path | None = None, effect: str = "colour-map",
              colour: tuple[int, int, int] | str = DEFAULT_COLOUR, input_size: tuple[int, int] = DEFAULT_BOX,
              per_person: bool = False, comments: str | Path | list | None = None,
              protect: str | tuple[str, ...] = ("head", "hands"), font: str | Path | None = None,
              realtime: bool = False, timeout: float = 5.0,
              stop_after: float | None = None, stop: threading.Event | None = None, threads: int = 1,
              device: str = "cpu", progress: bool = False, model: str = MODELS[0]) -> ParseResult:
    """Body parts of every person in `source`, drawn as `effect` into `output`.

    Args:
        source: a video file, a camera (/dev/videoN), a stream URL, or a file with `realtime`.
        output: the video with the effect (None: run without writing, e.g. to time it).
        effect: one of EFFECTS: `colour-map`, `recolour-torso` or `danmaku`.
        colour: recolour-torso's colour, (r, g, b) or '#RRGGBB'.
        input_size: (h, w) box the network's input fits in, the frame's aspect kept (default (240, 320); turned
            for portrait). BodyPix rounds each side up to 16k + 1 (4:3 runs at 321x241, 16:9 at 321x193), the
            student to a multiple of 16 (4:3 at 320x240, 16:9 at 320x176).
        per_person: find people first (person-track's detector) and parse each in their own crop: small and
            far people get parts too, at one more network pass per person (`fx.crops`).
        comments, protect, font: `danmaku`'s comment file (Bilibili XML/JSON, DPlayer JSON; or a list of
            danmaku Comments), the part groups the comments pass behind ('head,hands'), the font (default: a
            CJK font found as `danmask render` finds it).
        realtime, timeout, stop_after: live sources (see `danmask live`); stop after `stop_after` seconds.
        stop: set it to end the run cleanly (the output is a complete file of the frames so far).
        model: the network, one of MODELS: `bodypix` (default) or `student` (danmask's own, 0.165 MB int8;
            docs/models/parse-student.md), or the path of a student .onnx file (a training run's float graph).

    Raises:
        VideoError, OutputError, ModelError, CommentError, FontError, DanmaskError (a bad effect, colour or
            part group): one-line reasons.

    Example:
        >>> run_parse("clip.mp4", output="parts.mp4", effect="recolour-torso", colour="#ff3030")  # doctest: +SKIP
    """
    from .loop import check_paths

    if isinstance(colour, str):
        colour = parse_colour(colour)
    check_paths(source, output)
    fx = ParseEffect(effect=effect, colour=colour, input_size=input_size, per_person=per_person, comments=comments,
                     protect=protect, font=font, threads=threads, device=device, model=model)
    base = run_effect(fx, source, output, realtime=realtime, timeout=timeout, stop_after=stop_after, stop=stop,
                      progress=progress, desc="parse")
    return ParseResult(**vars(base), stats=fx.stats)
