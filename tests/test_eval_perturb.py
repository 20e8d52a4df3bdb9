"""Perturbed copies keep names, truth and display times; they drop or change frames as documented."""
import numpy as np
import pytest

from danmask.eval.datasets import EvalFrame, Sequence
from danmask.eval.perturb import PERTURBATIONS, perturbed, spread


def sequence(n: int) -> Sequence:
    def load():
        for i in range(n):
            rgb = np.full((16, 24, 3), 100, np.uint8)
            rgb[4:12, 8:16] = (200, 40, 40)
            yield EvalFrame(rgb, np.zeros((16, 24), bool), f"{i:05d}", i / 30)
    return Sequence("clip", True, n, load)


@pytest.mark.parametrize("name, n, times", [("even-frames", 5, [0, 2, 4]), ("odd-frames", 5, [1, 3]),
                                            ("odd-frames", 1, [0]), ("brighter", 3, [0, 1, 2])])
def test_kept_frames_keep_their_display_times(name, n, times):
    copy = perturbed(sequence(n), PERTURBATIONS[name])
    frames = list(copy.frames())
    assert copy.length == len(frames) == len(times) and copy.name == "clip" and copy.has_person
    assert [f.time for f in frames] == pytest.approx([t / 30 for t in times])


def test_image_perturbations_are_small_and_keep_colour_order():
    original = next(sequence(1).frames()).rgb
    brighter = next(perturbed(sequence(1), PERTURBATIONS["brighter"]).frames()).rgb
    assert (brighter.astype(int) - original).tolist() == np.full(original.shape, 6).tolist()
    jpeg = next(perturbed(sequence(1), PERTURBATIONS["jpeg70"]).frames()).rgb
    assert jpeg.shape == original.shape and jpeg.dtype == np.uint8
    assert jpeg[8, 12, 0] > jpeg[8, 12, 1] + 100  # the red patch is still red, not blue
    assert np.abs(jpeg.astype(int) - original).mean() < 6


def test_spread():
    assert spread(0.5, {"a": 0.4, "b": None, "c": 0.7}) == (0.4, 0.7)
    assert spread(None, {"a": None}) is None
