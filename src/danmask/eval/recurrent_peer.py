"""Run a recurrent matting network (RVM-style ONNX) as a SegModel, so eval can compare against it.

Such a file is a peer given by path at run time only (RVM is GPL: never copied into the repo or registered).
Contract: input `src` float32 (1, H, W, 3) RGB in [0, 1] plus recurrent inputs `r1i..rNi` (scalar 0.0 on the
first frame, then the previous frame's `r1o..rNo`); the alpha output (`pha`) is (1, H, W, 1).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..runtime.base import ModelSpec, to_input

DEFAULT_INPUT_SIZE = (288, 512)  # RVM mobilenetv3 with downsample ratio 1.0 is meant for ~288p input
_STATE_INPUT = re.compile(r"^r\d+i$")
_ALPHA_NAMES = ("pha", "alpha", "mask")


def is_recurrent(session) -> bool:
    """True for graphs with an NHWC `src` and only `r<k>i` state inputs besides it."""
    names = {i.name for i in session.get_inputs()}
    return "src" in names and len(names) > 1 and all(_STATE_INPUT.match(n) for n in names - {"src"})


class RecurrentOnnxPeer:
    """SegModel over a recurrent ONNX graph; call `reset()` between clips to clear the hidden state."""

    def __init__(self, path: Path, session, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE) -> None:
        self.session = session
        self.spec = ModelSpec(name=path.name, input_size=tuple(input_size), backend="onnx-recurrent", path=str(path),
                              description="recurrent ONNX peer given by path")
        outputs = [o.name for o in session.get_outputs()]
        self._state_in = sorted(i.name for i in session.get_inputs() if i.name != "src")
        self._state_out = [n[:-1] + "o" for n in self._state_in]
        missing = [n for n in self._state_out if n not in outputs]
        alpha = [n for n in _ALPHA_NAMES if n in outputs]
        if missing or not alpha:
            raise ModelError(f"{path}: recurrent model needs outputs {self._state_out} and one of {_ALPHA_NAMES} "
                             f"(has {outputs})")
        self._fetch = [alpha[0], *self._state_out]
        self._state: list[np.ndarray] | None = None

    def reset(self) -> None:
        self._state = None

    def predict(self, rgb: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        feeds = {"src": to_input(rgb, self.spec.input_size)[None]}
        state = self._state or [np.zeros((), np.float32)] * len(self._state_in)
        feeds.update(zip(self._state_in, state))
        try:
            alpha, *self._state = self.session.run(self._fetch, feeds)
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise ModelError(f"{self.spec.path}: inference failed ({str(exc).splitlines()[0]})") from exc
        return np.clip(alpha[0, :, :, 0], 0.0, 1.0).astype(np.float32, copy=False)
