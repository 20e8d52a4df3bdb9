"""Augmentations keep image and labels aligned and synthesise the prior-mask cases."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need the train extra (torch)")

from danmask.synthetic import person_mask  # noqa: E402
from danmask.train.augment import crop_resize, random_affine, synth_prior, tps_warp, zoom_crop  # noqa: E402
from danmask.train.data import Item, SegDataset, paste, salient_only  # noqa: E402


def _scene(h: int = 120, w: int = 200):
    m = person_mask(h, w, w * 0.5, h * 0.55, 0.7)
    img = np.zeros((h, w, 3), np.uint8)
    img[m] = (250, 20, 20)
    return img, (m * 255).astype(np.uint8)


def test_crop_resize_keeps_image_and_label_aligned():
    img, lab = _scene()
    rng = np.random.default_rng(0)
    for _ in range(10):
        i2, l2, ig = crop_resize([img, lab, np.zeros_like(lab)], (72, 128), rng)
        red = i2[..., 0] > 128
        agree = ((l2 > 127) == red)[ig == 0].mean()
        assert i2.shape == (72, 128, 3) and agree > 0.97


def test_zoom_out_padding_is_ignored():
    img, lab = _scene()
    _, _, ig = crop_resize([img, lab, np.zeros_like(lab)], (72, 128), np.random.default_rng(3), zoom=(1.6, 1.6))
    assert (ig > 0).mean() > 0.2  # the reflected border is not trusted


def test_zoom_crop_is_the_runtime_crop_around_the_people():
    """The close-up a zoomed model is given at run time: a small person fills far more of it than of a whole frame,
    stays aligned with the image and is never cut off by a jittered box; nobody in the label, no zoom crop."""
    h, w = 360, 640
    m = person_mask(h, w, w * 0.7, h * 0.6, 0.25)
    img = np.zeros((h, w, 3), np.uint8)
    img[m] = (250, 20, 20)
    lab = (m * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        i2, l2, ig = zoom_crop([img, lab, np.zeros_like(lab)], (72, 128), rng)
        assert i2.shape == (72, 128, 3) and not ig.any()  # the crop never leaves the frame: nothing to ignore
        assert ((l2 > 127) == (i2[..., 0] > 128)).mean() > 0.97
        assert (l2 > 127).sum() > 0.9 * 4 * m.mean() * l2.size  # at least 2x each way larger than in the frame
        assert not (l2[[0, -1]] > 127).any()  # head and feet inside, despite the jitter
    assert zoom_crop([img, np.zeros_like(lab)], (72, 128), rng) is None


def test_tps_zero_strength_is_identity():
    img, lab = _scene()
    out = tps_warp([img, lab.astype(np.float32)], np.random.default_rng(0), strength=0.0)
    assert np.abs(out[1] - lab).max() < 1.0


def test_synth_prior_covers_empty_follow_and_distrust():
    _, lab = _scene()
    m = lab.astype(np.float32) / 255
    rng = np.random.default_rng(0)
    ious = []
    for _ in range(200):
        p = synth_prior(m, rng) > 0.5
        union = (p | (m > 0.5)).sum()
        ious.append((p & (m > 0.5)).sum() / union)
    ious = np.array(ious)
    assert 0.15 < (ious == 0).mean() < 0.6  # empty (first frame, someone entering) or moved right off
    assert (ious > 0.5).mean() > 0.25  # slightly moved: learn to follow
    assert ((ious > 0.0) & (ious < 0.3)).mean() > 0.05  # strongly moved: learn to distrust
    assert random_affine(m, rng, 0.0).shape == m.shape


def test_phantom_prior_teaches_dropping_false_positives():
    """An empty frame must sometimes come with a non-empty prior, or the net learns to keep its own mistakes."""
    from danmask.train.augment import PriorMix

    empty = np.zeros((72, 128), np.float32)
    rng = np.random.default_rng(1)
    assert all(synth_prior(empty, rng).max() == 0 for _ in range(50))
    phantoms = [synth_prior(empty, rng, PriorMix(phantom=1.0)) for _ in range(50)]
    assert all(0.3 < p.max() <= 1.0 for p in phantoms)
    _, lab = _scene()
    m = lab.astype(np.float32) / 255
    for _ in range(20):
        p = synth_prior(m, rng, PriorMix(empty=1.0, follow=0.0, phantom=1.0))
        assert p[m >= 0.5].max() == 0 and p.max() > 0.3  # the phantom lies only where nobody is


def test_paste_label_is_union_of_alphas():
    bg = np.full((90, 160, 3), 100, np.uint8)
    img, lab = _scene(60, 40)
    out, label = paste(bg, [(img, lab)], np.random.default_rng(0))
    assert label.max() == 255 and (label > 127).mean() > 0.01
    assert np.all(out[label == 0] == 100)  # background untouched outside the pasted person


def test_dataset_sample_is_deterministic_and_well_formed():
    img, lab = _scene()
    items = [Item("coco", "a", img, lab, np.zeros_like(lab)), Item("davis-noperson", "b", img * 0 + 90,
                                                                   np.zeros_like(lab), np.zeros_like(lab))]
    ds = SegDataset(items, (72, 128), prior=True, seed=5)
    a, b = ds[3], ds[3]
    for k in ("image", "label", "valid", "prior"):
        assert a[k].shape[-2:] == (72, 128)
        assert (a[k] == b[k]).all()
    assert a["image"].shape[0] == 3 and 0 <= a["label"].min() and a["label"].max() <= 1


def test_salient_only_drops_people_far_smaller_than_the_main_one():
    label = np.zeros((120, 200), np.uint8)
    label[20:110, 20:60] = 255  # the main person
    label[40:60, 63:70] = 255  # an arm 3 px away: part of the same person
    label[10:20, 150:156] = 255  # a distant passer-by, 1.7 % of the main area
    label[9, 150:156] = 100  # their soft edge
    ignore = np.zeros_like(label)
    out, ign = salient_only(label, ignore, ratio=0.1)
    assert (out[20:110, 20:60] == 255).all() and (out[40:60, 63:70] == 255).all()
    assert out[5:25, 145:160].max() == 0
    assert ign[9, 150] == 0 or out[9, 150] == 0  # the soft edge is either cleared or not taught
    # people of similar size all stay (a street of pedestrians), and an empty label is untouched
    crowd = np.zeros_like(label)
    crowd[10:40, 10:20] = crowd[50:75, 100:110] = 255
    assert np.array_equal(salient_only(crowd, ignore, 0.1)[0], crowd)
    assert salient_only(np.zeros_like(label), ignore)[0].max() == 0


def test_balanced_groups_draw_small_groups_more_often():
    big = [Item("clips", f"c{i}", np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.uint8),
                np.zeros((32, 32), np.uint8)) for i in range(100)]
    small = [Item("coco", f"k{i}", np.full((32, 32, 3), 255, np.uint8), np.zeros((32, 32), np.uint8),
                  np.zeros((32, 32), np.uint8)) for i in range(4)]
    for balance, expected in ((False, 4 / 104), (True, 2 / 12)):
        ds = SegDataset(big + small, (16, 16), prior=False, paste_p=0.0, balance=balance)
        rng = np.random.default_rng(0)
        share = np.mean([ds._pick(rng)[0].max() == 255 for _ in range(3000)])
        assert share == pytest.approx(expected, abs=0.02)
