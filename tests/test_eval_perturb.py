"""Perturbed copies keep names, truth and display times; they drop or change frames as documented."""
import numpy as np
import pytest

from danmask.eval.datasets import EvalFrame, Sequence
from danmask.eval.perturb import CAMERA_MOVES, PERTURBATIONS, perturbed, spread


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
    assert spread(0.5, {"a": 0.4, "b": None, "c": 0.7}) == pytest.approx((0.4, 0.7, 1.6 / 3))
    assert spread(None, {"a": None}) is None


def patch_sequence(n: int, fps: float) -> Sequence:
    """A red patch off the frame's centre, its truth exactly under it."""
    def load():
        for i in range(n):
            rgb = np.full((64, 96, 3), 100, np.uint8)
            rgb[20:30, 50:66] = (220, 30, 30)
            gt = np.zeros((64, 96), bool)
            gt[20:30, 50:66] = True
            yield EvalFrame(rgb, gt, f"{i:05d}", i / fps)
    return Sequence("patch", True, n, load)


def _red(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 160) & (rgb[..., 1] < 90)


def test_camera_moves_move_the_truth_with_the_image():
    """Rolling turns the frame 45 degrees a second about its centre, zooming doubles it at 1 s; the truth follows
    the image in both, and every-3rd keeps frames 0, 3, 6 with their own times."""
    rolled = list(perturbed(patch_sequence(3, 1.0), CAMERA_MOVES["rolling"]).frames())
    zoomed = list(perturbed(patch_sequence(3, 1.0), CAMERA_MOVES["zooming"]).frames())
    for frame in (rolled[1], rolled[2], zoomed[1]):
        red = _red(frame.rgb)
        assert (red & frame.gt).sum() / (red | frame.gt).sum() > 0.85
    assert rolled[0].gt.sum() == 160 and not rolled[1].gt[20:30, 50:66].all()  # moved at 1 s, not at 0 s
    ys, xs = np.nonzero(rolled[2].gt)  # 90 degrees counter-clockwise: up-right of the centre goes up-left
    assert xs.mean() < 48 and ys.mean() < 32
    assert 560 < zoomed[1].gt.sum() < 720 and zoomed[2].gt.sum() == 160  # 2x at 1 s, back to 1x at 2 s
    kept = list(perturbed(patch_sequence(7, 30.0), CAMERA_MOVES["every-3rd"]).frames())
    assert [f.time for f in kept] == pytest.approx([0, 3 / 30, 6 / 30])
