"""Model family: shapes, gradients, ONNX export parity, registry round trip (shared base, as SMP's tests)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model tests need the train extra (torch)")

from danmask.models import create_model, input_size, model_names, takes_prior  # noqa: E402
from danmask.models.postprocess import SoftEdges, curve  # noqa: E402
from danmask.runtime import load_model  # noqa: E402
from danmask.runtime import registry  # noqa: E402
from danmask.train.export import export_onnx, int8_agreement, parity, quantize_int8  # noqa: E402


def _inputs(arch: str, n: int = 2, scale: int = 2):
    if arch.startswith("mpft"):  # replayed TFLite graphs have the fixed sizes of the file they came from
        scale = 1
    h, w = input_size(arch)
    h, w = h // scale, w // scale
    x = torch.rand(n, 3, h, w)
    return (x, torch.rand(n, 1, h, w)) if takes_prior(arch) else (x,)


@pytest.mark.parametrize("arch", model_names())
def test_forward_backward_shapes(arch):
    torch.manual_seed(0)
    net = create_model(arch).train()
    args = _inputs(arch)
    logits, embed = net(*args, return_embed=True)
    assert logits.shape == (2, 1, *args[0].shape[-2:])
    assert embed.dim() == 4 and embed.shape[0] == 2
    logits.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_prior_changes_hourglass_output():
    torch.manual_seed(0)
    net = create_model("hourglass-prior").eval()
    x, _ = _inputs("hourglass-prior", n=1)
    with torch.no_grad():
        a = net(x, torch.zeros(1, 1, *x.shape[-2:]))
        b = net(x, torch.ones(1, 1, *x.shape[-2:]))
    assert not torch.allclose(a, b), "the previous-mask channel must reach the output"


def test_factory_error_lists_names():
    with pytest.raises(ValueError, match="airseg-cpu"):
        create_model("nope")


def test_soft_edges_blur_and_curve():
    logits = torch.full((1, 1, 5, 5), -20.0)
    logits[0, 0, 2, 2] = 20.0  # one certain pixel
    p = SoftEdges(blur=True, gain=1.0)(logits)
    assert p[0, 0, 2, 2].item() == pytest.approx(4 / 16, abs=1e-4)  # centre weight of the 3x3 Gaussian
    assert p[0, 0, 1, 2].item() == pytest.approx(2 / 16, abs=1e-4)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-3)  # blur preserves mass
    assert curve(np.array([0.5, 0.8, 0.1]), 2.0).tolist() == pytest.approx([0.5, 1.0, 0.0])


@pytest.mark.parametrize("arch", ["airseg-cpu", "hourglass-prior"])
def test_onnx_export_parity_and_registry(arch, tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = create_model(arch).eval()
    out = export_onnx(net, arch, tmp_path / f"{arch}-test.onnx")
    spec = json.loads(out.with_suffix(".json").read_text())
    assert spec["takes_prior"] == takes_prior(arch) and spec["input_size"] == list(input_size(arch))
    h, w = input_size(arch)
    rng = np.random.default_rng(0)
    frames = [rng.random((4 if takes_prior(arch) else 3, h, w)).astype(np.float32) for _ in range(2)]
    assert parity(net, arch, out, frames) < 1e-4
    # the runtime finds it by path (sidecar) and, once in the weights folder, by name
    model = load_model(str(out))
    rgb = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    mask = model.predict(rgb, np.zeros((h, w), np.float32))
    assert mask.shape == (h, w) and 0.0 <= mask.min() and mask.max() <= 1.0
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    assert f"{arch}-test" in registry.list_models()
    assert load_model(f"{arch}-test").spec.takes_prior == takes_prior(arch)


def test_onnx_metadata_alone_is_enough(tmp_path):
    net = create_model("airseg-cpu").eval()
    out = export_onnx(net, "airseg-cpu", tmp_path / "bare.onnx")
    out.with_suffix(".json").unlink()  # a bare .onnx still carries its spec in the metadata
    assert load_model(str(out)).spec.input_size == input_size("airseg-cpu")


def test_int8_quantisation_runs_and_agrees(tmp_path):
    torch.manual_seed(0)
    net = create_model("airseg-cpu").eval()
    fp32 = export_onnx(net, "airseg-cpu", tmp_path / "m.onnx")
    h, w = input_size("airseg-cpu")
    rng = np.random.default_rng(1)
    frames = [rng.random((3, h, w)).astype(np.float32) for _ in range(4)]
    q = quantize_int8(fp32, tmp_path / "m-int8.onnx", frames, prior=False)
    agree = int8_agreement(fp32, q, frames)
    assert q.stat().st_size < fp32.stat().st_size / 2
    assert agree["mean_abs"] < 0.1


def test_prior_airseg_starts_as_the_rgb_net_it_was_adapted_from():
    from danmask.models import adapt_state

    torch.manual_seed(0)
    rgb, prior_net = create_model("airseg-cpu").eval(), create_model("airseg-prior").eval()
    prior_net.load_state_dict(adapt_state(prior_net, rgb.state_dict()))
    x = torch.rand(1, 3, 72, 128)
    with torch.no_grad():
        assert torch.allclose(rgb(x), prior_net(x, torch.zeros(1, 1, 72, 128)), atol=1e-6)
        # the new channel starts with no effect at all; training gives it one
        assert torch.allclose(rgb(x), prior_net(x, torch.ones(1, 1, 72, 128)), atol=1e-6)
    with pytest.raises(ValueError, match="cannot adapt"):
        adapt_state(prior_net, create_model("airseg-gpu").state_dict())
