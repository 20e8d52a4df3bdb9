"""Every model shipped in the package loads without torch, runs at its own input size, and is documented."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from danmask.runtime import load_model
from danmask.runtime.registry import WEIGHTS_DIR

SHIPPED = sorted(p.stem for p in WEIGHTS_DIR.glob("*.onnx"))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "models"


def test_the_package_ships_the_default_and_a_prior_model():
    assert {"mpft-cpu", "mpft-prior", "airseg-cpu", "airseg-prior"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_runs_and_has_card_and_origin(name):
    model = load_model(name)
    h, w = model.spec.input_size
    rng = np.random.default_rng(0)
    prior = np.zeros((h, w), np.float32) if model.spec.takes_prior else None
    mask = model.predict((rng.random((180, 320, 3)) * 255).astype(np.uint8), prior)
    assert mask.shape == (h, w) and mask.dtype == np.float32 and 0.0 <= mask.min() <= mask.max() <= 1.0
    assert (DOCS / f"{name}.md").is_file(), f"{name} has no model card in docs/models/"
    assert name in (WEIGHTS_DIR / "NOTICE").read_text(), f"{name} is not in the weights NOTICE"
    assert (WEIGHTS_DIR / f"{name}.onnx").stat().st_size < 5e6  # "a few MB" at most
