"""Turn Apache-2.0 upstream models into the graphs danmask ships: same weights, danmask's I/O conventions.

- The person detector: YOLOX-Nano's ONNX graph gets its box decoding and person score appended, and takes RGB in
  [0, 1] like every danmask graph (channel order and scale move inside), so the runtime only letterboxes.
- The pose landmarker: MediaPipe's pose_landmark .tflite, replayed in PyTorch (`PoseLandmarkNet`), exported with
  the heads the person tracker uses (landmarks, presence, mask probability) and a dynamic batch of crops.

Weights are stored as float16 with a Cast to float32 in front of each, folded by ONNX Runtime at load: the
MediaPipe weights are float16 in the .tflite already, and the file stays within "a few MB".
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..people.detector import INPUT_SIDE, STRIDES

FP16_MIN_SIZE = 1024  # smaller tensors (biases) stay float32: they cost nothing and keep their precision


def _grid() -> tuple[np.ndarray, np.ndarray]:
    cells, strides = [], []
    for s in STRIDES:
        n = INPUT_SIDE // s
        ys, xs = np.mgrid[0:n, 0:n]
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(cells).astype(np.float32)[None], np.concatenate(strides).astype(np.float32)[None]


def convert_detector(src: str | Path, dst: str | Path, meta: dict) -> Path:
    """YOLOX-Nano 416 (`images` BGR 0..255 -> `output` (1, 3549, 85)) -> `src` RGB [0, 1] ->
    `boxes` (1, 3549, 4) x0, y0, x1, y1 in input pixels and `scores` (1, 3549) person confidence."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf's DecodeError, or onnx's own on a wrong file
        raise ValueError(f"{src}: not an ONNX model ({type(exc).__name__})") from None
    g = model.graph
    if len(g.input) != 1 or len(g.output) != 1 or g.output[0].type.tensor_type.shape.dim[2].dim_value != 85:
        raise ValueError(f"{src}: not a YOLOX COCO graph with one input and an (N, 85) output")
    old_in, old_out = g.input[0].name, g.output[0].name
    cells, strides = _grid()
    consts = {"dm_cells": cells, "dm_strides": strides, "dm_255": np.array(255.0, np.float32),
              "dm_bgr": np.array([2, 1, 0], np.int64), "dm_half": np.array(0.5, np.float32),
              **{f"dm_{k}": np.array(v, np.int64) for k, v in
                 {"s0": [0], "s2": [2], "s4": [4], "s5": [5], "s6": [6], "axis": [2]}.items()}}
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    head = [helper.make_node("Gather", ["src", "dm_bgr"], ["dm_bgr_src"], axis=1),
            helper.make_node("Mul", ["dm_bgr_src", "dm_255"], [old_in])]

    def sl(a: str, b: str, out: str):
        return helper.make_node("Slice", [old_out, f"dm_{a}", f"dm_{b}", "dm_axis"], [out])

    tail = [sl("s0", "s2", "dm_xy"), sl("s2", "s4", "dm_wh"), sl("s4", "s5", "dm_obj"), sl("s5", "s6", "dm_cls"),
            helper.make_node("Add", ["dm_xy", "dm_cells"], ["dm_xy_c"]),
            helper.make_node("Mul", ["dm_xy_c", "dm_strides"], ["dm_centre"]),
            helper.make_node("Exp", ["dm_wh"], ["dm_wh_e"]),
            helper.make_node("Mul", ["dm_wh_e", "dm_strides"], ["dm_size"]),
            helper.make_node("Mul", ["dm_size", "dm_half"], ["dm_halfsize"]),
            helper.make_node("Sub", ["dm_centre", "dm_halfsize"], ["dm_tl"]),
            helper.make_node("Add", ["dm_centre", "dm_halfsize"], ["dm_br"]),
            helper.make_node("Concat", ["dm_tl", "dm_br"], ["boxes"], axis=2),
            helper.make_node("Mul", ["dm_obj", "dm_cls"], ["dm_score"]),
            helper.make_node("Flatten", ["dm_score"], ["scores"], axis=1)]
    nodes = head + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    n = cells.shape[1]
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("src", TensorProto.FLOAT, [1, 3, INPUT_SIDE, INPUT_SIDE]))
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, n, 4]),
                     helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n])])
    _drop_initializer_inputs(g)
    return _finish(model, Path(dst), meta)


def _drop_initializer_inputs(graph) -> None:
    """Old exporters list weights as graph inputs too, which stops ONNX Runtime from folding them."""
    inits = {i.name for i in graph.initializer}
    keep = [i for i in graph.input if i.name not in inits]
    del graph.input[:]
    graph.input.extend(keep)


def convert_pose(tflite: str | Path, dst: str | Path, meta: dict, net=None) -> Path:
    """pose_landmark_{lite,full}.tflite (or a fine-tuned `PoseLandmarkNet`) -> ONNX `src` (N, 3, 256, 256) ->
    `landmarks` (N, 39, 5), `presence` (N, 1), `mask` (N, 1, 256, 256) probability."""
    import onnx

    from ..models.tflite_graph import PoseLandmarkNet

    net = (net or PoseLandmarkNet(tflite)).eval()
    wrapper = PoseExport(net).eval()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".fp32.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (torch.rand(1, 3, 256, 256),), str(tmp), input_names=["src"],
                          output_names=["landmarks", "presence", "mask"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch"} for n in ("src", "landmarks", "presence", "mask")})
    model = onnx.load(str(tmp))
    tmp.unlink()
    return _finish(model, dst, meta)


def landmarks_graph(src: str | Path, dst: str | Path) -> Path:
    """The pose graph without its mask branch: `src` -> `landmarks`, `presence` only. The mask's decoder works at
    full crop resolution and costs half the pass; effects that want keypoints only (`danmask fx pose`) skip it.
    ONNX Runtime runs every node whatever outputs are asked for, so the cut has to be made in the file."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(src))
    sub = Extractor(model).extract_model(["src"], ["landmarks", "presence"])
    meta = json.loads({p.key: p.value for p in model.metadata_props}.get("danmask", "{}"))
    entry = sub.metadata_props.add()
    entry.key, entry.value = "danmask", json.dumps({**meta, "name": "person-pose-landmarks", "outputs": "no mask"})
    onnx.checker.check_model(sub)
    dst = Path(dst)
    onnx.save(sub, str(dst))
    return dst


class PoseExport(nn.Module):
    """The tracker's view of the pose graph: mask logits become probabilities inside the graph."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        landmarks, presence, logits = self.net(src)
        return landmarks, presence, torch.sigmoid(logits)


def _finish(model, dst: Path, meta: dict) -> Path:
    """float16 storage, the spec in the metadata, a check that ONNX accepts it, and the file written."""
    import onnx

    _store_fp16(model.graph)
    entry = model.metadata_props.add()
    entry.key, entry.value = "danmask", json.dumps(meta)
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def _store_fp16(graph) -> None:
    from onnx import TensorProto, helper, numpy_helper

    casts, kept = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type == TensorProto.FLOAT and arr.size >= FP16_MIN_SIZE:
            kept.append(numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16"))
            casts.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def pose_parity(net: nn.Module, onnx_path: Path, count: int = 4) -> float:
    """Max |torch - ONNX Runtime| of the mask probability on crops of real frames (synthetic if none)."""
    import onnxruntime as ort

    from .export import parity_frames

    frames = [f[:3] for f in parity_frames("mpft-cpu", count)]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for f in frames:
        side = min(f.shape[1:])
        x = torch.nn.functional.interpolate(torch.from_numpy(f[None, :, :side, :side]), size=(256, 256),
                                            mode="bilinear", align_corners=False)
        with torch.no_grad():
            ref = torch.sigmoid(net(x)[2]).numpy()
        got = sess.run(["mask"], {"src": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst
