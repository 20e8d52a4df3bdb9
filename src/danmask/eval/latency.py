"""Model latency as a robust number: the median of many `predict` calls on one fixed frame, after warm-up.

The median (not the mean) keeps a busy machine's occasional stalls out of the figure; warm-up runs let the
backend allocate buffers and pick kernels before timing starts. A person-tracking model is timed as it runs on
video: the fixed frame is shown as a 30 fps clip (its detector runs on schedule, each person is followed).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from ..runtime.base import SegModel


def interleaved_latency_ms(models: dict[str, SegModel], frame: np.ndarray, runs: int = 200, warmup: int = 20,
                           rounds: int = 10) -> dict[str, float]:
    """Median latency of several models timed in alternating rounds, so that a change in background load
    during the measurement hits every model alike and their ratios stay fair."""
    if runs < 1 or rounds < 1:
        raise ValueError("runs and rounds must be >= 1")
    per_round = max(1, runs // rounds)
    times: dict[str, list[float]] = {name: [] for name in models}
    priors: dict[str, np.ndarray | None] = {name: None for name in models}
    clock = _Clock()
    for name, model in models.items():
        reset = getattr(model, "reset", None)
        if reset is not None:
            reset()
        for _ in range(warmup):
            priors[name] = _step(model, frame, priors[name], clock)
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(per_round):
                start = time.perf_counter()
                priors[name] = _step(model, frame, priors[name], clock)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000.0 for name, t in times.items()}


class _Clock:
    """Display times of a simulated 30 fps clip, for models that track people over time."""

    def __init__(self) -> None:
        self.frames = 0

    def tick(self) -> float:
        self.frames += 1
        return self.frames / 30.0


def _step(model: SegModel, frame: np.ndarray, prior: np.ndarray | None, clock: _Clock) -> np.ndarray | None:
    """One predict (or tracking step); returns the next prior (the output for prior-taking models, else None)."""
    if getattr(model, "tracks_people", False):
        model.track(frame, clock.tick())
        return None
    out = model.predict(frame, prior)
    return out if model.spec.takes_prior else None
