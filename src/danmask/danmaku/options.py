"""Layout flags shared by `danmask render` and `danmask play`, so both spell and default them alike."""
from __future__ import annotations

import argparse

from .layout import LayoutConfig


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("danmaku layout")
    group.add_argument("--duration", type=float, default=8.0, metavar="S",
                       help="seconds a scrolling comment takes to cross the screen (default 8; longer text moves "
                            "faster, as on Bilibili)")
    group.add_argument("--speed", type=float, default=None, metavar="PX_S",
                       help="constant scroll speed in pixels/second instead of --duration")
    group.add_argument("--fixed-duration", type=float, default=4.0, metavar="S",
                       help="seconds top/bottom comments stay (default 4)")
    group.add_argument("--font-scale", type=float, default=1.0, metavar="X",
                       help="text size multiplier (size-25 comments are 25 px on a 480-line video, default 1)")
    group.add_argument("--area", type=float, default=1.0, metavar="FRACTION",
                       help="fraction of the picture height, from the top, that comments may use (default 1)")
    group.add_argument("--density", type=float, default=1.0, metavar="FRACTION",
                       help="fraction of comments shown, thinned evenly over time (default 1)")
    group.add_argument("--max-on-screen", type=int, default=None, metavar="N",
                       help="never show more than N comments at once")
    group.add_argument("--allow-overlap", action="store_true",
                       help="draw every comment even when lanes are full (default: drop what does not fit)")
    group.add_argument("--opacity", type=float, default=1.0, metavar="A", help="comment opacity 0..1 (default 1)")
    group.add_argument("--font", default=None, metavar="FILE",
                       help="font file (default: an installed CJK font; env DANMASK_FONT)")


def layout_config_from_args(args: argparse.Namespace) -> LayoutConfig:
    """Raises LayoutError on out-of-range values (turned into a one-line CLI error)."""
    return LayoutConfig(
        duration_s=args.duration, speed_px_s=args.speed, fixed_duration_s=args.fixed_duration,
        font_scale=args.font_scale, area=args.area, density=args.density, max_on_screen=args.max_on_screen,
        anti_overlap=not args.allow_overlap, opacity=args.opacity)
