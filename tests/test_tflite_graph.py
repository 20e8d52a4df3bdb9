"""MediaPipe graphs replayed in torch: same output as LiteRT, trainable, exportable, prior channel inert at start."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model tests need the train extra (torch)")
pytest.importorskip("ai_edge_litert", reason="needs the mediapipe extra")

from danmask.models import create_model, input_size  # noqa: E402
from danmask.models.postprocess import Normalize  # noqa: E402
from danmask.runtime import load_model  # noqa: E402
from danmask.synthetic import _background, person_mask  # noqa: E402
from danmask.train.export import export_onnx, parity  # noqa: E402


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    h, w = input_size("mpft-cpu")
    img = _background(h, w, seed=3)
    img[person_mask(h, w, w / 2, h / 2, 0.8)] = (200, 150, 120)
    return img


def test_replayed_graph_matches_litert(frame):
    """Freshly built, the torch net is MediaPipe's landscape model: same probabilities as the TFLite runtime."""
    peer = load_model("mediapipe-selfie-landscape")
    expected = peer.predict(frame)
    net = create_model("mpft-cpu").eval()
    x = Normalize()(torch.from_numpy(frame.transpose(2, 0, 1)[None].astype(np.float32) / 255.0))
    with torch.no_grad():
        got = torch.sigmoid(net(x))[0, 0].numpy()
    assert expected.std() > 0.01, "a constant output would make this check toothless"
    assert np.abs(got - expected).max() < 1e-3


def test_prior_variant_starts_as_the_rgb_graph():
    rgb, prior = create_model("mpft-cpu").eval(), create_model("mpft-prior").eval()
    h, w = input_size("mpft-cpu")
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        a = rgb(x)
        assert torch.allclose(a, prior(x, torch.ones(1, 1, h, w)), atol=1e-5)
    first = next(p for p in prior.parameters() if p.dim() == 4)
    assert first.shape[1] == 4 and first[:, 3].abs().sum() == 0


def test_onnx_export_of_replayed_graph(tmp_path):
    net = create_model("mpft-cpu").eval()
    out = export_onnx(net, "mpft-cpu", tmp_path / "mpft-test.onnx")
    h, w = input_size("mpft-cpu")
    rng = np.random.default_rng(0)
    assert parity(net, "mpft-cpu", out, [rng.random((3, h, w)).astype(np.float32)]) < 1e-4
    mask = load_model(str(out)).predict((rng.random((90, 160, 3)) * 255).astype(np.uint8))
    assert mask.shape == (h, w)


def test_export_graph_keeps_onnx_runtime_on_its_fast_path(tmp_path):
    """TF SAME pads go inside the Conv nodes, SE means are GlobalAveragePools and the input is not normalised
    only to be un-normalised: each of these otherwise costs ONNX Runtime a layout change or a pass."""
    import onnx

    from danmask.models.postprocess import SoftEdges
    from danmask.train.export import ExportWrapper

    net = create_model("mpft-prior").eval()
    graph = onnx.load(str(export_onnx(net, "mpft-prior", tmp_path / "p.onnx"))).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Pad") == ops.count("Sub") == 1 and "ReduceMean" not in ops  # the Pad, Sub: SoftEdges'
    assert ops.count("GlobalAveragePool") == 10
    asymmetric = [n for n in graph.node if n.op_type == "Conv"
                  for a in n.attribute if a.name == "pads" and a.ints[:2] != a.ints[2:]]
    assert len(asymmetric) == 4
    h, w = input_size("mpft-prior")
    x, prior = torch.rand(1, 3, h, w), torch.rand(1, 1, h, w)
    with torch.no_grad():
        direct = ExportWrapper(net, prior=True)(x, prior)
        via_norm = SoftEdges()(net(Normalize()(x), prior))
    assert torch.allclose(direct, via_norm, atol=1e-5)


def test_other_input_sizes_scale_the_graph():
    from danmask.models.tflite_graph import MediaPipeConfig, MediaPipeNet

    big = MediaPipeNet(MediaPipeConfig("mediapipe-selfie-landscape", (288, 512))).eval()
    with torch.no_grad():
        assert big(torch.rand(1, 3, 288, 512)).shape == (1, 1, 288, 512)
    with pytest.raises(ValueError, match="multiple of the graph's stride 16"):
        MediaPipeNet(MediaPipeConfig("mediapipe-selfie-landscape", (100, 256)))
