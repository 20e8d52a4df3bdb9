"""argparse types shared by the commands: a bad value becomes argparse's one-line usage error.

Every number a user types is checked here, so no command clamps or misreads one. Sizes are typed WxH (width
first, as people and FFmpeg write them) and parsed to (h, w), the order of every size in danmask's code.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer argument type that refuses values below `minimum`."""
    return int_between(minimum, None)


def int_between(minimum: int, maximum: int | None) -> Callable[[str], int]:
    """An integer argument type for minimum..maximum (no upper bound when `maximum` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}" if maximum is None else f"integer in {minimum}..{maximum}"
    return parse


def positive_float(text: str) -> float:
    """A finite number > 0 (durations, time budgets)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


positive_float.__name__ = "number > 0"


def frame_size(minimum: int = 1, maximum: int = 4096) -> Callable[[str], tuple[int, int]]:
    """'WxH' (e.g. 320x180) -> (h, w), each side in minimum..maximum pixels."""

    def parse(text: str) -> tuple[int, int]:
        try:
            w, h = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x180, got {text!r}") from None
        if not (minimum <= w <= maximum and minimum <= h <= maximum):
            raise argparse.ArgumentTypeError(f"each side must be {minimum}..{maximum} px, got {text!r}")
        return h, w

    parse.__name__ = "WIDTHxHEIGHT"
    return parse
