"""Model latency as a robust number: the median of many `predict` calls on one fixed frame, after warm-up.

The median (not the mean) keeps a busy machine's occasional stalls out of the figure; warm-up runs let the
backend allocate buffers and pick kernels before timing starts.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from ..runtime.base import SegModel


def median_latency_ms(model: SegModel, frame: np.ndarray, runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of one `model.predict(frame)` in milliseconds (the prior is the previous output)."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    reset = getattr(model, "reset", None)
    if reset is not None:
        reset()
    feed_prior = model.spec.takes_prior
    prior = None
    for _ in range(warmup):
        out = model.predict(frame, prior)
        prior = out if feed_prior else None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = model.predict(frame, prior)
        times.append(time.perf_counter() - start)
        prior = out if feed_prior else None
    return statistics.median(times) * 1000.0
