"""Every metric on small masks whose answer is worked out by hand."""
import math

import numpy as np
import pytest

from danmask.eval.metrics import (boundary_f, boundary_map, disk, flicker, fp_fraction, iou, temporal_error,
                                  tolerance_pixels)


def square(top, left, size, shape=(10, 10)):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


def half_plane(first_row, shape=(100, 100)):
    m = np.zeros(shape, bool)
    m[first_row:] = True
    return m


EMPTY = np.zeros((10, 10), bool)


def test_iou_hand_cases():
    a = square(2, 2, 4)
    assert iou(a, a) == 1.0
    assert iou(EMPTY, EMPTY) == 1.0  # DAVIS convention: nothing to find, nothing found
    assert iou(EMPTY, a) == 0.0
    assert iou(a, EMPTY) == 0.0
    # one-pixel shift of a 4x4 square: 12 shared pixels, 20 in the union
    assert iou(square(2, 3, 4), a) == pytest.approx(12 / 20)


def test_boundary_map_of_a_square():
    # 4x4 square: outer top row + outer left column (5 + 5 - 1) and inner right column + inner bottom row (4 + 4 - 1)
    b = boundary_map(square(2, 2, 4))
    assert b.sum() == 16
    assert b[1, 1:6].all() and b[1:6, 1].all() and b[2:6, 5].all() and b[5, 2:6].all()
    assert not boundary_map(EMPTY).any()
    assert not boundary_map(np.ones((10, 10), bool)).any()  # touching every border: no contour inside the image


def test_tolerance_band_is_davis():
    assert tolerance_pixels((480, 854)) == math.ceil(0.008 * math.hypot(480, 854)) == 8
    assert tolerance_pixels((100, 100)) == 2
    assert tolerance_pixels((100, 100), tolerance=3) == 3
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).sum() == 13


def test_boundary_f_hand_cases():
    gt = half_plane(50)  # boundary = row 49, 100 pixels
    assert boundary_f(gt, gt) == 1.0
    assert boundary_f(EMPTY, EMPTY) == 1.0
    assert boundary_f(EMPTY, square(2, 2, 4)) == 0.0
    assert boundary_f(square(2, 2, 4), EMPTY) == 0.0
    # band on 100x100 is 2 px: a shift of 2 rows is inside it, 3 rows is outside
    assert boundary_f(half_plane(52), gt) == 1.0
    assert boundary_f(half_plane(53), gt) == 0.0
    # extra 10x10 blob far away: 40 unmatched boundary pixels -> precision 100/140, recall 1, F = 10/12
    pred = gt | square(10, 10, 10, (100, 100))
    assert boundary_f(pred, gt) == pytest.approx(10 / 12)
    assert boundary_f(gt, pred) == pytest.approx(10 / 12)  # symmetric: precision and recall swap


def brute_force_f(pred, gt, r):
    """Direct definition: a boundary pixel matches when one of the other's lies within Euclidean distance r."""
    pb, gb = np.argwhere(boundary_map(pred)), np.argwhere(boundary_map(gt))
    if len(pb) == 0 or len(gb) == 0:
        return 1.0 if len(pb) == len(gb) else 0.0
    d = np.sqrt(((pb[:, None, :] - gb[None, :, :]) ** 2).sum(-1))
    p, rc = (d.min(1) <= r).mean(), (d.min(0) <= r).mean()
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def test_boundary_f_matches_distance_definition_on_random_blobs():
    rng = np.random.default_rng(0)
    for _ in range(5):
        gt = np.zeros((40, 50), bool)
        pred = np.zeros((40, 50), bool)
        for m in (gt, pred):
            for _ in range(3):
                y, x, s = rng.integers(0, 35), rng.integers(0, 45), rng.integers(3, 12)
                m[y:y + s, x:x + s] = True
        r = tolerance_pixels(gt.shape)
        assert boundary_f(pred, gt) == pytest.approx(brute_force_f(pred, gt, r))


def test_temporal_error_static_and_jittering():
    a = square(2, 2, 4)
    shifted = square(2, 3, 4)
    assert temporal_error(a, a, a, a) == 0.0  # nothing moves
    assert temporal_error(a, shifted, a, shifted) == 0.0  # prediction follows the person exactly
    # prediction jumps one pixel while the person stands still: 8 changed pixels of 100
    assert temporal_error(a, shifted, a, a) == pytest.approx(math.sqrt(8 / 100))
    # prediction frozen while the person moves: same error
    assert temporal_error(a, a, a, shifted) == pytest.approx(math.sqrt(8 / 100))
    assert temporal_error(EMPTY, EMPTY, EMPTY, EMPTY) == 0.0


def test_flicker_static_vs_jittering_sequence():
    a, shifted = square(2, 2, 4), square(2, 3, 4)
    static = [a] * 5
    jitter = [a, shifted, a, shifted, a]
    assert [flicker(p, q) for p, q in zip(static, static[1:])] == [0.0] * 4
    assert [flicker(p, q) for p, q in zip(jitter, jitter[1:])] == pytest.approx([1 - 12 / 20] * 4)
    assert flicker(EMPTY, EMPTY) == 0.0
    assert flicker(EMPTY, a) == 1.0


def test_fp_fraction():
    assert fp_fraction(EMPTY) == 0.0
    assert fp_fraction(square(0, 0, 2)) == pytest.approx(4 / 100)
    assert fp_fraction(np.ones((3, 7), bool)) == 1.0
