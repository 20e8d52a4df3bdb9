"""Flags several commands share, defined once so that a flag name means the same thing in every command.

The conventions: `-o/--output` for every output path, `-m/--model` for a model, `-q/--quiet`, WxH for every
size, `--threads` >= 1, `--device auto|cpu|cuda`. Older spellings stay as hidden aliases that warn once.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._argtypes import frame_size, int_at_least, int_between

DEVICES = ("auto", "cpu", "cuda")


class _DeprecatedAlias(argparse.Action):
    """A hidden old spelling of a flag: stores into the new flag's dest and says what to type instead."""

    def __init__(self, option_strings, dest, instead: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.instead = instead

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.instead}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_output(parser: argparse.ArgumentParser, help: str, *, metavar: str = "OUT", required: bool = False,
               default: str | None = None, dest: str = "output", old: Sequence[str] = ()) -> None:
    """`-o/--output PATH`; `old` lists former spellings (e.g. --out) kept as hidden aliases."""
    parser.add_argument("-o", "--output", required=required, default=default, metavar=metavar, dest=dest, help=help)
    for flag in old:
        add_deprecated_alias(parser, flag, dest=dest, instead="-o/--output", metavar=metavar)


def add_deprecated_alias(parser: argparse.ArgumentParser, flag: str, *, dest: str, instead: str, **kwargs) -> None:
    """A hidden old spelling `flag` of the flag stored in `dest`; using it prints what to type instead."""
    parser.add_argument(flag, action=_DeprecatedAlias, dest=dest, instead=instead, **kwargs)


def add_model(parser: argparse.ArgumentParser, help: str, *, repeat: bool = False) -> None:
    """`-m/--model NAME_OR_ONNX` (a registry name, alias or .onnx file); `repeat` collects several."""
    parser.add_argument("-m", "--model", action="append" if repeat else "store", default=None,
                        metavar="NAME_OR_ONNX", help=help)


def add_threads(parser: argparse.ArgumentParser, help: str = "inference threads (default 1)",
                default: int | None = 1) -> None:
    parser.add_argument("--threads", type=int_at_least(1), default=default, metavar="N", help=help)


def add_device(parser: argparse.ArgumentParser, help: str = "inference device; auto uses CUDA when onnxruntime "
               "has it (default auto)", default: str | None = "auto") -> None:
    parser.add_argument("--device", choices=DEVICES, default=default, help=help)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_mask_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mask-size", type=frame_size(), default=None, metavar="WxH",
                        help="mask resolution, e.g. 320x180 (default: 320 px on the long side, at the video's aspect)")


def add_segmentation(parser: argparse.ArgumentParser, model_help: str) -> None:
    """What every command that segments a video takes: the model, where it runs, the mask size, the temporal
    stage. `segmentation_options` turns them into the keywords of segment_video / iter_masks."""
    from ._temporal_flags import add_temporal_arguments

    add_model(parser, model_help)
    add_threads(parser)
    add_device(parser)
    add_mask_size(parser)
    add_temporal_arguments(parser)


def segmentation_options(args: argparse.Namespace) -> dict:
    """threads, device, config (TemporalConfig) and mask_size from `add_segmentation`'s flags."""
    from ._temporal_flags import temporal_config_from_args

    return {"threads": args.threads, "device": args.device, "config": temporal_config_from_args(args),
            "mask_size": args.mask_size}


def add_people(parser: argparse.ArgumentParser) -> None:
    """Whom a people-tracking model follows and protects: `people_model` applies these flags."""
    parser.add_argument("--everyone", action="store_true",
                        help="protect every person the model follows, not only the salient ones (the people in "
                             "focus: size, centrality, time on screen; docs/people.md). Models that track people only")
    parser.add_argument("--max-people", type=int_between(1, 32), metavar="N",
                        help="follow at most N people at once, most salient first (person-track's default is 4: "
                             "time per frame grows with each; in a crowd, 1 follows only the main person and runs "
                             "about 3x faster, see BENCHMARKS.md)")


def wants_people(args: argparse.Namespace) -> bool:
    """Whether --everyone or --max-people was given (then the model is loaded by `people_model`)."""
    return bool(args.everyone or args.max_people is not None)


def people_model(name: str, args: argparse.Namespace):
    """The model `name`, loaded, its person tracker set by --everyone and --max-people."""
    from dataclasses import replace

    from ..errors import DanmaskError
    from ..runtime import load_model

    model = load_model(name, threads=args.threads, device=args.device)
    tracker = getattr(model, "tracker", None)
    if tracker is None:
        raise DanmaskError(f"--everyone and --max-people need a model that tracks people, such as person-track; "
                           f"{name} segments whole frames")
    config = tracker.config
    tracker.config = replace(config, max_people=args.max_people or config.max_people,
                             salience=replace(config.salience, everyone=config.salience.everyone or args.everyone))
    return model
