"""PaniniNet: encoder + DRE/choice vector + DAFI + StyleGAN2 prior (spec sections 2 and 3).

One class serves both official models; the config decides between the MFR layout (degradation
code from the DRE, attribute ``deg_encoder``) and the SR layout (a learned ``choice_vector``).
Attribute names are those of the official module tree so that ``state_dict()`` keys equal the
checkpoint's ``generator.*`` keys with that prefix removed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from panini_video.errors import InputError
from panini_video.models.config import PaniniConfig
from panini_video.models.dafi import MaskGenerator, interpolate
from panini_video.models.dre import DegradationEncoder
from panini_video.models.encoder import build_encoder, encode
from panini_video.models.stylegan2 import StyleGAN2Generator


class PaniniNet(nn.Module):
    """Panini-Net generator: RGB face [B, 3, in, in] in [-1, 1] -> [B, 3, out, out], roughly [-1, 1].

    Inference is deterministic: the noise comes from the stored buffers and every BatchNorm uses
    its running statistics once ``eval()`` is called.
    """

    def __init__(self, config: PaniniConfig) -> None:
        super().__init__()
        self.config = config
        if not config.uses_dre:
            # Learned degradation code of the SR model; its masks do not depend on the input.
            self.choice_vector = nn.Parameter(torch.randn(1, config.code_channels))
        self.generator = StyleGAN2Generator(
            config.out_size,
            config.style_channels,
            config.channels,
            num_mlps=config.num_mlps,
            lr_mlp=config.lr_mlp,
        )
        if config.uses_dre:
            self.deg_encoder = DegradationEncoder(config.dre_channels, config.dre_size)
        self.encoder = build_encoder(config)
        self.AFS_maskGen = MaskGenerator(config.code_channels, config.num_fusions, config.fusion_channels)
        width = config.fusion_channels
        self.fusion_out = nn.ModuleList(nn.Conv2d(width, width, 3, 1, 1) for _ in range(config.num_fusions))

    def check_input(self, lq: Tensor) -> None:
        """Raise InputError unless ``lq`` is a float tensor [B, 3, in, in]."""
        size = self.config.in_size
        if not isinstance(lq, Tensor) or lq.ndim != 4 or tuple(lq.shape[1:]) != (3, size, size) or lq.shape[0] < 1:
            got = list(lq.shape) if isinstance(lq, Tensor) else type(lq).__name__
            raise InputError(
                f"Panini-Net ({size} in) expects an RGB tensor of shape [B, 3, {size}, {size}] "
                f"with values in [-1, 1], got {got}"
            )
        if not lq.is_floating_point():
            raise InputError(f"Panini-Net expects a floating-point tensor in [-1, 1], got dtype {lq.dtype}")

    def degradation_code(self, lq: Tensor) -> Tensor:
        """The degradation code [B, code_channels]: the DRE feature (MFR) or the choice vector (SR)."""
        self.check_input(lq)
        if self.config.uses_dre:
            return self.deg_encoder(lq)
        return self.choice_vector.to(lq.dtype).repeat(lq.shape[0], 1)

    def dafi_masks(self, code: Tensor) -> tuple[Tensor, Tensor]:
        """DAFI masks (m1 for the generator feature, m2 for the encoder feature), each [B, F, C]."""
        if code.ndim != 2 or code.shape[1] != self.config.code_channels:
            raise InputError(
                f"expected a degradation code of shape [B, {self.config.code_channels}], got {list(code.shape)}"
            )
        # A cached code (a per-track average, say) may arrive in another dtype than the weights.
        return self.AFS_maskGen(code.to(self.AFS_maskGen.mapping[0].weight.dtype))

    def forward(self, lq: Tensor, code: Tensor | None = None) -> Tensor:
        """Restore ``lq``; ``code`` overrides the degradation code (e.g. a per-track average)."""
        self.check_input(lq)
        if code is None:
            code = self.degradation_code(lq)
        elif code.shape[0] != lq.shape[0]:
            raise InputError(f"degradation code batch {code.shape[0]} differs from the input batch {lq.shape[0]}")
        m1, m2 = self.dafi_masks(code)
        feats, latents = encode(self.encoder, self.config, lq)

        def fuse(k: int, out: Tensor) -> Tensor:
            if k >= self.config.num_fusions:
                return out
            return interpolate(out, self.fusion_out[k](feats[k]), m1[:, k], m2[:, k])

        return self.generator.synthesize(latents, fuse)
