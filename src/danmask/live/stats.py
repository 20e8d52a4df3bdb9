"""What a live run measured: frames captured, masked and dropped, capture-to-mask latency, and the rate."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LiveStats:
    """Counters of one live run; `summary()` is the CLI's `--json` object.

    `frames` counts every frame decoded from the source, `masked` those the model segmented; the difference was
    dropped because a newer frame arrived first (the newest frame wins). Latency runs from the moment a frame was
    decoded here (released by the pacer, for `--realtime` files) to the moment its mask is ready.
    """

    frames: int = 0
    masked: int = 0
    scene_cuts: int = 0
    discontinuities: int = 0  # timestamp jumps in the source (restarts, wraps) that reset the temporal stage
    written: int | None = None  # frames in the burned-in file (with an output)
    latencies_s: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None

    @property
    def dropped(self) -> int:
        return self.frames - self.masked

    def elapsed_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def summary(self) -> dict:
        """frames, masked, dropped, latency_ms_p50, latency_ms_p95, fps (masks per second of wall time), and more
        (`written`: frames in the burned-in file, when there is one)."""
        lat = np.asarray(self.latencies_s, dtype=np.float64) * 1000.0
        p50, p95 = (round(float(np.percentile(lat, q)), 2) for q in (50, 95)) if lat.size else (None, None)
        elapsed = self.elapsed_s()
        summary = {
            "frames": self.frames, "masked": self.masked, "dropped": self.dropped,
            "latency_ms_p50": p50, "latency_ms_p95": p95,
            "fps": round(self.masked / elapsed, 2) if elapsed > 0 else None,
            "masked_share": round(self.masked / self.frames, 4) if self.frames else None,
            "elapsed_s": round(elapsed, 3), "scene_cuts": self.scene_cuts, "discontinuities": self.discontinuities,
        }
        if self.written is not None:
            summary["written"] = self.written
        return summary
