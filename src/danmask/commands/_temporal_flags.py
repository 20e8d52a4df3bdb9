"""CLI flags of the temporal stage, shared by `segment` and `demo` so both spell them the same way."""
from __future__ import annotations

import argparse


def add_temporal_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("temporal stage (every piece is on by default)")
    group.add_argument("--no-prior", action="store_true",
                       help="do not feed the previous mask to models that take it")
    group.add_argument("--no-scene-cut", action="store_true",
                       help="do not reset temporal state at scene cuts (SSIM on a 64x36 grey thumbnail)")
    group.add_argument("--no-jitter", action="store_true", help="no momentum smoothing of edge pixels")
    group.add_argument("--no-skip", action="store_true",
                       help="run the model on every frame, even when the picture is still")
    group.add_argument("--no-smooth", action="store_true", help="no 3x3 Gaussian + contrast curve on the mask")


def temporal_config_from_args(args: argparse.Namespace):
    from ..segmenter import TemporalConfig

    return TemporalConfig(prior=not args.no_prior, scene_cut=not args.no_scene_cut, jitter=not args.no_jitter,
                          skip_still=not args.no_skip, smooth=not args.no_smooth)
