"""Every model shipped in the package loads without torch, runs, and is documented; every weight file in the
package belongs to a registered model and names its origin."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from danmask.runtime import list_models, load_model
from danmask.runtime.registry import WEIGHTS_DIR

OURS = sorted(name for name, spec in list_models().items() if spec.backend in ("onnx", "person-track"))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "models"
MAX_BYTES = 7e6  # "a few MB": the pose graph (float16 weights) is the largest


def test_the_package_ships_the_default_the_fast_and_the_prior_models():
    assert {"person-track", "mpft-cpu", "mpft-prior", "airseg-cpu", "airseg-prior"} <= set(OURS)


@pytest.mark.parametrize("name", OURS)
def test_shipped_model_runs_and_has_a_card(name):
    model = load_model(name)
    rng = np.random.default_rng(0)
    frame = (rng.random((180, 320, 3)) * 255).astype(np.uint8)
    prior = np.zeros(model.spec.input_size, np.float32) if model.spec.takes_prior else None
    mask = model.predict(frame, prior)
    expected = (180, 320) if getattr(model, "tracks_people", False) else tuple(model.spec.input_size)
    assert mask.shape == expected and mask.dtype == np.float32 and 0.0 <= mask.min() <= mask.max() <= 1.0
    assert (DOCS / f"{name}.md").is_file(), f"{name} has no model card in docs/models/"


def _files_of(name: str) -> set[str]:
    spec = list_models()[name]
    return {Path(spec.path).name, *(Path(p).name for p in spec.extra.get("parts", {}).values())}


@pytest.mark.parametrize("path", sorted(WEIGHTS_DIR.glob("*.onnx")), ids=lambda p: p.name)
def test_every_weight_file_is_used_small_and_in_the_notice(path):
    from danmask.fx.bodypix import WEIGHTS as BODYPIX  # `danmask fx parse`'s network, not a segmentation model

    used = any(path.name in _files_of(name) for name in OURS) or path.name == BODYPIX.name
    assert used, f"{path.name} belongs to no registered model"
    assert path.stat().st_size < MAX_BYTES
    assert path.name in (WEIGHTS_DIR / "NOTICE").read_text(), f"{path.name} is not in the weights NOTICE"
