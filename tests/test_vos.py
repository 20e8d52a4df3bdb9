"""The memory network: its export runs without torch and agrees with torch, memory stays bounded, objects never
share a pixel, the spatial prior damps far matches, and the shipped graphs propagate a synthetic person."""
from __future__ import annotations

import json

import numpy as np
import pytest

from danmask.synthetic import make_video
from danmask.video import iter_frames
from danmask.vos.prior import spatial_prior
from danmask.vos.propagate import WEIGHTS_DIR, MemoryPropagator, soft_aggregate


def test_soft_aggregation_gives_each_pixel_to_at_most_one_object():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0, 1, (3, 8, 8)).astype(np.float32)
    out = soft_aggregate(probs)
    assert out.shape == probs.shape and np.all(out.sum(0) <= 1 + 1e-5)
    # the object that is surest keeps the pixel
    assert np.array_equal(out.argmax(0), probs.argmax(0))


def test_spatial_prior_is_one_on_the_object_and_falls_with_distance():
    prev = np.zeros((20, 30), np.float32)
    prev[5:10, 5:10] = 1
    g = spatial_prior(prev, sigma=3.0)
    assert g[7, 7] == 1.0 and g[7, 12] == pytest.approx(np.exp(-9 / 18), rel=1e-3)
    assert g[7, 29] < 1e-3 and np.all(spatial_prior(np.zeros((4, 4)), 3.0) == 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An untrained network at a small size, exported: what the parity and runtime tests need."""
    torch = pytest.importorskip("torch", reason="exporting needs the train extra (torch)")
    pytest.importorskip("ai_edge_litert", reason="the frozen encoder is read from the mediapipe wheel")
    from danmask.vos.export import export
    from danmask.vos.network import MemoryNet, VosConfig

    torch.manual_seed(0)
    net = MemoryNet(VosConfig(input_size=(64, 112)))
    out = tmp_path_factory.mktemp("vos")
    export(net, out, {"note": "test"})
    return net, out


def clip_frames(tmp_path, frames: int = 12):
    clip = make_video(tmp_path / "clip.mp4", frames=frames, shape=(90, 160), fps=25)
    return [f.rgb for f in iter_frames(clip.path)], clip.masks


def test_export_agrees_with_torch(exported, tmp_path):
    from danmask.vos.export import parity

    net, out = exported
    frames, masks = clip_frames(tmp_path, 3)
    assert parity(net, out, frames, masks[0]) < 1e-4
    assert json.loads((out / "vos.json").read_text())["input_size"] == [64, 112]


def test_memory_is_bounded_and_objects_are_kept_apart(exported, tmp_path):
    _, out = exported
    frames, masks = clip_frames(tmp_path, 24)
    other = np.zeros_like(masks[0])
    other[:20, :30] = True
    runtime = MemoryPropagator(out, slots=3, every=2)
    results = list(runtime.propagate(frames, {1: masks[0], 7: other}))
    assert len(results) == len(frames) and set(results[-1].masks) == {1, 7}
    assert len(runtime.memory) <= 3  # the reference and the two newest sampled frames, however long the clip
    for r in results[1:]:
        both = np.stack([r.masks[1], r.masks[7]])
        assert both.shape == (2, 64, 112) and np.all(both.sum(0) <= 1 + 1e-5)


def test_a_folder_without_a_network_is_one_clear_error(tmp_path):
    from danmask.errors import ModelError

    with pytest.raises(ModelError, match="no memory network"):
        MemoryPropagator(tmp_path)


@pytest.mark.skipif(not (WEIGHTS_DIR / "vos.json").is_file(), reason="no shipped memory network")
def test_shipped_network_follows_the_parkour_runner():
    """A regression guard at the level measured (docs/models/memory-net.md: J 0.76 on parkour): the first 20
    frames of a sequence it never trained on, from the first frame's truth."""
    import cv2

    from _shared import davis_frame

    frames, truth = zip(*(davis_frame("parkour", i) for i in range(20)))
    results = list(MemoryPropagator().propagate(frames, {1: truth[0]}))
    ious = []
    for r, t in zip(results[1:], truth[1:]):
        pred = cv2.resize(r.masks[1], (t.shape[1], t.shape[0])) > 0.5
        ious.append((pred & t).sum() / max(1, (pred | t).sum()))
    assert np.mean(ious) > 0.6, ious


def test_keyframe_specs_are_checked(tmp_path):
    from PIL import Image

    from danmask.errors import DanmaskError
    from danmask.vos.keyframes import parse_keyframe

    mask = np.zeros((90, 160), np.uint8)
    mask[20:60, 40:80] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.zeros_like(mask)).save(tmp_path / "empty.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    kf = parse_keyframe(f"12:{tmp_path / 'm.png'}")
    assert kf.frame == 12 and kf.time is None and list(kf.masks) == [1] and kf.masks[1].sum() == 40 * 40
    assert parse_keyframe(f"2.5s:{tmp_path / 'm.png'}").time == 2.5
    for bad, message in [("m.png", "expected WHEN:MASK.png"), (f"x:{tmp_path / 'm.png'}", "neither a frame"),
                         (f"-1:{tmp_path / 'm.png'}", "must not be negative"), (f"0:{tmp_path / 'empty.png'}", "empty"),
                         (f"0:{tmp_path / 'junk.png'}", "cannot read"), (f"0:{tmp_path / 'none.png'}", "cannot read")]:
        with pytest.raises(DanmaskError, match=message):
            parse_keyframe(bad)


def test_keyframes_propagate_both_ways_into_a_track(exported, tmp_path):
    from danmask.trackreader import TrackReader
    from danmask.vos.keyframes import Keyframe, propagate_video

    _, weights = exported
    clip = make_video(tmp_path / "clip.mp4", frames=20, shape=(90, 160), fps=25)
    keys = [Keyframe(5, None, {3: clip.masks[5]}, "a"), Keyframe(None, 12 / 25, {3: clip.masks[12]}, "b")]
    propagate_video(clip.path, keys, output=tmp_path / "out.dmask", weights=weights, mask_size=(90, 160)).close()
    with TrackReader(tmp_path / "out.dmask") as track:
        records = list(track.records())
        assert [pts for pts, _, _ in records] == [f.pts for f in iter_frames(clip.path)] and track.ids() == [3]
        for index in (5, 12):  # a key frame's mask is the one given
            _, union, people = records[index]
            assert [p.id for p in people] == [3]
            assert np.array_equal(union > 127, clip.masks[index])


def test_memory_network_is_an_eval_method(exported, tmp_path):
    from danmask.eval.vos_methods import Propagator
    from danmask.vos.method import MemoryNetwork

    _, weights = exported
    frames, masks = clip_frames(tmp_path, 6)
    method = MemoryNetwork(weights)
    assert isinstance(method, Propagator)
    out = list(method.propagate(((f, i / 25) for i, f in enumerate(frames)), {4: masks[0]}))
    assert len(out) == 6 and np.array_equal(out[0][4], masks[0])
    assert all(set(o) == {4} and o[4].dtype == bool and o[4].shape == masks[0].shape for o in out)
