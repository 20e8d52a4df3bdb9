"""Which tracked people to protect: the people in focus of the shot, not every face in a far crowd.

The rule (documented in docs/people.md), per tracked person and frame:

    score = area x centrality
    area       = the person's box area as a fraction of the frame's
    centrality = 0.5 + 0.5 * exp(-d^2 / (2 * 0.3^2)), d = distance of the box centre from the frame centre,
                 in frame widths and heights (0 at the centre, 0.71 in a corner)

The score is smoothed over time (half-life `half_life_s`), so one odd frame changes nothing and a person's time on
screen counts. A person is salient while their smoothed score is at least `enter` x the highest one in the shot,
and stays salient until it falls below `leave` x the highest (hysteresis: nobody flickers in and out). Relative,
not absolute: two dancers of the same size are both salient; the audience behind one dancer is not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

CENTRE_SIGMA = 0.3


@dataclass(frozen=True)
class SalienceRule:
    """Thresholds of the rule above; `everyone=True` makes every tracked person salient."""

    enter: float = 0.4
    leave: float = 0.25
    half_life_s: float = 0.5
    everyone: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.leave <= self.enter <= 1.0:
            raise ValueError(f"need 0 < leave <= enter <= 1, got leave={self.leave}, enter={self.enter}")
        if self.half_life_s < 0:
            raise ValueError(f"half_life_s must be >= 0, got {self.half_life_s}")


def frame_score(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    """Salience of one box in one frame of (h, w): area fraction x centrality."""
    h, w = size
    x0, y0, x1, y1 = box
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0) / float(w * h)
    dx, dy = (x0 + x1) / (2 * w) - 0.5, (y0 + y1) / (2 * h) - 0.5
    return area * (0.5 + 0.5 * math.exp(-(dx * dx + dy * dy) / (2 * CENTRE_SIGMA ** 2)))


def smooth(previous: float | None, score: float, dt: float, half_life_s: float) -> float:
    """Exponential smoothing in time (VFR-safe: the weight depends on the time step, not on frames)."""
    if previous is None or half_life_s == 0:
        return score
    keep = 0.5 ** (max(dt, 0.0) / half_life_s)
    return keep * previous + (1 - keep) * score


def decide(scores: dict[int, float], salient: set[int], rule: SalienceRule) -> set[int]:
    """The ids salient now, given smoothed scores and who was salient before."""
    if rule.everyone:
        return set(scores)
    top = max(scores.values(), default=0.0)
    return {i for i, s in scores.items() if s >= (rule.leave if i in salient else rule.enter) * top and s > 0}
