"""danmask's own person-segmentation networks (PyTorch; extra `[train]`). Build them with `create_model`."""
from __future__ import annotations

from torch import nn

from .airseg import AIRSEG_CONFIGS, AirSegConfig, AirSegNet
from .hourglass import HOURGLASS_CONFIGS, HourglassConfig, PriorHourglass

__all__ = ["AirSegNet", "AirSegConfig", "PriorHourglass", "HourglassConfig", "create_model", "model_names",
           "takes_prior", "input_size"]


def model_names() -> list[str]:
    return [*AIRSEG_CONFIGS, *HOURGLASS_CONFIGS]


def takes_prior(name: str) -> bool:
    return name in HOURGLASS_CONFIGS


def input_size(name: str) -> tuple[int, int]:
    return {**AIRSEG_CONFIGS, **HOURGLASS_CONFIGS}[name].input_size


def create_model(name: str) -> nn.Module:
    """Factory in the spirit of timm.create_model; the error lists the valid names."""
    if name in AIRSEG_CONFIGS:
        return AirSegNet(AIRSEG_CONFIGS[name])
    if name in HOURGLASS_CONFIGS:
        return PriorHourglass(HOURGLASS_CONFIGS[name])
    raise ValueError(f"unknown architecture '{name}'; valid: {', '.join(model_names())}")
