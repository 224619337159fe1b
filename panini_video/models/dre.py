"""The degradation representation encoder, DRE (MFR only; spec section 2.4, pitfall 12).

A MoCo-pretrained, then fine-tuned, conv/BN encoder; its globally pooled feature is the
degradation code that drives the DAFI masks. The projection head ``mlp`` is kept only so that
checkpoints load strictly.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn_act(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1)]


class DegradationEncoder(nn.Module):
    """Input [B, 3, S, S] in [-1, 1] -> degradation code [B, widths[-1]]."""

    def __init__(self, widths: tuple[int, int, int] = (64, 128, 256), pool_size: int = 256) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.pool_size = pool_size
        layers: list[nn.Module] = []
        layers += _conv_bn_act(3, c1, 1) + _conv_bn_act(c1, c1, 1)
        layers += _conv_bn_act(c1, c2, 2) + _conv_bn_act(c2, c2, 1)
        layers += _conv_bn_act(c2, c3, 2) + _conv_bn_act(c3, c3, 1)
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.E = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(c3, c3), nn.LeakyReLU(0.1), nn.Linear(c3, c3))  # unused by Panini

    def forward(self, x: Tensor) -> Tensor:
        # An area average (2x2 mean for 512 -> 256), not an interpolating resize.
        x = F.adaptive_avg_pool2d(x, self.pool_size)
        return self.E(x).flatten(1)
