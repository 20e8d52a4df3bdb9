"""The memory network as a `danmask eval --vos` method (`--model memory-net`): the eval's Propagator protocol on
top of `MemoryPropagator`, masks returned at the frames' size."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .propagate import MemoryPropagator


class MemoryNetwork:
    name = "memory-net"

    def __init__(self, weights: str | Path | None = None, threads: int = 1, **_: object) -> None:
        self.runtime = MemoryPropagator(weights, threads=threads)

    def propagate(self, frames: Iterable[tuple[np.ndarray, float]], first_masks: dict[int, np.ndarray]
                  ) -> Iterator[dict[int, np.ndarray]]:
        shape = None

        def rgbs():
            nonlocal shape
            for rgb, _ in frames:
                shape = rgb.shape[:2]
                yield rgb

        for i, result in enumerate(self.runtime.propagate(rgbs(), first_masks)):
            if i == 0:
                yield {k: m.astype(bool) for k, m in first_masks.items()}
                continue
            h, w = shape
            yield {k: cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5 for k, m in result.masks.items()}
