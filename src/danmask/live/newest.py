"""A one-slot mailbox between live stages: the newest item wins.

Why: a stage that falls behind (the model, the page encoder, the burn-in encoder) must skip to the present, never
work through a queue of the past; so `put` replaces an item nobody took yet and counts it as dropped, and lag
cannot accumulate anywhere in the chain.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Newest(Generic[T]):
    """Thread-safe slot: `put` never blocks, `get` waits for the next item; `close` ends the stream."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0  # items replaced before anyone took them

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def close(self) -> None:
        """No more items: `get` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """Closed, and the last item was taken."""
        with self._cond:
            return self._closed and self._item is None

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to `timeout` s (None: until one comes or the slot is closed).

        Returns None when the slot is closed and empty, or on timeout (tell them apart with `finished`).
        """
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item
