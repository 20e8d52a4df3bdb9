"""Layout flags shared by `danmask render` and `danmask play`, so both spell and default them alike.

Each number is checked as it is parsed, by LayoutConfig itself (the one place that knows the ranges), so a bad
value is argparse's one-line usage error.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

from .layout import LayoutConfig, LayoutError


def _setting(field: str, kind: type) -> Callable[[str], float | int]:
    """An argparse type for LayoutConfig's `field`: a `kind` number that LayoutConfig accepts."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
            LayoutConfig(**{field: value})
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        except LayoutError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse.__name__ = f"layout {field}"
    return parse


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("danmaku layout")
    group.add_argument("--duration", type=_setting("duration_s", float), default=8.0, metavar="S",
                       help="seconds a scrolling comment takes to cross the screen (default 8; longer text moves "
                            "faster, as on Bilibili)")
    group.add_argument("--speed", type=_setting("speed_px_s", float), default=None, metavar="PX_S",
                       help="constant scroll speed in pixels/second instead of --duration")
    group.add_argument("--fixed-duration", type=_setting("fixed_duration_s", float), default=4.0, metavar="S",
                       help="seconds top/bottom comments stay (default 4)")
    group.add_argument("--font-scale", type=_setting("font_scale", float), default=1.0, metavar="X",
                       help="text size multiplier 0.1..10 (size-25 comments are 25 px on a 480-line video, default 1)")
    group.add_argument("--area", type=_setting("area", float), default=1.0, metavar="FRACTION",
                       help="fraction of the picture height, from the top, that comments may use (default 1)")
    group.add_argument("--density", type=_setting("density", float), default=1.0, metavar="FRACTION",
                       help="fraction of comments shown, thinned evenly over time (default 1)")
    group.add_argument("--max-on-screen", type=_setting("max_on_screen", int), default=None, metavar="N",
                       help="never show more than N comments at once")
    group.add_argument("--allow-overlap", action="store_true",
                       help="draw every comment even when lanes are full (default: drop what does not fit)")
    group.add_argument("--opacity", type=_setting("opacity", float), default=1.0, metavar="A",
                       help="comment opacity 0..1 (default 1)")
    group.add_argument("--font", default=None, metavar="FILE",
                       help="font file (default: an installed CJK font; env DANMASK_FONT)")


def layout_config_from_args(args: argparse.Namespace) -> LayoutConfig:
    """The LayoutConfig of the layout flags (each already checked while parsing)."""
    return LayoutConfig(
        duration_s=args.duration, speed_px_s=args.speed, fixed_duration_s=args.fixed_duration,
        font_scale=args.font_scale, area=args.area, density=args.density, max_on_screen=args.max_on_screen,
        anti_overlap=not args.allow_overlap, opacity=args.opacity)
