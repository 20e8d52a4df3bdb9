"""danmask's own person-segmentation networks (PyTorch; extra `[train]`). Build them with `create_model`."""
from __future__ import annotations

from torch import nn

import torch

from .airseg import AIRSEG_CONFIGS, PRIOR_AIRSEG_CONFIGS, AirSegConfig, AirSegNet, PriorAirSegNet
from .hourglass import HOURGLASS_CONFIGS, HourglassConfig, PriorHourglass
from .tflite_graph import MEDIAPIPE_CONFIGS, PRIOR_MEDIAPIPE_CONFIGS, MediaPipeNet, PriorMediaPipeNet

__all__ = ["AirSegNet", "AirSegConfig", "PriorAirSegNet", "PriorHourglass", "HourglassConfig", "MediaPipeNet",
           "PriorMediaPipeNet", "adapt_state", "initialised_from",
           "create_model", "model_names", "takes_prior", "input_size"]


def model_names() -> list[str]:
    return [*AIRSEG_CONFIGS, *PRIOR_AIRSEG_CONFIGS, *HOURGLASS_CONFIGS, *MEDIAPIPE_CONFIGS, *PRIOR_MEDIAPIPE_CONFIGS]


def takes_prior(name: str) -> bool:
    return name in PRIOR_AIRSEG_CONFIGS or name in HOURGLASS_CONFIGS or name in PRIOR_MEDIAPIPE_CONFIGS


def input_size(name: str) -> tuple[int, int]:
    return {**AIRSEG_CONFIGS, **PRIOR_AIRSEG_CONFIGS, **HOURGLASS_CONFIGS, **MEDIAPIPE_CONFIGS,
            **PRIOR_MEDIAPIPE_CONFIGS}[name].input_size


def initialised_from(name: str) -> str | None:
    """Where an architecture's starting weights come from, for the model card and the exported spec."""
    cfg = MEDIAPIPE_CONFIGS.get(name) or PRIOR_MEDIAPIPE_CONFIGS.get(name)
    return f"{cfg.peer} (Google MediaPipe selfie segmentation, Apache-2.0)" if cfg else None


def create_model(name: str) -> nn.Module:
    """Factory in the spirit of timm.create_model; the error lists the valid names."""
    if name in AIRSEG_CONFIGS:
        return AirSegNet(AIRSEG_CONFIGS[name])
    if name in PRIOR_AIRSEG_CONFIGS:
        return PriorAirSegNet(PRIOR_AIRSEG_CONFIGS[name])
    if name in HOURGLASS_CONFIGS:
        return PriorHourglass(HOURGLASS_CONFIGS[name])
    if name in MEDIAPIPE_CONFIGS:  # starts from MediaPipe's Apache-2.0 weights, not at random
        return MediaPipeNet(MEDIAPIPE_CONFIGS[name])
    if name in PRIOR_MEDIAPIPE_CONFIGS:
        return PriorMediaPipeNet(PRIOR_MEDIAPIPE_CONFIGS[name])
    raise ValueError(f"unknown architecture '{name}'; valid: {', '.join(model_names())}")


def adapt_state(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of another checkpoint made to fit `net`: tensors that differ only in input channels (an RGB
    net's first conv feeding an RGB+prior net) are zero-padded, so the new channels start with no effect."""
    own = net.state_dict()
    out = {}
    for key, value in state.items():
        target = own[key]
        if value.shape != target.shape:
            if value.dim() != target.dim() or value.shape[0] != target.shape[0] or value.shape[2:] != target.shape[2:]:
                raise ValueError(f"{key}: cannot adapt {tuple(value.shape)} to {tuple(target.shape)}")
            padded = torch.zeros_like(target)
            padded[:, : value.shape[1]] = value
            value = padded
        out[key] = value
    return out
