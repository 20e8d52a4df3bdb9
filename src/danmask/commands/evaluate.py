"""`danmask eval DATASET --model A --model B`: score models against each other through the same pipeline."""
from __future__ import annotations

import argparse
import json
import math
import sys

from ._argtypes import frame_size, int_at_least
from ._flags import add_device, add_model, add_output, add_quiet, add_threads

DESCRIPTION = """\
Score segmentation models on an annotated dataset, all through the same pipeline (the Segmenter with its
temporal stage, reset between sequences). Predicted masks are upsampled to the annotation size and thresholded
at 0.5. Reports, as means over sequences: IoU (DAVIS J) and boundary F on frames with a person, temporal error
(GT-relative, dtSSD-style) and flicker (1 - IoU of consecutive masks), the share of pixels falsely marked as
person on frames without one, model latency (median of many runs at 1 and 2 threads) and pipeline frames/s.

DATASET is one of:
  a DAVIS folder    JPEGImages/480p/<seq>/*.jpg + Annotations/480p/<seq>/*.png [+ sequences.csv with a
                    `category` column: `no_person` sequences have an empty truth; and an optional `fps`
                    column: frame k is shown at k / fps, default 30]
  an image folder   images/ + masks/ with matching file stems (each image scored on its own)
  a video file      with --masks DIR (or <stem>_masks/ beside it): PNGs named by frame number from 0
  a folder of videos, each with its mask folder beside it
Mask pixels > 127 are person.

With --stability each model is scored again on copies of the dataset no viewer could tell apart from it (every
other frame from the first, every other from the second, 6 grey levels brighter, a JPEG round trip at quality
70), and each sequence's lowest, highest and average IoU over those runs is printed: a tracker's score on a hard
clip can hinge on one frame, a difference between two models inside that range says nothing, and two versions
are better compared on the average.

With --camera each model is scored again on the person sequences as a moving camera would show them, moves no
rule was tuned on: the camera rolls 45 degrees a second, zooms in to 2x and back every 2 s, or shows every third
frame; the truth moves with the image. Each sequence's IoU under each move is printed beside the measured one.

With --vos: video object segmentation, DAVIS's semi-supervised task, on a DAVIS folder. The first frame's
annotated objects (palette PNG: one per index; else one object) are propagated through each sequence by every
method (--model: first-mask, flow-dis, person-track, or package.module:factory; default the three baselines),
and J, F and J&F are reported as DAVIS defines them (first and last annotated frames not scored). Sequences with
no truth after the first frame are not scored; with -o their propagation is written as overlay video + picture.
-o writes vos.md + vos.json.
"""

EPILOG = """\
examples:
  danmask eval data/davis-people --model mediapipe-selfie --model mediapipe-selfie-landscape
  danmask eval data/davis-people --model airseg-cpu --json -o out/eval
  danmask eval clip.mp4 --masks clip_masks/ --model path/to/recurrent_peer.onnx --recurrent-size 512x288
  danmask eval data/davis-people --model person-track --model mediapipe-pose-full --stability
  danmask eval data/davis-people --model person-track --model mediapipe-pose-heavy --camera
  danmask eval data/davis-people --vos -o out/vos
  danmask eval data/crowd-vos --vos --model flow-dis -o out/crowd
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="score models on an annotated dataset (IoU, boundary F, flicker, FP, speed)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset folder or video file (layouts above)")
    add_model(p, "registry name or path to an .onnx file; repeat to compare (default: every registered "
                 "model that loads). A recurrent ONNX (inputs src + r1i..rNi, e.g. RVM) runs as a peer.", repeat=True)
    p.add_argument("--masks", metavar="DIR", help="mask folder for a video-file dataset")
    p.add_argument("--json", action="store_true", help="print one JSON object per model per line")
    p.add_argument("--vos", action="store_true",
                   help="video object segmentation: propagate the first frame's objects, score J and F as DAVIS "
                        "(--model names methods; see above)")
    add_output(p, "write an HTML report with plots and worst-frame overlays into DIR", metavar="DIR",
               old=("--report",))
    add_threads(p, "inference threads for the quality run (default 1)")
    add_device(p)
    p.add_argument("--latency-runs", type=int_at_least(0), default=200,
                   help="timed predict calls per model and thread count after --warmup, all models alternating "
                        "(0 skips latency; default 200)")
    p.add_argument("--warmup", type=int_at_least(0), default=20, help="untimed predict calls before timing (default 20)")
    p.add_argument("--raw", action="store_true",
                   help="turn the temporal stage off (model output only) to see what it contributes")
    p.add_argument("--recurrent-size", type=frame_size(minimum=8), default=None, metavar="WxH",
                   help="input size for recurrent ONNX peers (default 512x288)")
    p.add_argument("--stability", action="store_true",
                   help="also score each model on 4 imperceptibly changed copies of the dataset and print each "
                        "sequence's IoU range (5x the time)")
    p.add_argument("--camera", action="store_true",
                   help="also score each model on the person sequences with the camera rolling, zooming, or at a "
                        "third of the frame rate, and print each sequence's IoU under each move (see above)")
    p.add_argument("--worst", type=int_at_least(0), default=8, help="worst frames per model in the report (default 8)")
    add_quiet(p)
    p.set_defaults(func=run)


def _clean(value):
    """JSON has no NaN: undefined scores are null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _cell(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def print_table(summaries: list[dict]) -> None:
    head = f"{'model':<32} {'IoU':>6} {'bF':>6} {'tErr':>7} {'flick':>7} {'FP':>7} {'ms1t':>7} {'ms2t':>7} {'fps':>6} {'frames':>6}"
    print(head)
    print("-" * len(head))
    for s in summaries:
        name = s["model"] if len(s["model"]) <= 32 else "…" + s["model"][-31:]
        print(f"{name:<32} {_cell(s['mean_iou'], '{:.3f}'):>6} {_cell(s['boundary_f'], '{:.3f}'):>6} "
              f"{_cell(s['temporal_error'], '{:.4f}'):>7} {_cell(s['flicker'], '{:.4f}'):>7} "
              f"{_cell(s['fp_frac'], '{:.2%}'):>7} {_cell(s['median_ms'], '{:.2f}'):>7} "
              f"{_cell(s['median_ms_2t'], '{:.2f}'):>7} {_cell(s['fps_pipeline'], '{:.1f}'):>6} {s['frames']:>6}")


def print_stability(summaries: list[dict]) -> None:
    """Per model and person sequence: the IoU as measured and its range over the perturbed copies."""
    from ..eval.perturb import spread

    print("\nstability: IoU as measured, and lowest-highest and average over it and "
          + ", ".join(summaries[0]["stability"]["perturbations"]))
    for s in summaries:
        stab = s["stability"]
        low_high = spread(s["mean_iou"], stab["mean_iou"])
        print(f"{s['model']}: mean {_cell(s['mean_iou'], '{:.3f}')}"
              + (f" ({low_high[0]:.3f}-{low_high[1]:.3f}, average {low_high[2]:.3f})" if low_high else ""))
        for seq, iou in s["per_sequence"].items():
            low_high = spread(iou, stab["per_sequence"].get(seq, {}))
            print(f"  {seq:<24} {_cell(iou, '{:.3f}')}" + (f" ({low_high[0]:.3f}-{low_high[1]:.3f}, range "
                                                          f"{low_high[1] - low_high[0]:.3f}, average {low_high[2]:.3f})"
                                                          if low_high else ""))


def print_camera(summaries: list[dict]) -> None:
    """Per model and person sequence: the IoU as measured and under each camera move."""
    moves = summaries[0]["camera"]["perturbations"]
    print("\ncamera moves: IoU as measured | " + " | ".join(moves))
    for s in summaries:
        cam = s["camera"]
        print(f"{s['model']}: mean {_cell(s['mean_iou'], '{:.3f}')} | "
              + " | ".join(_cell(cam["mean_iou"].get(m), "{:.3f}") for m in moves))
        for seq, iou in s["per_sequence"].items():
            print(f"  {seq:<24} {_cell(iou, '{:.3f}')} | "
                  + " | ".join(_cell(cam["per_sequence"].get(seq, {}).get(m), "{:.3f}") for m in moves))


def run(args: argparse.Namespace) -> int:
    from ..eval.datasets import load_dataset
    from ..eval.models import loadable_models
    from ..eval.recurrent_peer import DEFAULT_INPUT_SIZE
    from ..eval.runner import evaluate_model, measure_latencies
    from ..outputs import check_folder
    from ..segmenter import TemporalConfig

    if args.vos:
        from ..eval.vos_run import run_cli

        return run_cli(args)
    if args.output:
        check_folder(args.output)
    sequences = load_dataset(args.dataset, masks=args.masks)
    config = TemporalConfig(prior=False, scene_cut=False, jitter=False, skip_still=False, smooth=False) \
        if args.raw else None
    progress = not args.quiet and sys.stderr.isatty()
    recurrent_size = args.recurrent_size or DEFAULT_INPUT_SIZE
    results = [evaluate_model(sequences, ref, threads=args.threads, device=args.device, config=config,
                              recurrent_size=recurrent_size, worst=args.worst if args.output else 0,
                              progress=progress)
               for ref in args.model or loadable_models("eval")]
    again = {"threads": args.threads, "device": args.device, "config": config, "recurrent_size": recurrent_size,
             "progress": progress}
    retests: dict[str, list[dict]] = {}  # the same models re-scored on changed copies of the data
    if args.stability:
        from ..eval.perturb import rescore

        retests["stability"] = [rescore(sequences, r.model, **again) for r in results]
    if args.camera:
        from ..eval.perturb import CAMERA_MOVES, rescore

        people = [s for s in sequences if s.has_person]
        retests["camera"] = [rescore(people, r.model, perturbations=CAMERA_MOVES, **again) for r in results]
    if args.latency_runs:
        measure_latencies(results, sequences, device=args.device, recurrent_size=recurrent_size,
                          runs=args.latency_runs, warmup=args.warmup)
    summaries = [_clean(r.summary()) for r in results]
    for kind, figures in retests.items():
        for summary, figure in zip(summaries, figures):
            summary[kind] = _clean(figure)
    if args.json:
        for summary in summaries:
            print(json.dumps(summary), flush=True)
    else:
        print(f"dataset {args.dataset}: {len(sequences)} sequences "
              f"({sum(s.has_person for s in sequences)} with a person)")
        print_table(summaries)
        if args.stability:
            print_stability(summaries)
        if args.camera:
            print_camera(summaries)
    if args.output:
        from ..eval.report import write_report

        path = write_report(results, args.output, str(args.dataset), retests)
        print(f"report: {path}", file=sys.stderr)
    return 0
