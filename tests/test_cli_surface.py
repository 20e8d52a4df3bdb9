"""The command-line surface as one thing: every command's and subcommand's --help works, a flag name means the same
in every command (type, choices, metavar, short form), every number is checked, every size is WxH, and every output
path is -o/--output."""
from __future__ import annotations

import argparse
from collections import defaultdict

import pytest

from danmask.cli import build_parser, main

# What a flag name must always come with; a command may lack a flag, never spell it otherwise.
SHORT_FORMS = {"--output": "-o", "--model": "-m", "--quiet": "-q", "--comments": "-c", "--track": "-t",
               "--format": "-f"}
OUTPUT_WORDS = ("--out", "--output-dir", "--report", "--dest")  # old spellings: hidden aliases at most


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of the top-level parser and every command and subcommand under it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, path + (name,))


ALL = list(commands(build_parser()))


def visible_options(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)]


def test_every_command_is_covered():
    names = {" ".join(path) for path, _ in ALL}
    assert {"segment", "export", "render", "play", "demo", "eval", "bench", "info", "models", "train fit",
            "train labels", "train convert", "train crops", "train fit-crops"} <= names


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=lambda p: " ".join(p) or "danmask")
def test_help_parses(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    assert "usage: danmask" in capsys.readouterr().out


def _signature(action: argparse.Action) -> dict:
    return {"type": getattr(action.type, "__name__", action.type), "choices": action.choices,
            "metavar": action.metavar, "flags": sorted(action.option_strings),
            "takes_value": action.nargs != 0}


def test_a_flag_means_the_same_in_every_command():
    seen: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, parser in ALL:
        for action in visible_options(parser):
            sig = _signature(action)
            if "--output" in action.option_strings:
                sig.pop("metavar")  # names what is written: OUT.dmask, DIR, OUT.mp4 ...
            long = max(action.option_strings, key=len)
            seen[long][repr(sig)].append(" ".join(path))
    differing = {flag: dict(sigs) for flag, sigs in seen.items() if len(sigs) > 1}
    assert not differing, differing


def test_conventions():
    for path, parser in ALL:
        where = " ".join(path)
        for action in visible_options(parser):
            flags = action.option_strings
            assert action.type not in (int, float), f"{where} {flags}: a number without range check"
            for long, short in SHORT_FORMS.items():
                if long in flags:
                    assert short in flags, f"{where}: {long} without {short}"
            assert not set(OUTPUT_WORDS) & set(flags), f"{where}: {flags} is not spelled -o/--output"
            if action.metavar and "x" in str(action.metavar).lower() and "size" in " ".join(flags):
                assert action.metavar == "WxH", f"{where} {flags}: sizes are WxH"


@pytest.mark.parametrize("argv", [
    ["segment", "v.mp4", "-o", "x.dmask", "--threads", "-3"],
    ["segment", "v.mp4", "-o", "x.dmask", "--threads", "0"],
    ["segment", "v.mp4", "-o", "x.dmask", "--mask-size", "0x10"],
    ["segment", "v.mp4", "-o", "x.dmask", "--mask-size", "320*180"],
    ["render", "v.mp4", "-c", "c.xml", "-o", "o.mp4", "--crf", "99"],
    ["render", "v.mp4", "-c", "c.xml", "-o", "o.mp4", "--area", "2"],
    ["render", "v.mp4", "-c", "c.xml", "-o", "o.mp4", "--duration", "nan"],
    ["render", "v.mp4", "-c", "c.xml", "-o", "o.mp4", "--max-on-screen", "0"],
    ["play", "v.mp4", "--port", "70000"],
    ["play", "v.mp4", "--opacity", "-1"],
    ["eval", "d", "--recurrent-size", "4x4"],
    ["eval", "d", "--threads", "-1"],
    ["train", "fit", "--minutes", "-5"],
    ["train", "fit", "--batch", "0"],
    ["bench", "--frames", "0"],
])
def test_bad_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and "Traceback" not in err


def test_sizes_are_width_by_height_everywhere():
    parser = build_parser()
    args = parser.parse_args(["segment", "v.mp4", "-o", "x.dmask", "--mask-size", "320x180"])
    assert args.mask_size == (180, 320)  # (h, w) in code
    args = parser.parse_args(["eval", "d", "--recurrent-size", "512x288"])
    assert args.recurrent_size == (288, 512)
    args = parser.parse_args(["render", "v.mp4", "-c", "c.xml", "-o", "o.mp4", "--mask-size", "64x36"])
    assert args.mask_size == (36, 64)


def test_old_spellings_still_work_and_say_what_to_type(capsys):
    parser = build_parser()
    assert parser.parse_args(["demo", "--output-dir", "d"]).output == "d"
    assert parser.parse_args(["train", "labels", "--rvm", "r.onnx", "--out", "c"]).out == "c"
    assert parser.parse_args(["eval", "data", "--report", "r"]).output == "r"
    err = capsys.readouterr().err
    assert err.count("deprecated, use -o/--output") == 3
