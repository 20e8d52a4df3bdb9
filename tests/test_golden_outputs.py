"""What the shipped weights compute, pinned down: golden outputs on fixed inputs (made in tests/make_golden.py,
stored in tests/golden/outputs.json), so a swapped, truncated or retrained weight file fails here; and a quality
floor for the default model on real DAVIS footage (skipped without ../shared/data).

After changing a weight file on purpose, regenerate the goldens and commit them with it:

    python tests/make_golden.py                  # every entry
    python tests/make_golden.py person-pose      # e.g. after replacing person-pose.onnx
"""
from __future__ import annotations

import itertools
import json

import pytest
from make_golden import GOLDEN, compute, golden_names, mismatches, sha256, weight_file

REGENERATE = "python tests/make_golden.py"
NAMES = golden_names()


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: run `{REGENERATE}`")
    return json.loads(GOLDEN.read_text())["entries"]


def test_every_shipped_graph_has_a_golden_entry(golden):
    assert {"mpft-cpu", "airseg-cpu", "person-detector", "person-pose"} <= set(NAMES)
    missing, stale = sorted(set(NAMES) - set(golden)), sorted(set(golden) - set(NAMES))
    assert not missing and not stale, f"golden entries missing {missing}, stale {stale}: run `{REGENERATE}`"


def _explain(name: str, entry: dict, problems: list[str]) -> str:
    changed = sha256(weight_file(name)) != entry["sha256"]
    why = (f"{weight_file(name).name} changed since the goldens were made; if on purpose, run "
           f"`{REGENERATE} {name}` and commit tests/golden/outputs.json") if changed else \
        "the weight file is the same: the runtime or its preprocessing changed what it computes"
    return f"{name}: {'; '.join(problems)}. {why}"


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_compute_their_golden_outputs(name, golden):
    entry = golden[name]
    problems = mismatches(name, entry["values"], compute(name))
    assert not problems, _explain(name, entry, problems)


@pytest.mark.parametrize("name, impostor", [("airseg-cpu", "mpft-cpu"), ("mpft-cpu", "airseg-cpu"),
                                            ("airseg-prior", "mpft-prior"), ("mpft-prior", "airseg-prior")])
def test_a_swapped_weight_file_is_caught(name, impostor, golden):
    """Copying one model's .onnx over another's (same inputs, so it still loads and runs) fails the goldens."""
    assert mismatches(name, golden[name]["values"], compute(name, path=str(weight_file(impostor))))


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_cuda_computes_the_same_as_the_cpu(name, golden):
    """On a machine whose onnxruntime has CUDA: the same goldens, at 10x the tolerance (GPU kernels round
    differently)."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu on a CUDA machine)")
    problems = mismatches(name, golden[name]["values"], compute(name, device="cuda"), scale=10.0)
    assert not problems, f"{name} on CUDA: {'; '.join(problems)}"


# Measured 2026-11-30 with person-track (this repo's person-pose.onnx): parkour 0.930 (100 frames),
# dance-twirl 0.842 (90 frames); about 13 s on 2 cores. The floors sit a little below.
FLOORS = {"parkour": 0.90, "dance-twirl": 0.80}


@pytest.mark.slow
@pytest.mark.parametrize("sequence", sorted(FLOORS))
def test_default_model_quality_floor_on_davis(sequence):
    from _shared import shared_data

    from danmask.eval.datasets import davis_sequences
    from danmask.eval.runner import evaluate_model
    from danmask.runtime import DEFAULT_MODEL

    root = shared_data() / "davis-people"
    if not (root / "JPEGImages" / "480p" / sequence).is_dir():
        pytest.skip(f"DAVIS {sequence} is not in the shared data")
    (seq,) = [s for s in davis_sequences(root) if s.name == sequence]
    result = evaluate_model([seq], DEFAULT_MODEL, worst=0)
    iou = result.summary()["mean_iou"]
    assert iou >= FLOORS[sequence], f"{DEFAULT_MODEL} on {sequence}: mean IoU {iou:.3f} < floor {FLOORS[sequence]}"


def test_goldens_are_deterministic():
    """Two runs in one process agree exactly: the inputs are made, not decoded."""
    first = compute("mpft-cpu")
    assert first == compute("mpft-cpu") and len(list(itertools.chain(*first.values()))) == 128
