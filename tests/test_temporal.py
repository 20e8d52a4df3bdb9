"""Temporal stage, piece by piece, on synthetic video whose true masks are known (oracle models)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from _oracle import TruthOracle, iou

from danmask.segmenter import Segmenter, TemporalConfig
from danmask.synthetic import make_video, pan_frames
from danmask.temporal import SceneCutDetector, aligned_ssim, benchmark_scene_cut, smooth_edges, ssim, thumbnail
from danmask.video import iter_frames

MASK = (90, 160)
ONLY = dict(prior=False, scene_cut=False, jitter=False, skip_still=False, smooth=False)


def run(video, model, **flags):
    seg = Segmenter(model, TemporalConfig(**{**ONLY, **flags}), mask_size=MASK)
    masks = [seg.step(f.rgb, f.time) for f in iter_frames(video.path)]
    return masks, seg


def truth(video, i):
    return cv2.resize(video.masks[i].astype(np.float32), MASK[::-1], interpolation=cv2.INTER_AREA) >= 0.5


def flicker(masks):
    """Mean fraction of pixels whose person/background label changes between consecutive frames."""
    binary = [m >= 0.5 for m in masks]
    return float(np.mean([np.mean(a != b) for a, b in zip(binary, binary[1:])]))


def test_scene_cut_fires_exactly_at_the_cut(tmp_path):
    v = make_video(tmp_path / "cut.mp4", frames=50, cut_at=23, still=(5, 15))
    det = SceneCutDetector()
    fired = [i for i, f in enumerate(iter_frames(v.path)) if det.update(thumbnail(f.rgb))]
    assert fired == [23]


def test_a_fast_pan_is_not_a_cut_but_a_new_picture_is():
    """A camera sweeping across one scene at 1/8 of the frame's width per frame (a runner filmed at 15 frames/s)
    moves every pixel: plain SSIM falls below the threshold, SSIM after undoing the pan does not. An unrelated
    picture still cuts, at the first frame and no other."""
    thumbs = [thumbnail(f) for f in pan_frames(new_picture=4)]
    assert ssim(thumbs[0], thumbs[1]) < 0.4 < aligned_ssim(thumbs[0], thumbs[1])
    det = SceneCutDetector()
    assert [i for i, t in enumerate(thumbs) if det.update(t)] == [8]


def test_ssim_is_one_for_equal_images_and_low_for_unrelated():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (36, 64)).astype(np.float32)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-4)
    assert ssim(a, rng.uniform(0, 255, (36, 64)).astype(np.float32)) < 0.2


def test_scene_cut_benchmark_reports_cost_per_frame():
    # the < 1 ms budget is checked by `danmask bench` (BENCHMARKS.md), not by a timed unit test
    result = benchmark_scene_cut((720, 1280), frames=10)
    assert result["ms_per_frame"] > 0 and result["pan_check_ms"] > 0


def test_runtime_smoothing_skipped_when_fused_into_the_model(tmp_path):
    from dataclasses import replace

    video = make_video(tmp_path / "v.mp4", frames=4)
    plain, fused = TruthOracle(video, size=MASK), TruthOracle(video, size=MASK)
    fused.spec = replace(fused.spec, extra={"blur": True})
    soft, _ = run(video, plain, smooth=True)
    raw, seg = run(video, fused, smooth=True)
    assert not seg.smooth_here
    truth_mask = cv2.resize(video.masks[1].astype(np.float32), MASK[::-1], interpolation=cv2.INTER_AREA)
    assert np.allclose(raw[1], truth_mask, atol=1e-6)  # passed through untouched
    assert not np.allclose(soft[1], truth_mask, atol=1e-3)  # the plain model's mask was smoothed here


def test_jitter_filter_reduces_flicker_on_a_still_person(tmp_path):
    v = make_video(tmp_path / "still.mp4", frames=40, still=(0, 40))
    raw, _ = run(v, TruthOracle(v, MASK, noise=0.3, seed=3))
    filtered, _ = run(v, TruthOracle(v, MASK, noise=0.3, seed=3), jitter=True)
    assert flicker(filtered) < 0.5 * flicker(raw), (flicker(filtered), flicker(raw))
    assert np.mean([iou(m >= 0.5, truth(v, i)) for i, m in enumerate(filtered)]) > 0.93


def test_jitter_filter_does_not_lag_behind_motion_or_a_cut(tmp_path):
    v = make_video(tmp_path / "cut.mp4", frames=50, cut_at=25)
    raw, _ = run(v, TruthOracle(v, MASK, noise=0.1, seed=4))
    filtered, seg = run(v, TruthOracle(v, MASK, noise=0.1, seed=4), jitter=True, scene_cut=True)
    assert seg.stats.cuts == 1
    raw_iou = [iou(m >= 0.5, truth(v, i)) for i, m in enumerate(raw)]
    new_iou = [iou(m >= 0.5, truth(v, i)) for i, m in enumerate(filtered)]
    assert new_iou[25] >= raw_iou[25] - 0.01 and new_iou[25] > 0.9  # first frame of the new shot
    assert np.mean(new_iou) >= np.mean(raw_iou) - 0.02  # moving person: no visible lag


def test_still_frames_skip_the_model_but_never_across_a_cut(tmp_path):
    v = make_video(tmp_path / "still.mp4", frames=60, cut_at=40, still=(10, 50))
    oracle = TruthOracle(v, MASK)
    masks, seg = run(v, oracle, skip_still=True, scene_cut=True)
    assert seg.stats.skipped >= 20
    assert len(oracle.calls) == 60 - seg.stats.skipped
    assert 40 in oracle.calls
    assert seg.stats.cuts == 1
    # the cut frame (person jumped, still section continues) was segmented, not reused
    assert iou(masks[40] >= 0.5, truth(v, 40)) > 0.9
    assert all(iou(m >= 0.5, truth(v, i)) > 0.9 for i, m in enumerate(masks))


def test_skipping_is_bounded_in_time(tmp_path):
    v = make_video(tmp_path / "still.mp4", frames=45, still=(0, 45))
    oracle = TruthOracle(v, MASK)
    run(v, oracle, skip_still=True)
    assert len(oracle.calls) >= 3  # max_skip_s = 0.5 s: the model still runs twice a second


def test_prior_only_for_models_that_take_it_and_dropped_at_cuts(tmp_path):
    v = make_video(tmp_path / "cut.mp4", frames=20, cut_at=10)
    with_prior = TruthOracle(v, MASK, takes_prior=True)
    run(v, with_prior, prior=True, scene_cut=True)
    given = [p is not None for p in with_prior.priors]
    assert given == [False] + [True] * 9 + [False] + [True] * 9
    assert with_prior.priors[5].shape == MASK
    assert iou(with_prior.priors[5] >= 0.5, truth(v, 4)) > 0.9  # the previous frame's mask

    without = TruthOracle(v, MASK, takes_prior=False)
    run(v, without, prior=True, scene_cut=True)
    switched_off = TruthOracle(v, MASK, takes_prior=True)
    run(v, switched_off, prior=False)
    assert all(p is None for p in without.priors + switched_off.priors)


def test_reset_drops_state(tmp_path):
    v = make_video(tmp_path / "still.mp4", frames=2, still=(0, 2))
    oracle = TruthOracle(v, MASK, takes_prior=True)
    seg = Segmenter(oracle, TemporalConfig(), mask_size=MASK)
    frame = next(iter_frames(v.path)).rgb
    seg.step(frame, 0.0)
    seg.reset()
    seg.step(frame, 0.04)
    assert oracle.priors == [None, None] and seg.stats.skipped == 0


def test_smooth_edges_softens_steps_and_keeps_range():
    mask = np.zeros((20, 20), np.float32)
    mask[:, 10:] = 1.0
    out = smooth_edges(mask)
    assert out.min() >= 0 and out.max() <= 1 and out.dtype == np.float32
    assert 0 < out[5, 9] < 0.5 < out[5, 10] < 1  # the edge became soft, on the right side of 0.5
    assert out[5, 0] == 0 and out[5, 19] == 1  # flat areas untouched


def test_segmenter_rejects_bad_frames_and_config(tmp_path):
    seg = Segmenter(TruthOracle(make_video(tmp_path / "v.mp4", frames=2), MASK), mask_size=MASK)
    with pytest.raises(ValueError):
        seg.step(np.zeros((10, 10), np.uint8), 0.0)
    frame = np.zeros((10, 10, 3), np.uint8)
    for bad in (None, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="display time"):  # time is the caller's, never invented
            seg.step(frame, bad)
    with pytest.raises(ValueError):
        TemporalConfig(cut_threshold=1.5)
