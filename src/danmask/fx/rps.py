"""`danmask fx rps`: rock / paper / scissors / none for every hand, and a game against the person in the video.

Hands: MediaPipe Hands (`fx.hands`, palm detector + landmark model from the mediapipe wheel, run by ai-edge-litert);
the gesture: danmask's own small classifier on the 21 landmarks (`fx.rps_model`, trained by `fx.rps_train`), its
probabilities smoothed over a few frames per hand so the label does not flicker.

The game (`game=True`): rounds of `round_s` seconds of source time: "rock... paper... scissors..." counts down,
then at "shoot!" danmask throws (drawn at random when the round starts, before it can see the hand) and the
player's throw is the gesture most seen on the largest hand in the last 0.3 s. No hand, or "none", is no throw:
the round is not scored. The score stays on screen; the result of the round shows until the next countdown.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from ..video import VideoFrame
from .hands import BONES, Hand, HandTracker
from .loop import FxResult, run_effect
from .rps_model import CLASSES, RpsClassifier

BEATS = {"rock": "scissors", "paper": "rock", "scissors": "paper"}
COLOURS = {"rock": (255, 90, 60), "paper": (60, 200, 255), "scissors": (255, 220, 40), "none": (200, 200, 200)}
SMOOTH = 0.5  # weight of the newest frame's probabilities
WINDOW_S = 0.3  # the player's throw: the most seen gesture in this last stretch before "shoot"
SHOW_S = 1.2  # the round's result stays this long before the next countdown


def winner(player: str, computer: str) -> str:
    """"player", "computer" or "draw"."""
    if player == computer:
        return "draw"
    return "player" if BEATS[player] == computer else "computer"


@dataclass
class Score:
    player: int = 0
    computer: int = 0
    draws: int = 0
    no_throw: int = 0
    rounds: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"player": self.player, "danmask": self.computer, "draws": self.draws, "no_throw": self.no_throw,
                "rounds": self.rounds}


class RpsGame:
    """Countdown rounds on the source's clock; `update(t, label)` each frame, `draw(rgb, t)` the banner."""

    def __init__(self, round_s: float = 3.0, seed: int | None = None) -> None:
        if not round_s > 0.6:
            raise DanmaskError(f"rps: a round must last more than 0.6 s (got {round_s})")
        self.round_s, self.rng = round_s, np.random.default_rng(seed)
        self.score = Score()
        self.start: float | None = None
        self.throw = str(self.rng.choice(list(BEATS)))
        self.seen: deque[tuple[float, str]] = deque()
        self.last: dict | None = None

    def update(self, t: float, label: str | None) -> None:
        if self.start is None:
            self.start = t
        self.seen.append((t, label or "none"))
        while self.seen and self.seen[0][0] < t - WINDOW_S:
            self.seen.popleft()
        if t - self.start >= self.round_s:  # shoot
            player = Counter(lbl for _, lbl in self.seen).most_common(1)[0][0]
            self._score(t, player)
            self.start = t + SHOW_S
            self.throw = str(self.rng.choice(list(BEATS)))

    def _score(self, t: float, player: str) -> None:
        record = {"time": round(t, 3), "player": player, "danmask": self.throw}
        if player == "none":
            self.score.no_throw += 1
            record["result"] = "no throw"
        else:
            result = winner(player, self.throw)
            record["result"] = {"player": "you win", "computer": "danmask wins", "draw": "draw"}[result]
            if result == "player":
                self.score.player += 1
            elif result == "computer":
                self.score.computer += 1
            else:
                self.score.draws += 1
        self.score.rounds.append(record)
        self.last = record

    def draw(self, rgb: np.ndarray, t: float) -> None:
        h, w = rgb.shape[:2]
        scale = max(0.4, w / 900)
        s = self.score
        _banner(rgb, f"you {s.player} : {s.computer} danmask   draws {s.draws}", (8, int(30 * scale)), scale)
        if self.start is None:
            return
        if t < self.start and self.last:  # showing the last round's result
            r = self.last
            _banner(rgb, f"you: {r['player']}  danmask: {r['danmask']}  -> {r['result']}",
                    (8, h - int(14 * scale)), scale, COLOURS.get(r["danmask"]))
        else:
            step = int((t - self.start) / (self.round_s / 3))
            word = ("rock...", "paper...", "scissors...")[min(step, 2)]
            _banner(rgb, word, (8, h - int(14 * scale)), scale * 1.3)


def _banner(rgb: np.ndarray, text: str, org: tuple[int, int], scale: float,
            colour: tuple[int, int, int] | None = None) -> None:
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(2 * scale))
    (tw, th), base = cv2.getTextSize(text, font, 0.8 * scale, thick)
    x, y = org
    cv2.rectangle(rgb, (x - 4, y - th - 6), (x + tw + 4, y + base), (0, 0, 0), -1)
    cv2.putText(rgb, text, (x, y), font, 0.8 * scale, colour or (255, 255, 255), thick, cv2.LINE_AA)


def draw_hand(rgb: np.ndarray, hand: Hand, label: str, p: float) -> None:
    colour = COLOURS[label]
    scale = max(rgb.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    pts = np.round(hand.landmarks[:, :2]).astype(np.int32)
    for a, b in BONES:
        cv2.line(rgb, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA)
    for q in pts:
        cv2.circle(rgb, tuple(q), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    x0, y0 = int(pts[:, 0].min()), int(pts[:, 1].min())
    font = cv2.FONT_HERSHEY_SIMPLEX
    text = f"{label} {p:.0%}"
    (tw, th), _ = cv2.getTextSize(text, font, 0.6 * scale, thick)
    y0 = max(th + 6, y0 - 6)
    cv2.rectangle(rgb, (x0, y0 - th - 4), (x0 + tw + 4, y0 + 2), colour, -1)
    cv2.putText(rgb, text, (x0 + 2, y0 - 2), font, 0.6 * scale, (0, 0, 0), thick, cv2.LINE_AA)


@dataclass
class RpsStats:
    hands_ms: list[float] = field(default_factory=list)  # hand tracker per frame
    classify_ms: list[float] = field(default_factory=list)
    gestures: Counter = field(default_factory=Counter)  # hand-frames per label

    def summary(self) -> dict:
        med = lambda v: round(float(np.median(v)), 2) if v else None  # noqa: E731
        return {"hands_ms": med(self.hands_ms), "classify_ms": med(self.classify_ms),
                "gestures": {c: self.gestures.get(c, 0) for c in CLASSES}}


class RpsEffect:
    """Per frame: hands, their gestures (smoothed per hand id), drawn; the game's banner when playing."""

    def __init__(self, *, max_hands: int = 2, game: bool = False, round_s: float = 3.0, seed: int | None = None,
                 threads: int = 1) -> None:
        self.tracker = HandTracker(max_hands=max_hands, threads=threads)
        self.classifier = RpsClassifier()
        self.game = RpsGame(round_s, seed) if game else None
        self.smoothed: dict[int, np.ndarray] = {}
        self.stats = RpsStats()

    def gestures(self, rgb: np.ndarray, t: float) -> list[tuple[Hand, str, float]]:
        """(hand, label, probability) for every hand in the frame."""
        t0 = time.perf_counter()
        hands = self.tracker.step(rgb, t)
        t1 = time.perf_counter()
        out = []
        for hand in hands:
            p = self.classifier.probabilities(hand.landmarks)
            prev = self.smoothed.get(hand.id)
            p = p if prev is None else SMOOTH * p + (1 - SMOOTH) * prev
            self.smoothed[hand.id] = p
            i = int(np.argmax(p))
            out.append((hand, CLASSES[i], float(p[i])))
            self.stats.gestures[CLASSES[i]] += 1
        self.smoothed = {h.id: self.smoothed[h.id] for h in hands}
        self.stats.hands_ms.append((t1 - t0) * 1000)
        self.stats.classify_ms.append((time.perf_counter() - t1) * 1000)
        return out

    def apply(self, rgb: np.ndarray, frame: VideoFrame) -> np.ndarray:
        found = self.gestures(rgb, frame.time)
        for hand, label, p in found:
            draw_hand(rgb, hand, label, p)
        if self.game is not None:
            biggest = max(found, key=lambda f: _area(f[0]), default=None)
            self.game.update(frame.time, biggest[1] if biggest else None)
            self.game.draw(rgb, frame.time)
        return rgb


def _area(hand: Hand) -> float:
    x0, y0, x1, y1 = hand.box()
    return (x1 - x0) * (y1 - y0)


@dataclass
class RpsResult(FxResult):
    stats: RpsStats = field(default_factory=RpsStats)
    score: Score | None = None  # the game's, when playing


def run_rps(source: str | Path, *, output: str | Path | None = None, game: bool = False, round_s: float = 3.0,
            seed: int | None = None, max_hands: int = 2, realtime: bool = False, timeout: float = 5.0,
            stop_after: float | None = None, stop: threading.Event | None = None, threads: int = 1,
            device: str = "cpu", progress: bool = False) -> RpsResult:
    """Rock / paper / scissors / none on every hand in `source`, drawn on the video; with `game`, a game against
    the person in the video with the score on screen.

    Args:
        source: a video file, a camera (/dev/videoN), a stream URL, or a file with `realtime`.
        output: the video with hands, gestures (and the game) drawn (None: none written).
        game: play: a countdown every `round_s` seconds, danmask throws at "shoot", the score is kept.
        round_s: seconds of one round's countdown (> 0.6).
        seed: danmask's throws (None: different every run).
        max_hands: hands followed at once.
        realtime, timeout, stop_after: live sources (see `danmask live`); stop after `stop_after` seconds.
        stop: set it to end the run cleanly (the output is a complete file of the frames so far).
        device: accepted for the CLI's common shape; the hand models run on the CPU (LiteRT).

    Raises:
        VideoError, OutputError, ModelError, DanmaskError (a bad round length): one-line reasons.

    Example:
        >>> run_rps("clip.mp4", output="rps.mp4", game=True, seed=1).score.to_json()  # doctest: +SKIP
    """
    from .loop import check_paths

    check_paths(source, output)
    fx = RpsEffect(max_hands=max_hands, game=game, round_s=round_s, seed=seed, threads=threads)
    base = run_effect(fx, source, output, realtime=realtime, timeout=timeout, stop_after=stop_after, stop=stop,
                      progress=progress, desc="rps")
    return RpsResult(**vars(base), stats=fx.stats, score=fx.game.score if fx.game else None)
