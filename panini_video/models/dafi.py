"""DAFI, degradation-aware feature interpolation: the channel-wise mask generator (spec 2.5).

The degradation code is mapped to one pair of weights per (fusion layer, channel), softmax-
normalised over the pair: ``m1`` weighs the generator (GAN prior) feature, ``m2`` the refined
encoder feature, and ``m1 + m2 = 1``.
"""

from __future__ import annotations

from torch import Tensor, nn


class MaskGenerator(nn.Module):
    """Degradation code [B, code] -> masks (m1, m2), each [B, num_layers, channels]."""

    def __init__(self, code_channels: int = 256, num_layers: int = 5, channels: int = 512) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.channels = channels
        self.mapping = nn.Sequential(
            nn.Linear(code_channels, code_channels),
            nn.LeakyReLU(0.1),
            nn.Linear(code_channels, num_layers * 2 * channels),
        )

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor]:
        # Output index j = layer * 2C + pair * C + channel.
        z = self.mapping(code).view(code.shape[0], self.num_layers, 2, self.channels)
        z = z.softmax(dim=2)
        return z[:, :, 0], z[:, :, 1]


def interpolate(generated: Tensor, encoded: Tensor, m1: Tensor, m2: Tensor) -> Tensor:
    """``m1 * generated + m2 * encoded`` with per-channel masks m1, m2 of shape [B, C]."""
    return m1[:, :, None, None].to(generated.dtype) * generated + m2[:, :, None, None].to(encoded.dtype) * encoded
