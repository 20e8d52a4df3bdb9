"""Trainable PyTorch copies of MediaPipe's selfie-segmentation TFLite graphs (Apache-2.0, in the mediapipe wheel).

Labelled person video is scarce here: from scratch, a CPU-sized run of our own nets plateaus far below MediaPipe
(docs/models/airseg-cpu.md). A network that has already seen a great many people is the better start, so this
module reads the .tflite file op by op and replays it in NCHW with its weights as parameters; fine-tuning,
checkpoints and ONNX export then work as for any other danmask model. Only the ops these graphs use are known.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .postprocess import MEAN, STD

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
_FUSED = {0: None, 1: F.relu, 3: F.relu6}  # TFLite ActivationFunctionType: NONE, RELU, RELU6
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}


@dataclass(frozen=True)
class MediaPipeConfig:
    peer: str  # runtime name of the MediaPipe model whose graph and weights start the net
    input_size: tuple[int, int]  # may differ from the graph's own (a multiple of its stride)


def _schema():
    """The TFLite flatbuffer schema bundled in the mediapipe wheel, loaded by path (importing mediapipe is slow)."""
    from ..errors import ModelError

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("MediaPipe-initialised models need the mediapipe extra: pip install 'danmask[mediapipe]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "metadata" / "schema_py_generated.py"
    mod_spec = importlib.util.spec_from_file_location("_danmask_tflite_schema", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


@dataclass
class _Op:
    kind: str
    inputs: list[str]
    output: str
    options: dict


def read_tflite(path: str | Path) -> tuple[list[_Op], dict[str, np.ndarray], dict[str, tuple[int, ...]], str,
                                           list[str]]:
    """(ops, constants by tensor name, NHWC shapes, input name, output names) of a one-subgraph TFLite file.

    DEQUANTIZE of an fp16 constant is folded away: its output name maps to the fp32 constant.
    """
    s = _schema()
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":  # the FlatBuffer file identifier of every TFLite model
        raise ValueError(f"{path}: not a TFLite model")
    model = s.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
    names = [t.Name().decode() for t in tensors]
    shapes = {n: tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else () for n, t in zip(names, tensors)}
    consts: dict[str, np.ndarray] = {}
    for name, t in zip(names, tensors):
        data = model.Buffers(t.Buffer()).DataAsNumpy()
        if not isinstance(data, int) and data.size:
            consts[name] = np.frombuffer(data.tobytes(), _DTYPES[t.Type()]).reshape(shapes[name]).astype(
                np.int64 if t.Type() == 2 else np.float32)
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # old files keep it in the deprecated field
        kind = code.CustomCode().decode() if code.CustomCode() else op_names[builtin]
        ins = [names[j] for j in op.InputsAsNumpy() if j >= 0]
        out = names[op.OutputsAsNumpy()[0]]
        if kind == "DEQUANTIZE" and ins[0] in consts:
            consts[out] = consts[ins[0]]
            continue
        ops.append(_Op(kind, ins, out, _options(s, kind, op)))
    return ops, consts, shapes, names[graph.InputsAsNumpy()[0]], [names[j] for j in graph.OutputsAsNumpy()]


def _options(s, kind: str, op) -> dict:
    table = op.BuiltinOptions()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = (s.Conv2DOptions if kind == "CONV_2D" else s.DepthwiseConv2DOptions)()
        o.Init(table.Bytes, table.Pos)
        return {"same": o.Padding() == 0, "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()), "act": o.FusedActivationFunction()}
    if kind in ("ADD", "MUL"):
        o = (s.AddOptions if kind == "ADD" else s.MulOptions)()
        o.Init(table.Bytes, table.Pos)
        return {"act": o.FusedActivationFunction()}
    if kind == "MEAN":
        o = s.ReducerOptions()
        o.Init(table.Bytes, table.Pos)
        return {"keep_dims": bool(o.KeepDims())}
    if kind == "RESIZE_BILINEAR":
        o = s.ResizeBilinearOptions()
        o.Init(table.Bytes, table.Pos)
        if o.AlignCorners() or not o.HalfPixelCenters():
            raise ValueError("only half-pixel-centre bilinear resizing is supported")
        return {}
    if kind == "MAX_POOL_2D":
        o = s.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        if o.Padding() != 1 or o.FusedActivationFunction():
            raise ValueError("only VALID max pooling without a fused activation is supported")
        return {"kernel": (o.FilterHeight(), o.FilterWidth()), "stride": (o.StrideH(), o.StrideW())}
    if kind == "Convolution2DTransposeBias":  # MediaPipe's TfLiteTransposeConvParams: padding, stride_w, stride_h
        padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes()[:12], np.int32)
        return {"same": padding == 0, "stride": (int(stride_h), int(stride_w))}
    return {}


def _same_pad(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow SAME padding (the extra pixel goes after), which torch's symmetric padding cannot express."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _PaddedConv(torch.autograd.Function):
    """Export-only: F.pad + conv2d as ONE ONNX Conv with asymmetric `pads`. Traced, torch writes the pad as a
    Pad node fed by a Slice it cannot fold, and ONNX Runtime then neither folds the Pad into the Conv nor keeps
    its fast blocked layout across it (measured: the Pads alone took 5 % of the graph's time)."""

    @staticmethod
    def forward(ctx, x, weight, bias, pads, stride, dilation, groups):  # noqa: ARG004 - export traces, never trains
        return F.conv2d(F.pad(x, pads), weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def symbolic(g, x, weight, bias, pads, stride, dilation, groups):
        left, right, top, bottom = pads
        return g.op("Conv", x, weight, bias, kernel_shape_i=list(weight.type().sizes()[2:]),
                    pads_i=[top, left, bottom, right], strides_i=list(stride), dilations_i=list(dilation),
                    group_i=groups)


class _Conv(nn.Module):
    def __init__(self, op: _Op, weight: np.ndarray, bias: np.ndarray, in_shape: tuple[int, ...],
                 depthwise: bool) -> None:
        super().__init__()
        o = op.options
        if depthwise:  # (1, kh, kw, C*M) -> (C*M, 1, kh, kw)
            w = weight.transpose(3, 0, 1, 2)
            groups = in_shape[3]
        else:  # (O, kh, kw, I) -> (O, I, kh, kw)
            w = weight.transpose(0, 3, 1, 2)
            groups = 1
        self.conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], w.shape[2:], o["stride"], 0, o["dilation"], groups)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            self.conv.bias.copy_(torch.from_numpy(bias))
        pads = o.get("pads", (0, 0, 0, 0))  # a folded zero PAD (see _fold_pads)
        if o["same"]:
            ph = _same_pad(in_shape[1], w.shape[2], o["stride"][0], o["dilation"][0])
            pw = _same_pad(in_shape[2], w.shape[3], o["stride"][1], o["dilation"][1])
            pads = (pw[0], pw[1], ph[0], ph[1])
        if pads[0] == pads[1] == pads[2] == pads[3]:
            self.conv.padding, self.pads = (pads[0], pads[0]), None
        else:
            self.pads = pads
        self.act = _FUSED[o["act"]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if self.pads is None:
            x = c(x)
        elif torch.onnx.is_in_onnx_export():
            x = _PaddedConv.apply(x, c.weight, c.bias, self.pads, c.stride, c.dilation, c.groups)
        else:
            x = c(F.pad(x, self.pads))
        return self.act(x) if self.act else x


class _TransposeConv(nn.Module):
    """MediaPipe's Convolution2DTransposeBias: a transposed conv with bias, weights (O, kh, kw, I)."""

    def __init__(self, op: _Op, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        w = weight.transpose(3, 0, 1, 2)  # -> (I, O, kh, kw)
        self.stride = op.options["stride"]
        self.up = nn.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2:], self.stride)
        with torch.no_grad():
            self.up.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            self.up.bias.copy_(torch.from_numpy(bias))
        # SAME keeps in*stride pixels of the full (in-1)*stride+k output, cropping the excess as TF does.
        kh, kw = w.shape[2:]
        self.crop = (kh - self.stride[0], kw - self.stride[1]) if op.options["same"] else (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(x)
        ch, cw = self.crop
        if ch or cw:
            y = y[:, :, ch // 2: y.shape[2] - (ch - ch // 2), cw // 2: y.shape[3] - (cw - cw // 2)]
        return y


class TfliteGraph(nn.Module):
    """A TFLite graph replayed op by op in NCHW, weights as parameters. `run(x)` takes the graph's own input
    ([0, 1] RGB for MediaPipe) and returns the tensors named in `keep`; ops that feed none of them are dropped.

    Another input size than the graph's keeps every SAME pad (strided inputs stay even) and scales resize targets.
    A 4th input channel (a prior mask) starts with zero weights, so it has no effect until trained.
    """

    def __init__(self, path: str | Path, input_size: tuple[int, int] | None = None, in_ch: int = 3,
                 keep: list[str] | None = None, drop_final_sigmoid: bool = False) -> None:
        super().__init__()
        ops, consts, shapes, self.input_name, outputs = read_tflite(path)
        if drop_final_sigmoid and ops[-1].kind == "LOGISTIC" and ops[-1].output in outputs:
            outputs = [ops[-1].inputs[0] if o == ops[-1].output else o for o in outputs]
            ops = ops[:-1]
        self.outputs = keep or outputs
        ops = _fold_pads(_needed(ops, self.outputs), consts)
        graph_hw = shapes[self.input_name][1:3]
        self.input_size = tuple(input_size or graph_hw)
        stride = graph_hw[0] // min(shapes[op.output][1] for op in ops if len(shapes[op.output]) == 4
                                    and shapes[op.output][1] > 1)
        if any(d % stride for d in self.input_size):
            raise ValueError(f"input size {self.input_size} must be a multiple of the graph's stride {stride}")
        zoom = (self.input_size[0] / graph_hw[0], self.input_size[1] / graph_hw[1])
        self.in_ch = in_ch
        self.layers = nn.ModuleDict()
        self.plan: list[tuple[str, str, list[str], str, dict]] = []  # kind, layer key, inputs, output, options
        for op in ops:
            key = _key(op.output)
            ins = [n for n in op.inputs if n not in consts]
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                weight = consts[op.inputs[1]]
                if op.inputs[0] == self.input_name and in_ch > weight.shape[3]:
                    weight = np.pad(weight, ((0, 0), (0, 0), (0, 0), (0, in_ch - weight.shape[3])))
                self.layers[key] = _Conv(op, weight, consts[op.inputs[2]], shapes[op.inputs[0]],
                                         op.kind == "DEPTHWISE_CONV_2D")
            elif op.kind == "Convolution2DTransposeBias":
                self.layers[key] = _TransposeConv(op, consts[op.inputs[1]], consts[op.inputs[2]])
            elif op.kind == "MEAN":
                op.options["dims"] = sorted(_NHWC_TO_NCHW_AXIS[int(a)] for a in consts[op.inputs[1]].ravel())
            elif op.kind == "RESIZE_BILINEAR":
                op.options["size"] = tuple(round(int(v) * z) for v, z in zip(consts[op.inputs[1]], zoom))
            elif op.kind == "PAD":
                (n0, n1), (t, b), (l, r), (c0, c1) = consts[op.inputs[1]].astype(int).tolist()
                if n0 or n1:
                    raise ValueError("padding the batch is not supported")
                op.options["pads"] = (l, r, t, b, c0, c1)  # F.pad on NCHW: last dim first
            elif op.kind == "RESHAPE":
                if len(shapes[op.output]) != 2 or any(d != 1 for d in shapes[op.inputs[0]][1:3]):
                    raise ValueError("only (1, 1, 1, C) -> (1, C) reshapes are supported")
            elif op.kind in ("ADD", "MUL"):
                if len(ins) != 2:
                    raise ValueError(f"{op.kind} with a constant operand is not supported")
            elif op.kind not in ("RELU", "HARD_SWISH", "LOGISTIC", "MAX_POOL_2D"):
                raise ValueError(f"TFLite op {op.kind} is not supported")
            self.plan.append((op.kind, key, ins, op.output, op.options))

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        env = {self.input_name: x}
        for kind, key, ins, out, opt in self.plan:
            a = [env[n] for n in ins]
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "Convolution2DTransposeBias"):
                y = self.layers[key](a[0])
            elif kind in ("ADD", "MUL"):
                y = a[0] + a[1] if kind == "ADD" else a[0] * a[1]
                act = _FUSED[opt["act"]]
                y = act(y) if act else y
            elif kind == "RELU":
                y = F.relu(a[0])
            elif kind == "HARD_SWISH":
                y = F.hardswish(a[0])
            elif kind == "LOGISTIC":
                y = torch.sigmoid(a[0])
            elif kind == "MEAN":
                if opt["dims"] == [2, 3] and opt["keep_dims"]:  # exports as GlobalAveragePool, which ONNX
                    y = F.adaptive_avg_pool2d(a[0], 1)  # Runtime runs in its blocked layout; ReduceMean breaks it
                else:
                    y = a[0].mean(dim=opt["dims"], keepdim=opt["keep_dims"])
            elif kind == "PAD":
                y = F.pad(a[0], opt["pads"])
            elif kind == "MAX_POOL_2D":
                y = F.max_pool2d(a[0], opt["kernel"], opt["stride"])
            elif kind == "RESHAPE":
                y = a[0].flatten(1)
            else:  # RESIZE_BILINEAR with half-pixel centres == align_corners=False
                y = F.interpolate(a[0], size=opt["size"], mode="bilinear", align_corners=False)
            env[out] = y
        return env


def _needed(ops: list[_Op], outputs: list[str]) -> list[_Op]:
    """The ops that some kept output depends on, in graph order."""
    wanted, kept = set(outputs), []
    for op in reversed(ops):
        if op.output in wanted:
            kept.append(op)
            wanted.update(op.inputs)
    return kept[::-1]


def _fold_pads(ops: list[_Op], consts: dict[str, np.ndarray]) -> list[_Op]:
    """A zero PAD that only feeds one VALID convolution becomes that convolution's own padding: ONNX Runtime
    runs a Pad node as a separate pass that also breaks its blocked layout (measured: 14 % of pose_landmark_full's
    time with the Pads and the layout changes around them)."""
    users: dict[str, list[_Op]] = {}
    for op in ops:
        for name in op.inputs:
            users.setdefault(name, []).append(op)
    folded = []
    for op in ops:
        after = users.get(op.output, [])
        if (op.kind == "PAD" and len(after) == 1 and after[0].kind in ("CONV_2D", "DEPTHWISE_CONV_2D")
                and not after[0].options["same"]):
            conv = after[0]
            (_, _), (t, b), (l, r), (_, _) = consts[op.inputs[1]].astype(int).tolist()
            conv.options["pads"] = (l, r, t, b)
            conv.inputs = [op.inputs[0], *conv.inputs[1:]]
            continue
        folded.append(op)
    return folded


class MediaPipeNet(TfliteGraph):
    """A MediaPipe selfie graph as a plain module. Takes ImageNet-normalised RGB (like every danmask net; the
    graph itself wants [0, 1]) and returns logits: the graph's final sigmoid moves into the export's SoftEdges.
    `embed` is the x2 feature map before the last upsampling, for the clustering loss."""

    def __init__(self, cfg: MediaPipeConfig, in_ch: int = 3) -> None:
        from ..runtime.litert_backend import mediapipe_model_path

        self.cfg = cfg
        super().__init__(mediapipe_model_path(cfg.peer), cfg.input_size, in_ch, drop_final_sigmoid=True)
        last = self.plan[-1]
        self.logits_name, self.embed_name = last[3], last[2][0]
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    accepts_unit_rgb = True  # forward(..., unit_rgb=True) takes [0, 1] RGB: export skips normalise-then-undo

    def forward(self, x: torch.Tensor, return_embed: bool = False, unit_rgb: bool = False):
        rgb = x if self.in_ch == 3 else x[:, :3]
        if not unit_rgb:
            rgb = rgb * self.std + self.mean
        env = self.run(torch.cat([rgb, x[:, 3:]], 1) if self.in_ch > 3 else rgb)
        logits = env[self.logits_name]
        return (logits, env[self.embed_name]) if return_embed else logits


class PriorMediaPipeNet(MediaPipeNet):
    """The MediaPipe graph with the previous mask as a 4th input channel, zero-initialised."""

    def __init__(self, cfg: MediaPipeConfig) -> None:
        super().__init__(cfg, in_ch=4)

    def forward(self, src: torch.Tensor, prior: torch.Tensor, return_embed: bool = False, unit_rgb: bool = False):
        return super().forward(torch.cat([src, prior], 1), return_embed, unit_rgb)


POSE_LANDMARKS = 39  # 33 body landmarks, then 2 alignment points (hips' midpoint, body-circle point), then 4 more
POSE_INPUT = 256


class PoseLandmarkNet(TfliteGraph):
    """MediaPipe's pose_landmark_{lite,full,heavy} (BlazePose GHUM 3D, Apache-2.0) on a 256x256 person crop.

    forward([0, 1] RGB crop) -> (landmarks (N, 39, 5): x, y in crop pixels, z, visibility and presence logits;
    presence (N, 1): probability that the crop holds a person; mask logits (N, 1, 256, 256)). The heatmap and
    world-landmark heads are dropped.
    """

    def __init__(self, path: str | Path, mask_only: bool = False) -> None:
        ops, _, shapes, _, outputs = read_tflite(path)
        by_shape = {shapes[o][1:]: o for o in outputs}
        try:
            names = [by_shape[(POSE_LANDMARKS * 5,)], by_shape[(1,)], by_shape[(POSE_INPUT, POSE_INPUT, 1)]]
        except KeyError:
            raise ValueError(f"{path}: not a MediaPipe pose-landmark graph (outputs {outputs})") from None
        super().__init__(path, keep=names[2:] if mask_only else names)  # mask_only: the mask's inputs only
        self.landmarks_name, self.presence_name, self.mask_name = names
        self.features_name = next(ins[0] for _, _, ins, out, _ in self.plan if out == self.mask_name)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        env = self.run(x)
        return env[self.landmarks_name].view(-1, POSE_LANDMARKS, 5), env[self.presence_name], env[self.mask_name]

    def segment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits (N, 1, 256, 256) and the 8-channel features the head's last layer reads."""
        env = self.run(x)
        return env[self.mask_name], env[self.features_name]


def _key(name: str) -> str:
    return name.replace("/", "__").replace(".", "_")


# Larger inputs see small, full-body people in more pixels; the weights are the same shapes at every size.
MEDIAPIPE_CONFIGS = {"mpft-cpu": MediaPipeConfig("mediapipe-selfie-landscape", (144, 256)),
                     "mpft-gpu": MediaPipeConfig("mediapipe-selfie-landscape", (208, 368)),
                     "mpft-server": MediaPipeConfig("mediapipe-selfie-landscape", (288, 512))}
PRIOR_MEDIAPIPE_CONFIGS = {"mpft-prior": MediaPipeConfig("mediapipe-selfie-landscape", (144, 256))}
