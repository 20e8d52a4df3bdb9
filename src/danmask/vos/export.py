"""The memory network as three ONNX graphs the runtime runs without torch (extra `[train]` to make them).

- `vos-encode.onnx`: src (1, 3, H, W) [0, 1] RGB -> key, match (1/8), f4, f2 (the frame's features, once per frame);
- `vos-memorize.onnx`: match (N, C, h, w), mask (N, 1, H, W) -> value (N, V, h, w), one row per object;
- `vos-decode.onnx`: the frame's features repeated per object, the memory (N, K|V|1, M) with M positions of any
  number of memory frames, the spatial prior and previous mask at 1/8 -> logits (N, 1, H/2, W/2).
The input size is fixed per export (the frozen encoder's resize targets depend on it); objects and memory size
are dynamic axes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .network import MemoryNet

GRAPHS = ("vos-encode.onnx", "vos-memorize.onnx", "vos-decode.onnx")


class _Encode(nn.Module):
    def __init__(self, net: MemoryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, src):
        return self.net.encode(src)


class _Memorize(nn.Module):
    def __init__(self, net: MemoryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, match, mask):
        return self.net.memorize(match, mask)


class _Decode(nn.Module):
    def __init__(self, net: MemoryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, key, match, f4, f2, mem_key, mem_value, mem_fg, prior, prev):
        return self.net.decode(key, match, f4, f2, mem_key, mem_value, mem_fg, prior, prev)


def export(net: MemoryNet, out_dir: Path, meta: dict) -> list[Path]:
    """Write the three graphs and `vos.json` (input size, sigma, training facts) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    h, w = net.cfg.input_size
    with torch.no_grad():
        src = torch.rand(1, 3, h, w)
        key, match, f4, f2 = net.encode(src)
        mask = (torch.rand(2, 1, h, w) > 0.5).float()
        value = net.memorize(match.repeat(2, 1, 1, 1), mask)
        m = key.shape[2] * key.shape[3]
        rep = [t.repeat(2, 1, 1, 1) for t in (key, match, f4, f2)]
        mem = (key.flatten(2).repeat(2, 1, 2), value.flatten(2).repeat(1, 1, 2), torch.rand(2, 1, 2 * m))
        small = torch.rand(2, 1, *key.shape[-2:])
    obj = {0: "objects"}
    jobs = [
        (_Encode(net), (src,), ["src"], ["key", "match", "f4", "f2"], {}),
        (_Memorize(net), (match.repeat(2, 1, 1, 1), mask), ["match", "mask"], ["value"],
         {"match": obj, "mask": obj, "value": obj}),
        (_Decode(net), (*rep, *mem, small, small), ["key", "match", "f4", "f2", "mem_key", "mem_value", "mem_fg",
                                                     "prior", "prev"], ["logits"],
         {**{n: obj for n in ("key", "match", "f4", "f2", "prior", "prev", "logits")},
          **{n: {0: "objects", 2: "memory"} for n in ("mem_key", "mem_value", "mem_fg")}}),
    ]
    paths = []
    for (module, args, inputs, outputs, axes), name in zip(jobs, GRAPHS):
        path = out_dir / name
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=17, dynamo=False)
        paths.append(path)
    spec = {"input_size": [h, w], "sigma": net.cfg.sigma, "key_dim": net.cfg.key_dim,
            "value_dim": net.cfg.value_dim, "graphs": list(GRAPHS), **meta}
    (out_dir / "vos.json").write_text(json.dumps(spec, indent=2) + "\n")
    return paths


def parity(net: MemoryNet, out_dir: Path, frames: list[np.ndarray], first_mask: np.ndarray) -> float:
    """Largest difference of one object's probability on frames[1] (memory: frames[0] with `first_mask`), torch
    against the exported graphs run by the runtime."""
    import torch.nn.functional as F

    from .network import to_eighth
    from .prior import spatial_prior
    from .propagate import MemoryPropagator

    runtime = MemoryPropagator(out_dir)
    theirs = list(runtime.propagate(frames[:2], {1: first_mask}))[1].probabilities[1]
    h, w = net.cfg.input_size

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(runtime.prepare(rgb)).permute(2, 0, 1)[None]

    with torch.no_grad():
        key, match, _, _ = net.eval().encode(tensor(frames[0]))
        mask = torch.from_numpy(runtime.fit(first_mask))[None, None]
        small = to_eighth(mask)
        mem = (key.flatten(2), net.memorize(match, mask).flatten(2), small.flatten(2))
        key, match, f4, f2 = net.encode(tensor(frames[1]))
        prior = torch.from_numpy(spatial_prior(small[0, 0].numpy(), net.cfg.sigma))[None, None]
        logits = net.decode(key, match, f4, f2, *mem, prior, small)
        ours = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))[0, 0].numpy()
    return float(np.abs(ours - theirs).max())
