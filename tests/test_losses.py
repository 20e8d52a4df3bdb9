"""Losses on cases whose answers can be worked out by hand."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="loss tests need the train extra (torch)")

from danmask.train.losses import (  # noqa: E402
    LossConfig, clustering_loss, edge_band, pixel_weights, soft_dice, topk_loss, total_loss)


def _square(n: int = 20, a: int = 5, b: int = 15) -> torch.Tensor:
    t = torch.zeros(1, 1, n, n)
    t[..., a:b, a:b] = 1
    return t


def test_edge_band_of_square_is_ring_of_width_4():
    band = edge_band(_square())
    # dilate(5x5) grows the 10x10 square to 14x14, erode(5x5) shrinks it to 6x6: ring = 196 - 36
    assert int(band.sum()) == 14 * 14 - 6 * 6
    assert band[0, 0, 10, 10] == 0 and band[0, 0, 5, 5] == 1 and band[0, 0, 0, 0] == 0


def test_pixel_weights_edge_and_background():
    w = pixel_weights(_square(), edge_w=5.0, bg_w=2.0)
    assert w[0, 0, 10, 10] == 1.0  # inside, far from the edge
    assert w[0, 0, 5, 5] == 5.0  # on the edge
    assert w[0, 0, 0, 0] == 2.0  # background, far from the edge


def test_dice_perfect_and_empty():
    t = _square()
    valid = torch.ones_like(t)
    perfect = torch.where(t > 0, torch.tensor(50.0), torch.tensor(-50.0))
    assert soft_dice(perfect, t, valid).item() == pytest.approx(0.0, abs=1e-3)
    assert soft_dice(-perfect, t, valid).item() == pytest.approx(1.0, abs=1e-2)
    # an image without a person contributes nothing to dice
    assert soft_dice(perfect, torch.zeros_like(t), valid).item() == 0.0


def test_topk_takes_hardest_pixels():
    per_pixel = torch.zeros(1, 1, 10, 10)
    per_pixel[0, 0, 0, :10] = 3.0  # 10 hard pixels out of 100
    assert topk_loss(per_pixel, torch.ones_like(per_pixel), 0.1).item() == pytest.approx(3.0)
    assert topk_loss(per_pixel, torch.zeros_like(per_pixel), 0.1).item() == 0.0  # ignored pixels never count


def test_clustering_rewards_separated_embeddings():
    t = _square()
    valid = torch.ones_like(t)
    separated = torch.cat([t, 1 - t], 1)  # person -> (1,0), background -> (0,1): tight and far apart
    mixed = torch.rand(1, 2, 20, 20)
    assert clustering_loss(separated, t, valid).item() == pytest.approx(0.0, abs=1e-5)
    assert clustering_loss(mixed, t, valid).item() > 0.1


def test_ignored_pixels_do_not_count():
    t = _square()
    logits = torch.full_like(t, 10.0)  # predicts person everywhere: wrong on the background
    valid_all, valid_fg = torch.ones_like(t), t.clone()
    wrong, _ = total_loss(logits, None, t, valid_all, LossConfig(dice=0, topk=0, cluster=0))
    masked, _ = total_loss(logits, None, t, valid_fg, LossConfig(dice=0, topk=0, cluster=0))
    assert wrong.item() > 1.0 and masked.item() < 1e-3
