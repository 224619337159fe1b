"""Panini's encoder: multi-resolution features for DAFI and the W+ latents (spec section 2.3).

``encoder`` is a ModuleList, as in the official module tree:

* ``encoder.0``: RRDB trunk, CBAM, then the stem convs (first stride 1, the rest stride 2)
  down to the largest fusion resolution (64 officially);
* ``encoder.1 .. encoder.{F-1}``: one stride-2 conv each, down to 4x4;
* ``encoder.F``: the latent estimator, conv + flatten + linear to ``num_latents * style`` values.
"""

from __future__ import annotations

from torch import Tensor, nn

from panini_video.models.cbam import CBAM
from panini_video.models.config import PaniniConfig
from panini_video.models.rrdb import RRDBFeatureExtractor


def _conv_act(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2)]


def build_encoder(config: PaniniConfig) -> nn.ModuleList:
    """The ``encoder`` ModuleList of a config (6 entries for the official models)."""
    stem: list[nn.Module] = [
        RRDBFeatureExtractor(3, config.rrdb_channels, config.num_rrdbs, config.rrdb_growth),
        CBAM(config.rrdb_channels, config.cbam_reduction),
    ]
    in_ch = config.rrdb_channels
    for i, out_ch in enumerate(config.stem_channels):
        stem += _conv_act(in_ch, out_ch, 1 if i == 0 else 2)
        in_ch = out_ch
    blocks: list[nn.Module] = [nn.Sequential(*stem)]
    width = config.fusion_channels
    for _ in range(config.num_fusions - 1):
        blocks.append(nn.Sequential(*_conv_act(width, width, 2)))
    blocks.append(
        nn.Sequential(
            nn.Conv2d(width, config.latent_conv_channels, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # channel-major: index = c * 16 + y * 4 + x
            nn.Linear(config.latent_conv_channels * 16, config.num_latents * config.style_channels),
        )
    )
    return nn.ModuleList(blocks)


def encode(encoder: nn.ModuleList, config: PaniniConfig, lq: Tensor) -> tuple[list[Tensor], Tensor]:
    """Run the encoder: (features smallest first, 4 ... top fusion resolution; latents [B, L, style])."""
    feats = [encoder[0](lq)]
    for block in encoder[1:-1]:
        feats.append(block(feats[-1]))
    latents = encoder[-1](feats[-1]).view(lq.shape[0], config.num_latents, config.style_channels)
    return feats[::-1], latents
