"""Latency medians: call counts, prior chaining, and a model whose cost is known."""
import time

import numpy as np
import pytest

from danmask.eval.latency import interleaved_latency_ms
from danmask.runtime.base import ModelSpec


class Recorder:
    """Fake SegModel that logs its calls and sleeps a fixed time."""

    def __init__(self, name, sleep_s=0.0, takes_prior=False, log=None):
        self.spec = ModelSpec(name=name, input_size=(4, 4), takes_prior=takes_prior)
        self.sleep_s, self.log, self.priors, self.resets = sleep_s, log if log is not None else [], [], 0

    def reset(self):
        self.resets += 1

    def predict(self, rgb, prior=None):
        self.log.append(self.spec.name)
        self.priors.append(None if prior is None else float(prior[0, 0]))
        time.sleep(self.sleep_s)
        return np.full((4, 4), len(self.priors), np.float32)


FRAME = np.zeros((8, 8, 3), np.uint8)


def test_median_counts_and_prior_chain():
    m = Recorder("p", takes_prior=True)
    interleaved_latency_ms({"p": m}, FRAME, runs=5, warmup=2, rounds=1)
    assert len(m.priors) == 7 and m.resets == 1
    assert m.priors == [None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # each call gets the previous output
    plain = Recorder("q")
    interleaved_latency_ms({"q": plain}, FRAME, runs=3, warmup=1, rounds=1)
    assert plain.priors == [None] * 4


def test_known_cost_and_interleaving():
    log = []
    slow, fast = Recorder("slow", 0.004, log=log), Recorder("fast", 0.0, log=log)
    ms = interleaved_latency_ms({"slow": slow, "fast": fast}, FRAME, runs=6, warmup=0, rounds=3)
    assert ms["slow"] >= 4.0 and ms["fast"] < ms["slow"]
    assert log == ["slow", "slow", "fast", "fast"] * 3  # rounds alternate between models
    with pytest.raises(ValueError):
        interleaved_latency_ms({"fast": fast}, FRAME, runs=0)
