"""FIR filtering, fused activation and equalized lr against direct formulas written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from panini_video.models.layers import (
    Blur,
    EqualLinear,
    EqualLinearAct,
    FusedLeakyReLU,
    PixelNorm,
    UpsampleFIR,
    equalized_scale,
    upfirdn2d,
)


def direct_upfirdn(x: np.ndarray, k: np.ndarray, up: int, down: int, p0: int, p1: int) -> np.ndarray:
    """Textbook loops: zero insertion, zero pad (p0 before, p1 after), true convolution, decimation."""
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    for i in range(h):
        for j in range(w):
            u[i * up, j * up] = x[i, j]
    a0, a1 = max(p0, 0), max(p1, 0)
    padded = np.zeros((h * up + a0 + a1, w * up + a0 + a1))
    padded[a0 : a0 + h * up, a0 : a0 + w * up] = u
    # negative pads crop
    padded = padded[a0 - p0 : padded.shape[0] - (a1 - p1), a0 - p0 : padded.shape[1] - (a1 - p1)]
    kh, kw = k.shape
    oh, ow = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    out = np.zeros((oh, ow))
    for y in range(oh):
        for xx in range(ow):
            acc = 0.0
            for a in range(kh):
                for b in range(kw):
                    # convolution: the kernel is traversed backwards
                    acc += padded[y + a, xx + b] * k[kh - 1 - a, kw - 1 - b]
            out[y, xx] = acc
    return out[::down, ::down]


@pytest.mark.parametrize(("up", "down", "pad"), [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (1, 1)), (2, 1, (0, -1))])
def test_upfirdn2d_matches_direct_loops_with_an_asymmetric_kernel(up: int, down: int, pad: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)  # asymmetric: catches a missing flip
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    for b in range(2):
        for c in range(3):
            want = direct_upfirdn(x[b, c].numpy(), k.numpy(), up, down, *pad)
            np.testing.assert_allclose(got[b, c].numpy(), want, atol=1e-10)
    side = (5 * up + pad[0] + pad[1] - 4) // down + 1
    assert got.shape[2] == side


def stylegan_kernel() -> np.ndarray:
    k = np.array([1.0, 3.0, 3.0, 1.0])
    return np.outer(k, k) / 16.0  # spec 1.6/1.9: outer / sum(outer) (= 64) x 4, so the kernel sums to 4


def test_skip_upsampler_is_zero_insertion_then_blur_pad_2_1() -> None:
    up = UpsampleFIR((1, 3, 3, 1), factor=2)
    np.testing.assert_allclose(up.kernel.numpy(), stylegan_kernel(), atol=1e-7)
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    got = up(x)
    assert got.shape == (1, 3, 8, 10)
    for c in range(3):
        want = direct_upfirdn(x[0, c].numpy(), stylegan_kernel(), 2, 1, 2, 1)
        np.testing.assert_allclose(got[0, c].numpy(), want, atol=1e-6)
    # A constant image stays constant away from the border (the x4 gain restores the mean).
    flat = up(torch.ones(1, 1, 6, 6))
    np.testing.assert_allclose(flat[0, 0, 2:-2, 2:-2].numpy(), 1.0, atol=1e-6)


def test_blur_after_transposed_conv_maps_2h_plus_1_to_2h() -> None:
    blur = Blur((1, 3, 3, 1), pad=(1, 1), factor=4)
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    got = blur(x)
    assert got.shape == (1, 2, 8, 8)
    want = direct_upfirdn(x[0, 1].numpy(), stylegan_kernel(), 1, 1, 1, 1)
    np.testing.assert_allclose(got[0, 1].numpy(), want, atol=1e-6)


def test_fused_leaky_relu_is_bias_then_lrelu_then_sqrt2() -> None:
    act = FusedLeakyReLU(4)
    with torch.no_grad():
        act.bias.copy_(torch.tensor([0.5, -0.5, 1.0, -2.0]))
    x = torch.randn(2, 4, 3, 3)
    y = x + act.bias[None, :, None, None]
    want = torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2)
    torch.testing.assert_close(act(x), want)


def test_equalized_scale_is_gain_over_sqrt_fan_in_times_lr_mul() -> None:
    assert equalized_scale((512, 512), lr_mul=0.01) == pytest.approx(0.01 / math.sqrt(512))
    assert equalized_scale((1, 64, 32, 3, 3)) == pytest.approx(1 / math.sqrt(32 * 9))
    assert equalized_scale((1, 3, 32, 1, 1)) == pytest.approx(1 / math.sqrt(32))
    lin = EqualLinear(16, 8, lr_mul=0.01)
    x = torch.randn(3, 16)
    torch.testing.assert_close(lin(x), x @ (lin.weight_orig * 0.01 / math.sqrt(16)).T)


def test_mapping_layer_scales_its_bias_by_lr_mul_and_activates() -> None:
    layer = EqualLinearAct(16, 16, lr_mul=0.01, activate=True)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, 16)
    y = x @ (layer.linear.weight_orig * 0.01 / 4.0).T + 0.01 * layer.bias
    torch.testing.assert_close(layer(x), torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2))


def test_style_affine_starts_with_bias_one_and_adds_it_plainly() -> None:
    layer = EqualLinearAct(8, 5, bias_init=1.0)
    assert torch.equal(layer.bias.detach(), torch.ones(5))
    x = torch.randn(2, 8)
    torch.testing.assert_close(layer(x), x @ (layer.linear.weight_orig / math.sqrt(8)).T + 1.0)


def test_pixel_norm_adds_eps_to_the_rms() -> None:
    x = torch.randn(3, 10)
    rms = torch.sqrt((x**2).mean(dim=1, keepdim=True))
    torch.testing.assert_close(PixelNorm()(x), x / (rms + 1e-6))
