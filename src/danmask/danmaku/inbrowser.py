"""What a player page needs to compute masks in the viewer's browser: the model file and its spec, and the
onnxruntime-web files shipped in `danmask/web/ort/` (scripts/vendor-onnxruntime-web.sh puts them there).

The .wasm binaries are stored gzip-compressed and sent with `Content-Encoding: gzip` (every browser accepts it),
so the package and the download stay small. Pages are served cross-origin isolated (COOP + COEP credentialless),
which lets onnxruntime-web use threads.
"""
from __future__ import annotations

import gzip
from pathlib import Path

from ..errors import ModelError
from ..runtime import resolve
from ..runtime.base import ModelSpec
from ..runtime.zoom import zoom_settings

ORT_DIR = Path(__file__).resolve().parents[1] / "web" / "ort"
# Cross-origin isolation (SharedArrayBuffer, so WASM threads); `credentialless` still lets a page embed media
# from other sites (read-only: such a video taints the canvas, and the page says so).
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "credentialless"}
ORT_TYPES = {".mjs": "text/javascript", ".wasm": "application/wasm"}


def browser_model(name: str) -> ModelSpec:
    """The spec of a model the browser can run: one of danmask's whole-frame ONNX graphs.

    Raises:
        ModelError: unknown model, one that needs more than a single ONNX graph (person-track, peers), or a
            malformed `extra.zoom` in its sidecar.
    """
    spec = resolve(name)
    if spec.backend != "onnx" or not Path(spec.path).is_file():
        raise ModelError(f"model '{spec.name}' cannot run in the browser: only whole-frame ONNX models can "
                         "(e.g. --model fast)")
    zoom_settings(spec)  # a malformed extra.zoom fails here, in one line, not in the viewer's page
    return spec


def model_config(spec: ModelSpec, url: str) -> dict:
    """The page's view of a model: where to fetch it and what its input and output are."""
    return {"url": url, "spec": {"name": spec.name, "input_size": list(spec.input_size),
                                 "takes_prior": spec.takes_prior, "output": spec.output,
                                 "extra": {"blur": bool(spec.extra.get("blur", False)),
                                           **({"zoom": spec.extra["zoom"]} if spec.extra.get("zoom") else {})}}}


def ort_file(name: str, accepts_gzip: bool) -> tuple[bytes, str, dict[str, str]] | None:
    """The body, content type and extra headers of onnxruntime-web's file `name`, or None when there is none.

    Only the shipped files are served (the name is looked up, never joined into a path).
    """
    shipped = {p.name: p for p in ORT_DIR.iterdir()} if ORT_DIR.is_dir() else {}
    suffix = Path(name).suffix
    if suffix not in ORT_TYPES:
        return None
    if suffix == ".wasm" and name + ".gz" in shipped:
        body = shipped[name + ".gz"].read_bytes()
        if accepts_gzip:
            return body, ORT_TYPES[suffix], {"Content-Encoding": "gzip"}
        return gzip.decompress(body), ORT_TYPES[suffix], {}
    if name in shipped:
        return shipped[name].read_bytes(), ORT_TYPES[suffix], {}
    return None
