"""StyleGAN2 synthesis network as MMEditing 0.14 builds it (section 1 of OFFICIAL_ARCHITECTURE.md).

Module and parameter names follow the official state_dict (``conv1``, ``to_rgb1``, ``convs``,
``to_rgbs``, ``style_modulation``, ``noise_injector``, ``activate``, ``injected_noise_{i}``...).
Panini feeds W+ latents straight into the synthesis layers; the mapping network exists only so
that checkpoints load strictly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from panini_video.models.layers import (
    Blur,
    EqualLinearAct,
    FusedLeakyReLU,
    PixelNorm,
    UpsampleFIR,
    equalized_scale,
)

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
DEMOD_EPS = 1e-8

# fuse(k, out) -> out: called on the feature of resolution 4 * 2**k before its upsampling conv.
FuseFn = Callable[[int, Tensor], Tensor]


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and 2x transposed-conv upsampling.

    Computed as ``conv(x * s, W) * d`` (spec section 1.5, the batched identity of the per-sample
    weight ``W * s``): one dense convolution for the whole batch, so each sample's result does not
    depend on the rest of the batch. The demodulation runs in float32 whatever the input dtype.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_channels: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_taps: Sequence[float] = BLUR_TAPS,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.weight_orig = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = equalized_scale(self.weight_orig.shape)
        self.style_modulation = EqualLinearAct(style_channels, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_taps) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), factor=factor**2)

    def effective_weight(self) -> Tensor:
        """The equalized-lr weight ``[out, in, k, k]`` (before modulation)."""
        return self.weight_orig[0] * self.scale

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.style_modulation(style)  # [B, Cin]
        weight = self.effective_weight()
        x = x * s.to(x.dtype)[:, :, None, None]
        if self.upsample:
            # Transposed conv wants [Cin, Cout, k, k]: the same weight with its first two axes swapped.
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.kernel_size // 2)
        if self.demodulate:
            # sum over (i, ky, kx) of (W[o,i] * s[b,i])^2 = s^2 @ (sum_k W^2)^T
            acc = torch.promote_types(x.dtype, torch.float32)  # never below float32 (eps underflows in fp16)
            w2 = weight.to(acc).pow(2).sum(dim=(2, 3))  # [Cout, Cin]
            d = torch.rsqrt(s.to(acc).pow(2) @ w2.t() + DEMOD_EPS)  # [B, Cout]
            x = x * d.to(x.dtype)[:, :, None, None]
        if self.upsample:
            x = self.blur(x)
        return x


class NoiseInjection(nn.Module):
    """``x + weight * noise``, the noise [1, 1, H, W] broadcast over batch and channels."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + (self.weight * noise).to(x.dtype)


class ModulatedStyleConv(nn.Module):
    """Modulated 3x3 conv, then noise injection, then fused bias leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, style_channels: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_channels, upsample=upsample)
        self.noise_injector = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor) -> Tensor:
        return self.activate(self.noise_injector(self.conv(x, style), noise))


class ModulatedToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) plus bias, plus the upsampled previous image."""

    def __init__(self, in_channels: int, style_channels: int, upsample: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = UpsampleFIR(BLUR_TAPS, factor=2)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_channels, demodulate=False)

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        rgb = self.conv(x, style) + self.bias.to(x.dtype)
        if skip is not None:
            rgb = rgb + self.upsample(skip)
        return rgb


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network, parameter ``input`` [1, C, 4, 4]."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        # repeat, not expand: a view of a parameter made under no_grad confuses module hooks
        # (FlopCounterMode, for one) because it requires grad without having a grad_fn.
        return self.input.repeat(batch, 1, 1, 1)


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (config-f layout); ``synthesize`` maps W+ latents to an image."""

    def __init__(
        self,
        out_size: int,
        style_channels: int,
        channels: Callable[[int], int],
        num_mlps: int = 8,
        lr_mlp: float = 0.01,
    ) -> None:
        super().__init__()
        self.out_size = out_size
        self.style_channels = style_channels
        self.log_size = out_size.bit_length() - 1
        self.num_latents = 2 * self.log_size - 2
        self.num_injected_noises = 2 * self.log_size - 3
        # Fixed noise, replaced by the checkpoint's values; Panini never draws fresh noise.
        for i in range(self.num_injected_noises):
            side = 2 ** ((i + 5) // 2)
            self.register_buffer(f"injected_noise_{i}", torch.randn(1, 1, side, side))

        # Index 0 is the parameter-free PixelNorm, so the linear layers are keys 1..num_mlps.
        mapping: list[nn.Module] = [PixelNorm()]
        mapping += [
            EqualLinearAct(style_channels, style_channels, lr_mul=lr_mlp, activate=True) for _ in range(num_mlps)
        ]
        self.style_mapping = nn.Sequential(*mapping)

        c4 = channels(4)
        self.constant_input = ConstantInput(c4)
        self.conv1 = ModulatedStyleConv(c4, c4, style_channels)
        self.to_rgb1 = ModulatedToRGB(c4, style_channels, upsample=False)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty, as in the official module tree
        self.to_rgbs = nn.ModuleList()
        in_ch = c4
        for level in range(3, self.log_size + 1):
            out_ch = channels(2**level)
            self.convs.append(ModulatedStyleConv(in_ch, out_ch, style_channels, upsample=True))
            self.convs.append(ModulatedStyleConv(out_ch, out_ch, style_channels))
            self.to_rgbs.append(ModulatedToRGB(out_ch, style_channels, upsample=True))
            in_ch = out_ch

    def noises(self) -> list[Tensor]:
        """The stored noise buffers, in injection order."""
        return [getattr(self, f"injected_noise_{i}") for i in range(self.num_injected_noises)]

    def synthesize(self, latents: Tensor, fuse: FuseFn | None = None) -> Tensor:
        """Render W+ latents [B, num_latents, style] to an RGB image [B, 3, out, out] (not clamped).

        ``fuse(k, out)`` may replace the feature of resolution 4 * 2**k after that resolution's
        ToRGB and before the next upsampling conv (Panini's DAFI hook).
        """
        if latents.ndim != 3 or latents.shape[1:] != (self.num_latents, self.style_channels):
            raise ValueError(
                f"expected latents of shape [B, {self.num_latents}, {self.style_channels}], got {list(latents.shape)}"
            )
        noise = self.noises()
        out = self.constant_input(latents.shape[0]).to(latents.dtype)
        out = self.conv1(out, latents[:, 0], noise[0])
        skip = self.to_rgb1(out, latents[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):
            if fuse is not None:
                out = fuse(k, out)
            up_conv, conv = self.convs[2 * k], self.convs[2 * k + 1]
            out = up_conv(out, latents[:, 2 * k + 1], noise[2 * k + 1])
            out = conv(out, latents[:, 2 * k + 2], noise[2 * k + 2])
            skip = to_rgb(out, latents[:, 2 * k + 3], skip)
        return skip

    def map_styles(self, z: Tensor) -> Tensor:
        """The mapping network (unused by Panini): z [B, style] -> w [B, style]."""
        return self.style_mapping(z)
