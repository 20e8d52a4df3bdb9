"""Model latency as a robust number: the median of many `predict` calls on one fixed frame, after warm-up.

The median (not the mean) keeps a busy machine's occasional stalls out of the figure; warm-up runs let the
backend allocate buffers and pick kernels before timing starts.
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
    for name, model in models.items():
        reset = getattr(model, "reset", None)
        if reset is not None:
            reset()
        for _ in range(warmup):
            priors[name] = _step(model, frame, priors[name])
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(per_round):
                start = time.perf_counter()
                priors[name] = _step(model, frame, priors[name])
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000.0 for name, t in times.items()}


def _step(model: SegModel, frame: np.ndarray, prior: np.ndarray | None) -> np.ndarray | None:
    """One predict; returns the next prior (the output for prior-taking models, else None)."""
    out = model.predict(frame, prior)
    return out if model.spec.takes_prior else None
