"""Which models an eval or bench run can take: registry names, .onnx files, and recurrent peers by path."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ModelError
from ..runtime.base import SegModel
from ..runtime.onnx_backend import session
from .recurrent_peer import DEFAULT_INPUT_SIZE, RecurrentOnnxPeer, is_recurrent


def load_eval_model(ref: str, threads: int = 1, device: str = "auto",
                    recurrent_size: tuple[int, int] = DEFAULT_INPUT_SIZE) -> SegModel:
    """A registry name or .onnx path through the runtime, or a recurrent peer when the file is one."""
    from ..runtime import load_model

    path = Path(ref)
    if path.suffix == ".onnx" and path.is_file() and not path.with_suffix(".json").is_file():
        graph = session(str(path), threads, device)
        if is_recurrent(graph):
            return RecurrentOnnxPeer(path, graph, recurrent_size)
    return load_model(ref, threads=threads, device=device)


def loadable_models(command: str) -> list[str]:
    """Every registered model that loads here; one whose extra is missing is left out with a note on stderr."""
    from ..runtime import list_models, load_model

    names = []
    for name in list_models():
        try:
            load_model(name)
        except ModelError as exc:
            print(f"danmask {command}: note: skipping {name} ({exc})", file=sys.stderr)
            continue
        names.append(name)
    if not names:
        raise ModelError("no registered model can be loaded; name one with --model")
    return names
