"""The parse student's training side: the factory, pruning that keeps the function when the dropped channels are
silent, and the recorded config."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from danmask.train.parse_student import ParseStudentConfig, create_student, prune  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_factory_shapes_and_width():
    net = create_student(0.5).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 96, 128) * 255)
    assert out.shape == (1, 7, 48, 64)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in create_student(1.0).parameters())


def test_pruning_silent_channels_keeps_the_output():
    torch.manual_seed(0)
    net = create_student(0.5)
    with torch.no_grad():
        for block in net.blocks():
            bn = block.dw[1]
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.bias.uniform_(-0.5, 0.5)
            g = torch.rand_like(bn.weight) + 0.5
            g[::2] = 0  # half the channels silent: constant relu(beta) whatever the input
            bn.weight.copy_(g)
    net.eval()
    small = prune(net, 0.5).eval()
    assert small.hidden == [h // 2 for h in net.hidden]  # exactly the silent ones went
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        assert torch.allclose(net(x), small(x), atol=1e-4)


def test_the_recorded_config_parses():
    cfg = ParseStudentConfig.from_json(REPO / "configs" / "parse-student.json")
    assert cfg.crop == (192, 256) and 0 < cfg.prune_ratio < 1 and cfg.minutes > 0
