"""StyleGAN2 primitives: FIR filtering (upfirdn2d), fused bias leaky ReLU, equalized-lr linear.

Semantics are those of mmcv 1.x as described in sections 1.3, 1.8 and 1.10 of
``OFFICIAL_ARCHITECTURE.md`` (not mmcv 2.x, whose upfirdn2d arguments mean other things).
Parameter names (``weight_orig``, ``bias``, ``kernel``) are the official state_dict names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


def make_fir_kernel(taps: Sequence[float], factor: float = 1.0) -> Tensor:
    """Separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum 1, times ``factor``."""
    # Plain Python arithmetic: cheap, and safe under a meta-device context.
    total = sum(taps) ** 2
    return torch.tensor([[a * b / total * factor for b in taps] for a in taps], dtype=torch.float32)


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad, FIR-filter (true convolution), downsample; per channel.

    ``pad = (p0, p1)``: p0 before and p1 after, on both axes (negative values crop). Output side
    ``(in * up + p0 + p1 - k) // down + 1``.
    """
    b, c, h, w = x.shape
    if up > 1:
        # Sample (y, x) lands at (up*y, up*x); the up-1 positions after it stay zero.
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (p0, p1, p0, p1))
    # conv2d is cross-correlation; flip the kernel for a true convolution.
    weight = torch.flip(kernel, (0, 1)).to(dtype=x.dtype)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = 0.2, scale: float = SQRT2) -> Tensor:
    """``leaky_relu(x + bias[c]) * scale``, bias broadcast over the channel axis (dim 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape).to(x.dtype), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Bias add, leaky ReLU 0.2 and gain sqrt(2) in one step; the bias is the ``bias`` parameter."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


def equalized_scale(weight_shape: Sequence[int], gain: float = 1.0, lr_mul: float = 1.0) -> float:
    """Run-time scale of an equalized-lr weight: ``gain * sqrt(1 / fan_in) * lr_mul``.

    fan_in is PyTorch's kaiming fan-in of the weight: ``shape[1] * prod(shape[2:])``; for the
    5-D modulated weight ``[1, out, in, k, k]`` it is taken from the ``[out, in, k, k]`` slice.
    """
    shape = list(weight_shape)
    if len(shape) == 5:
        shape = shape[1:]
    fan_in = shape[1] * math.prod(shape[2:])
    return gain * math.sqrt(1.0 / fan_in) * lr_mul


class EqualLinear(nn.Module):
    """Bias-free linear layer with equalized learning rate; the stored tensor is ``weight_orig``."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        # Stored weights are N(0, 1) / lr_mul so that the effective weight starts at N(0, 1/fan_in).
        self.weight_orig = nn.Parameter(torch.randn(out_features, in_features).div_(lr_mul))
        self.scale = equalized_scale((out_features, in_features), lr_mul=lr_mul)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_orig.to(x.dtype) * self.scale)


class EqualLinearAct(nn.Module):
    """Equalized-lr linear plus a separate ``bias`` (scaled by lr_mul), optionally fused leaky ReLU.

    The bias lives on this wrapper, not on the linear, hence keys ``bias`` and ``linear.weight_orig``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
        activate: bool = False,
    ) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.linear = EqualLinear(in_features, out_features, lr_mul=lr_mul)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        bias = self.bias * self.lr_mul
        if self.activate:
            return fused_leaky_relu(y, bias)
        return y + bias.to(y.dtype)


class PixelNorm(nn.Module):
    """``x / (rms(x) + 1e-6)`` over the feature axis (the eps is added to the RMS, not inside a root)."""

    def forward(self, x: Tensor) -> Tensor:
        return x / (x.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-6)


class Blur(nn.Module):
    """FIR blur applied after a stride-2 transposed conv: upfirdn2d(up=1, pad) with buffer ``kernel``."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], factor: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps, factor))
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class UpsampleFIR(nn.Module):
    """2x upsampling by zero insertion and FIR filtering (the ToRGB skip path), buffer ``kernel``."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        # The kernel carries factor**2 so that the zero-inserted image keeps its mean.
        self.register_buffer("kernel", make_fir_kernel(taps, factor**2))
        self.factor = factor
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)
