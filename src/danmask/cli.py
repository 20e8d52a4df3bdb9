"""`danmask` console script: one module per subcommand under danmask.commands, imported lazily.

Each command module defines `register(subparsers)` (adds its parser, sets `func`) and keeps heavy imports
(torch, matplotlib, onnxruntime) inside its functions so `danmask --help` stays fast and torch-free.
Every DanmaskError becomes one line on stderr and exit code 2, and every DanmaskWarning one line on stderr;
never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import DanmaskError, DanmaskWarning

# name -> module under danmask.commands (kept in the order --help lists them)
COMMANDS = {
    "demo": "demo",
    "segment": "segment",
    "export": "export",
    "info": "info",
    "render": "render",
    "play": "play",
    "live": "live",
    "fx": "fx",
    "batch": "batch",
    "serve": "serve",
    "eval": "evaluate",
    "bench": "bench",
    "train": "train",
    "models": "models",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="danmask",
        description="Danmaku passthrough: segment the people in a video, ship the masks with it, "
        "and show bullet comments that fly behind them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"danmask.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"danmask.commands.{module}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def _one_line(show):
    """A warnings.showwarning that prints danmask's own warnings as one line, and leaves others to `show`."""

    def display(message, category, *rest, **kwargs) -> None:
        if issubclass(category, DanmaskWarning):
            print(f"danmask: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *rest, **kwargs)

    return display


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _one_line(warnings.showwarning)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        try:
            return int(args.func(args) or 0)
        except DanmaskError as exc:
            print(f"danmask {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("danmask: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
