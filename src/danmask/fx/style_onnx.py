"""Rebuild Magenta's int8 style-transfer TFLite graph as a float ONNX graph of any input size (build time only).

    python -m danmask.fx.style_onnx [--check]      (needs the `onnx` package and the mediapipe wheel's schema)

The int8 graph's input is baked at 384x384 (its resize ops carry constant sizes) and its 255 ms per pass is
mostly quantise / dequantise work around the instance norms: its convolutions are only 1.85 G multiply-adds.
This reads the .tflite flatbuffer op by op and writes the same network with every weight dequantised (per-channel
scales and zero points), the activation quantise / dequantise ops dropped, NCHW layout, mirror padding as ONNX
reflect padding, the resizes as x2 nearest-neighbour upsampling, and the height and width left free. The weights
are Google's (Apache-2.0), only dequantised. `--check` compares it with the int8 graph through LiteRT at 384x384.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from .style import TRANSFER, WEIGHTS

ONNX_TRANSFER = WEIGHTS / "magenta-style-transfer.onnx"
_NP = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _schema():
    spec = importlib.util.find_spec("mediapipe")
    path = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "metadata" / "schema_py_generated.py"
    mod_spec = importlib.util.spec_from_file_location("_danmask_tflite_schema", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def _constant(model, t) -> np.ndarray | None:
    data = model.Buffers(t.Buffer()).DataAsNumpy()
    if isinstance(data, int) or not data.size:
        return None
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    raw = np.frombuffer(data.tobytes(), _NP[t.Type()]).reshape(shape)
    q = t.Quantization()
    if q is not None and q.ScaleLength() and t.Type() in (9, 3, 2):  # int8 / uint8 weights, int32 biases
        scale = q.ScaleAsNumpy().astype(np.float64)
        zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros_like(scale)
        if scale.size > 1:
            bshape = [1] * raw.ndim
            bshape[q.QuantizedDimension()] = -1
            scale, zero = scale.reshape(bshape), zero.reshape(bshape)
        return ((raw.astype(np.float64) - zero) * scale).astype(np.float32)
    return raw


def convert(tflite: Path = TRANSFER, out: Path = ONNX_TRANSFER) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s = _schema()
    model = s.Model.GetRootAsModel(Path(tflite).read_bytes(), 0)
    g = model.Subgraphs(0)
    tensors = [g.Tensors(i) for i in range(g.TensorsLength())]
    names = [t.Name().decode() for t in tensors]
    consts = {i: c for i, t in enumerate(tensors) if (c := _constant(model, t)) is not None}
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    nodes, inits, alias = [], [], {}
    counter = iter(range(10 ** 6))

    def fresh(prefix: str) -> str:
        return f"{prefix}_{next(counter)}"

    def const(value: np.ndarray, prefix: str = "c") -> str:
        name = fresh(prefix)
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def value(i: int) -> str:
        """The ONNX name of tensor i (a 4D constant for an elementwise op goes NCHW-broadcastable)."""
        if i in alias:
            return alias[i]
        c = consts[i]
        if c.ndim == 4:
            c = c.transpose(0, 3, 1, 2)
        elif c.ndim == 1:
            c = c.reshape(1, -1, 1, 1)
        alias[i] = const(c.astype(np.float32))
        return alias[i]

    def act(name: str, fused: int) -> str:
        if fused == 0:
            return name
        if fused not in (1, 3):
            raise ValueError(f"fused activation {fused} not supported")
        out_name = fresh("act")
        if fused == 1:
            nodes.append(helper.make_node("Relu", [name], [out_name]))
        else:
            nodes.append(helper.make_node("Clip", [name, const(np.float32(0)), const(np.float32(6))], [out_name]))
        return out_name

    inputs = [int(i) for i in g.InputsAsNumpy()]
    graph_inputs = []
    for i in inputs:
        c = int(tensors[i].ShapeAsNumpy()[-1])
        dims = [1, "height", "width", c] if names[i] == "content_image" else [1, 1, 1, c]
        graph_inputs.append(helper.make_tensor_value_info(names[i], TensorProto.FLOAT, dims))
        alias[i] = fresh("nchw")
        nodes.append(helper.make_node("Transpose", [names[i]], [alias[i]], perm=[0, 3, 1, 2]))

    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(j) for j in op.InputsAsNumpy()]
        out_i = int(op.OutputsAsNumpy()[0])
        table = op.BuiltinOptions()
        if kind in ("QUANTIZE", "DEQUANTIZE"):
            alias[out_i] = value(ins[0])
            continue
        y = fresh(kind.lower())
        if kind == "CONV_2D":
            o = s.Conv2DOptions()
            o.Init(table.Bytes, table.Pos)
            w = consts[ins[1]].transpose(0, 3, 1, 2)  # OHWI -> OIHW
            b = consts[ins[2]] if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0], np.float32)
            attrs = {"strides": [o.StrideH(), o.StrideW()], "dilations": [o.DilationHFactor(), o.DilationWFactor()]}
            if o.Padding() == 0:
                attrs["auto_pad"] = "SAME_UPPER"
            nodes.append(helper.make_node("Conv", [value(ins[0]), const(w, "w"), const(b.reshape(-1), "b")], [y],
                                          **attrs))
            y = act(y, o.FusedActivationFunction())
        elif kind in ("ADD", "MUL", "SUB"):
            o = {"ADD": s.AddOptions, "MUL": s.MulOptions, "SUB": s.SubOptions}[kind]()
            o.Init(table.Bytes, table.Pos)
            nodes.append(helper.make_node(kind.capitalize(), [value(ins[0]), value(ins[1])], [y]))
            y = act(y, o.FusedActivationFunction())
        elif kind == "SQUARED_DIFFERENCE":
            d = fresh("diff")
            nodes.append(helper.make_node("Sub", [value(ins[0]), value(ins[1])], [d]))
            nodes.append(helper.make_node("Mul", [d, d], [y]))
        elif kind == "RSQRT":
            r = fresh("sqrt")
            nodes.append(helper.make_node("Sqrt", [value(ins[0])], [r]))
            nodes.append(helper.make_node("Reciprocal", [r], [y]))
        elif kind == "MEAN":
            o = s.ReducerOptions()
            o.Init(table.Bytes, table.Pos)
            axes = sorted(_TO_NCHW[int(a)] for a in np.atleast_1d(consts[ins[1]]))
            nodes.append(helper.make_node("ReduceMean", [value(ins[0]), const(np.array(axes, np.int64))], [y],
                                          keepdims=int(o.KeepDims())))
        elif kind == "MIRROR_PAD":
            o = s.MirrorPadOptions()
            o.Init(table.Bytes, table.Pos)
            if o.Mode() != 0:
                raise ValueError("only REFLECT mirror padding is supported")
            p = consts[ins[1]].astype(np.int64)  # (4, 2) NHWC
            pads = [p[0, 0], p[3, 0], p[1, 0], p[2, 0], p[0, 1], p[3, 1], p[1, 1], p[2, 1]]
            nodes.append(helper.make_node("Pad", [value(ins[0]), const(np.array(pads, np.int64))], [y],
                                          mode="reflect"))
        elif kind == "RESIZE_NEAREST_NEIGHBOR":
            o = s.ResizeNearestNeighborOptions()
            o.Init(table.Bytes, table.Pos)
            src = [int(d) for d in tensors[ins[0]].ShapeAsNumpy()]
            size = [int(d) for d in consts[ins[1]]]  # the output (h, w), baked for a 384x384 input
            factor = (size[0] / src[1], size[1] / src[2])
            if factor == (1.0, 1.0):  # back to the content's own size: the identity when its sides are 4k
                alias[out_i] = value(ins[0])
                continue
            if factor != (2.0, 2.0) or o.AlignCorners():
                raise ValueError(f"only x2 nearest upsampling is supported (got {factor})")
            mode = "tf_half_pixel_for_nn" if o.HalfPixelCenters() else "asymmetric"
            nodes.append(helper.make_node("Resize", [value(ins[0]), "", const(np.array([1, 1, 2, 2], np.float32))],
                                          [y], mode="nearest", coordinate_transformation_mode=mode,
                                          nearest_mode="floor"))
        elif kind == "LOGISTIC":
            nodes.append(helper.make_node("Sigmoid", [value(ins[0])], [y]))
        else:
            raise ValueError(f"{kind}: op not supported by this converter")
        alias[out_i] = y

    outputs = [int(i) for i in g.OutputsAsNumpy()]
    nodes.append(helper.make_node("Transpose", [alias[outputs[0]]], ["stylized_image"], perm=[0, 2, 3, 1]))
    graph = helper.make_graph(nodes, "magenta_style_transfer", graph_inputs,
                              [helper.make_tensor_value_info("stylized_image", TensorProto.FLOAT,
                                                             [1, "height", "width", 3])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="danmask")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(out))
    return out


def check(path: Path = ONNX_TRANSFER) -> dict:
    """Mean / max absolute difference from the int8 graph at 384x384 on a real-looking input, and speeds."""
    import time

    import onnxruntime as ort

    from .tflite import TfLite

    rng = np.random.default_rng(0)
    x = cv2_smooth(rng.random((384, 384, 3)).astype(np.float32))[None]
    v = rng.normal(0, 1, (1, 1, 1, 100)).astype(np.float32)
    lite = TfLite(TRANSFER)
    a = lite.run(x, v)[0]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    b = sess.run(None, {"content_image": x, "mobilenet_conv/Conv/BiasAdd": v})[0]
    out = {"mean_abs_diff": float(np.abs(a - b).mean()), "max_abs_diff": float(np.abs(a - b).max())}
    for h, w in ((384, 384), (240, 320), (120, 160)):
        xi = np.ascontiguousarray(x[:, :h, :w])
        sess.run(None, {"content_image": xi, "mobilenet_conv/Conv/BiasAdd": v})
        t0 = time.perf_counter()
        for _ in range(5):
            sess.run(None, {"content_image": xi, "mobilenet_conv/Conv/BiasAdd": v})
        out[f"onnx_ms_{w}x{h}"] = round((time.perf_counter() - t0) / 5 * 1000, 1)
    t0 = time.perf_counter()
    for _ in range(3):
        lite.run(x, v)
    out["int8_litert_ms_384x384"] = round((time.perf_counter() - t0) / 3 * 1000, 1)
    return out


def cv2_smooth(x: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(x, (0, 0), 6)


def main(argv: list[str] | None = None) -> int:
    import json

    p = argparse.ArgumentParser(prog="python -m danmask.fx.style_onnx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ONNX_TRANSFER)
    p.add_argument("--check", action="store_true", help="compare with the int8 graph and time both")
    args = p.parse_args(argv)
    convert(out=args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    if args.check:
        print(json.dumps(check(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
