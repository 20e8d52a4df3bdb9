"""The capture stage: a thread reads the source as fast as it delivers and keeps only the newest frame.

Why a thread: demuxing and decoding must keep pace with the source (a UDP socket overflows, a camera stalls,
otherwise) whatever the model does; the model then always takes the newest decoded frame and the ones it had no
time for are dropped, so the picture it segments is never older than one model step.
"""
from __future__ import annotations

import threading

from .newest import Newest
from .source import Captured, capture


class Capture(threading.Thread):
    """Runs `source.capture(source, ...)` into a Newest slot; an error is re-raised by `take` after the end."""

    def __init__(self, source: str, *, realtime: bool = False, timeout_s: float = 5.0) -> None:
        super().__init__(name="danmask-live-capture", daemon=True)
        self.stopping = threading.Event()
        self.frames = capture(source, realtime=realtime, timeout_s=timeout_s, should_stop=self.stopping.is_set)
        self.slot: Newest[Captured] = Newest()
        self.captured = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for item in self.frames:
                self.captured += 1
                self.slot.put(item)
        except Exception as exc:  # handed to the model's thread by take()
            self.error = exc
        finally:
            self.slot.close()

    def take(self, timeout: float = 0.1) -> Captured | None:
        """The newest frame; None when none came within `timeout`, or when the source ended (`ended`).

        Raises:
            Exception: what stopped the source (a VideoError), once every frame before it was taken.
        """
        item = self.slot.get(timeout)
        if item is None and self.slot.finished and self.error is not None:
            raise self.error
        return item

    @property
    def ended(self) -> bool:
        return self.slot.finished

    def stop(self, wait_s: float = 1.0) -> None:
        """Ask the reader to stop; a read blocked on a dead network source ends at its own timeout, so the wait
        is bounded and the thread (a daemon) is left to finish by itself."""
        self.stopping.set()
        self.join(wait_s)
