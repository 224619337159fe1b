"""Panini's customised CBAM attention (spec section 2.2, pitfall 9).

Unlike the CBAM paper, the same pre-processing conv is applied twice (before the channel gate
and again before the spatial gate) and there is no residual connection.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelGate(nn.Module):
    """Channel attention: sigmoid(MLP(avgpool) + MLP(maxpool)), one shared MLP."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        # Index 0 is the Flatten, so the linear layers are keys mlp.1 and mlp.3.
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: Tensor) -> Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        return x * gate[:, :, None, None]


class SpatialConv(nn.Module):
    """7x7 conv (2 -> 1, no bias) followed by a one-channel BatchNorm (keys ``conv`` and ``bn``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, 1, 3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    """Spatial attention from the channel-wise [max, mean] maps (that order)."""

    def __init__(self) -> None:
        super().__init__()
        self.spatial = SpatialConv()

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """pre-conv -> channel gate -> the same pre-conv again -> spatial gate; no residual."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fea_preprocess = nn.Conv2d(channels, channels, 3, 1, 1)
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x: Tensor) -> Tensor:
        x = self.ChannelGate(self.fea_preprocess(x))
        return self.SpatialGate(self.fea_preprocess(x))
