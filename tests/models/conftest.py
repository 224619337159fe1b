"""Fixtures for the Panini-Net tests: small models with every parameter and statistic randomised."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
from torch import nn

from panini_video.models import VARIANTS, PaniniConfig, PaniniNet


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every bias, noise strength and BatchNorm statistic a non-trivial value (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("noise_injector.weight"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.1)
            elif name.endswith("bias") or name.endswith("choice_vector"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    return model


# The tiny family with a learned choice vector instead of the DRE (the SR code path).
TINY_CHOICE = dataclasses.replace(VARIANTS["tiny"], degradation="choice")


@pytest.fixture
def tiny() -> PaniniNet:
    """The tiny variant (DRE path), randomised, in eval mode."""
    torch.manual_seed(0)
    return randomize_(PaniniNet(VARIANTS["tiny"]), seed=1).eval()


@pytest.fixture
def tiny_choice() -> PaniniNet:
    """The tiny family on the choice-vector (SR) path, randomised, in eval mode."""
    torch.manual_seed(0)
    return randomize_(PaniniNet(TINY_CHOICE), seed=2).eval()


def _random_faces(config: PaniniConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = config.in_size
    coarse = torch.rand(batch, 3, max(s // 8, 1), max(s // 8, 1), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
    return (smooth + 0.1 * torch.randn(batch, 3, s, s, generator=g)).clamp(0, 1) * 2 - 1


@pytest.fixture
def random_faces() -> Callable[..., torch.Tensor]:
    """``random_faces(config, batch, seed=0)``: inputs in [-1, 1], smooth structure plus noise."""
    return _random_faces


@pytest.fixture
def randomize() -> Callable[..., nn.Module]:
    """``randomize(model, seed=0)``: the in-place randomiser used by the model fixtures."""
    return randomize_
