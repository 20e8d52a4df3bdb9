"""The zoomed whole-frame model (`runtime.zoom`): where it looks, what it pastes back, when it looks at the whole
frame again, and how the registry and the Segmenter use it."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from danmask.danmaku.inbrowser import browser_model
from danmask.errors import ModelError
from danmask.runtime import load_model
from danmask.runtime.base import ModelSpec
from danmask.runtime.zoom import ZoomedModel, ZoomSettings, crop_region, mask_box
from danmask.segmenter import Segmenter, TemporalConfig

FRAME = (360, 640)


class RedModel:
    """A stand-in network with the SegModel contract: red pixels are 'person', seen at its 36x64 input size, so a
    small person is blurred whole-frame and sharp in a crop. Records the size of every input it was given."""

    def __init__(self) -> None:
        self.spec = ModelSpec("red", (36, 64))
        self.inputs: list[tuple[int, int]] = []

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        self.inputs.append(rgb.shape[:2])
        small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
        return (small[..., 0].astype(np.float32) / 255.0).clip(0, 1)


def frame_with(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    rgb = np.zeros((*FRAME, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        rgb[y0:y1, x0:x1, 0] = 255
    return rgb


def truth(*boxes: tuple[int, int, int, int]) -> np.ndarray:
    return frame_with(*boxes)[..., 0] > 0


def iou(mask: np.ndarray, gt: np.ndarray) -> float:
    m = mask >= 0.5
    return float((m & gt).sum() / (m | gt).sum())


def test_crop_region_keeps_aspect_margin_and_frame() -> None:
    s = ZoomSettings(margin=1.5, min_side=0.25, refresh_s=0.5)
    # a tall, thin person in the middle: the crop is 1.5x their height, widened to 16:9
    x0, y0, x1, y1 = crop_region((300, 100, 340, 200), FRAME, 16 / 9, s)
    assert y1 - y0 == pytest.approx(150) and (x1 - x0) / (y1 - y0) == pytest.approx(16 / 9)
    assert (x0 + x1) / 2 == pytest.approx(320) and (y0 + y1) / 2 == pytest.approx(150)
    # a tiny person: never narrower than min_side of the frame
    x0, y0, x1, y1 = crop_region((10, 10, 14, 14), FRAME, 16 / 9, s)
    assert x1 - x0 == pytest.approx(0.25 * 640)
    assert (x0, y0) == (0.0, 0.0)  # shifted into the frame, not cut by it
    # a person larger than the frame: the whole frame, never beyond it
    assert crop_region((-50, -50, 700, 400), FRAME, 16 / 9, s) == pytest.approx((0, 0, 640, 360))


def test_mask_box_in_frame_pixels() -> None:
    m = np.zeros((90, 160), np.float32)
    m[30:60, 40:80] = 1.0
    assert mask_box(m, FRAME) == pytest.approx((160, 120, 320, 240))
    assert mask_box(np.zeros((9, 16), np.float32), FRAME) is None


def test_a_small_person_is_sharper_zoomed_than_whole() -> None:
    person = (300, 150, 318, 214)  # 18x64 px of a 640x360 frame: 2x6 px at the network's input size
    rgb, gt = frame_with(person), truth(person)
    inner = RedModel()
    zoom = ZoomedModel(inner, ZoomSettings(margin=1.3, min_side=0.2, refresh_s=10.0))
    first = zoom.track(rgb, 0.0, FRAME)  # nobody known yet: the whole frame
    second = zoom.track(rgb, 0.04, FRAME)  # then a crop around them
    assert inner.inputs[0] == FRAME and inner.inputs[1][0] < FRAME[0] / 2
    assert (zoom.whole, zoom.crops) == (1, 1)
    assert iou(second, gt) > iou(first, gt) + 0.1
    assert iou(second, gt) > 0.8


def test_newcomers_are_found_when_the_whole_frame_is_due() -> None:
    one, two = (100, 100, 130, 200), (500, 120, 530, 220)
    inner = RedModel()
    zoom = ZoomedModel(inner, ZoomSettings(margin=1.3, min_side=0.2, refresh_s=0.5))
    zoom.track(frame_with(one), 0.0, FRAME)
    mask = zoom.track(frame_with(one, two), 0.1, FRAME)  # the newcomer is outside the crop: not seen yet
    assert (mask >= 0.5)[truth(two)].mean() < 0.1
    mask = zoom.track(frame_with(one, two), 0.5, FRAME)  # whole frame due: found, and the crop widens to both
    assert (mask >= 0.5)[truth(two)].mean() > 0.5
    mask = zoom.track(frame_with(one, two), 0.6, FRAME)
    assert iou(mask, truth(one, two)) > 0.6
    assert zoom.whole == 2


def test_nobody_left_and_reset_look_at_the_whole_frame() -> None:
    zoom = ZoomedModel(RedModel(), ZoomSettings(refresh_s=10.0))
    zoom.track(frame_with((100, 100, 130, 200)), 0.0, FRAME)
    zoom.track(frame_with(), 0.1, FRAME)  # the crop finds nobody
    zoom.track(frame_with(), 0.2, FRAME)
    assert zoom.whole == 2
    zoom.reset()
    zoom.track(frame_with(), 0.3, FRAME)
    assert zoom.whole == 3
    zoom.track(frame_with(), 0.1, FRAME)  # time went back (a seek without reset): whole frame again
    assert zoom.whole == 4


def test_segmenter_feeds_whole_frames_and_returns_the_asked_size() -> None:
    inner = RedModel()
    seg = Segmenter(ZoomedModel(inner), TemporalConfig(skip_still=False), mask_size=(90, 160))
    rgb = frame_with((300, 150, 318, 214))
    for i in range(3):
        out = seg.step(rgb, i / 25)
    assert out.shape == (90, 160) and seg.people == []
    assert inner.inputs[0] == FRAME  # not shrunk to the model's size first


def test_shipped_fast_model_is_zoomed_and_a_bad_sidecar_is_one_error(tmp_path) -> None:
    fast = load_model("fast")
    assert isinstance(fast, ZoomedModel)
    assert fast.predict(np.zeros((240, 320, 3), np.uint8)).shape == tuple(fast.spec.input_size)
    source = fast.spec.path
    good = {"margin": 1.3, "min_side": 0.3, "refresh_s": 0.5}
    for bad, prior in (({"margin": 0.5}, False), ({"margin": "x"}, False), ({"zoom": 1}, False), ([1], False),
                       (good, True)):
        path = tmp_path / "m.onnx"
        shutil.copy(source, path)
        spec = json.loads(open(str(source).replace(".onnx", ".json")).read())
        spec["extra"]["zoom"], spec["takes_prior"] = bad, prior
        spec["path"] = "m.onnx"
        path.with_suffix(".json").write_text(json.dumps(spec))
        with pytest.raises(ModelError, match="zoom"):
            load_model(str(path))
        with pytest.raises(ModelError, match="zoom"):  # nor is it handed to a viewer's page
            browser_model(str(path))
