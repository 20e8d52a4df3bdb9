"""`danmask` console script: one module per subcommand under danmask.commands, imported lazily.

Each command module defines `register(subparsers)` (adds its parser, sets `func`) and keeps heavy imports
(torch, matplotlib, onnxruntime) inside its functions so `danmask --help` stays fast and torch-free.
Every DanmaskError becomes one line on stderr and exit code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import DanmaskError

# name -> module under danmask.commands (kept in the order --help lists them)
COMMANDS = {
    "demo": "demo",
    "segment": "segment",
    "export": "export",
    "info": "info",
    "render": "render",
    "play": "play",
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


def main(argv: list[str] | None = None) -> int:
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
