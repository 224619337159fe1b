"""StyleGAN2 blocks against per-sample formulas (spec 1.5-1.12), written here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from panini_video.models.stylegan2 import ModulatedConv2d, ModulatedToRGB, StyleGAN2Generator


def per_sample_weight(conv: ModulatedConv2d, w: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """Wm[b, o, i] = W_eff[o, i] * s[b, i], demodulated by 1/sqrt(sum Wm^2 + 1e-8) per (b, o)."""
    cin, k = conv.in_channels, conv.kernel_size
    a_eff = conv.style_modulation.linear.weight_orig / math.sqrt(w.shape[1])
    s = w @ a_eff.T + conv.style_modulation.bias  # [B, Cin]
    w_eff = conv.weight_orig[0] / math.sqrt(cin * k * k)  # [Cout, Cin, k, k]
    wm = w_eff[None] * s[:, None, :, None, None]
    if demodulate:
        wm = wm / torch.sqrt((wm**2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    return wm


def randomized_conv(cin: int, cout: int, k: int, upsample: bool = False, demodulate: bool = True) -> ModulatedConv2d:
    torch.manual_seed(0)
    conv = ModulatedConv2d(cin, cout, k, 16, demodulate=demodulate, upsample=upsample).double()
    with torch.no_grad():
        conv.style_modulation.bias.add_(torch.randn(cin, dtype=torch.float64) * 0.3)
    return conv


def test_modulated_conv_equals_per_sample_conv_with_modulated_demodulated_weight() -> None:
    conv = randomized_conv(6, 5, 3)
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    w = torch.randn(3, 16, dtype=torch.float64)
    wm = per_sample_weight(conv, w, demodulate=True)
    want = torch.cat([F.conv2d(x[b : b + 1], wm[b], padding=1) for b in range(3)])
    torch.testing.assert_close(conv(x, w), want, rtol=1e-10, atol=1e-10)


def test_to_rgb_conv_is_modulated_without_demodulation() -> None:
    conv = randomized_conv(6, 3, 1, demodulate=False)
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 16, dtype=torch.float64)
    wm = per_sample_weight(conv, w, demodulate=False)
    want = torch.cat([F.conv2d(x[b : b + 1], wm[b]) for b in range(2)])
    torch.testing.assert_close(conv(x, w), want, rtol=1e-10, atol=1e-10)


def direct_blur(x: np.ndarray) -> np.ndarray:
    """Zero-pad 1 on every side, then a 4x4 'valid' filter with outer([1,3,3,1]) / 16."""
    k = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0]) / 16.0
    p = np.pad(x, 1)
    out = np.zeros((p.shape[0] - 3, p.shape[1] - 3))
    for y in range(out.shape[0]):
        for xx in range(out.shape[1]):
            out[y, xx] = (p[y : y + 4, xx : xx + 4] * k[::-1, ::-1]).sum()
    return out


def test_upsampling_modulated_conv_is_transposed_conv_then_blur() -> None:
    conv = randomized_conv(4, 3, 3, upsample=True)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 16, dtype=torch.float64)
    wm = per_sample_weight(conv, w, demodulate=True)
    got = conv(x, w)
    assert got.shape == (2, 3, 10, 10)
    for b in range(2):
        # PyTorch's transposed-conv layout is [Cin, Cout, k, k]: the axes swapped, no spatial flip.
        t = F.conv_transpose2d(x[b : b + 1], wm[b].transpose(0, 1), stride=2)
        assert t.shape[-1] == 11
        for c in range(3):
            np.testing.assert_allclose(got[b, c].detach().numpy(), direct_blur(t[0, c].detach().numpy()), atol=1e-9)


def test_demodulation_normalises_each_output_channel_weight() -> None:
    conv = randomized_conv(8, 4, 3)
    w = torch.randn(2, 16, dtype=torch.float64) * 10
    wm = per_sample_weight(conv, w, demodulate=True)
    norms = (wm**2).sum(dim=(2, 3, 4))
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=1e-6, atol=1e-6)


def test_to_rgb_adds_bias_and_upsampled_skip() -> None:
    torch.manual_seed(1)
    to_rgb = ModulatedToRGB(6, 16, upsample=True).double()
    with torch.no_grad():
        to_rgb.bias.normal_()
    x = torch.randn(1, 6, 8, 8, dtype=torch.float64)
    w = torch.randn(1, 16, dtype=torch.float64)
    skip = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    base = to_rgb.conv(x, w) + to_rgb.bias
    torch.testing.assert_close(to_rgb(x, w, skip) - base, to_rgb.upsample(skip))
    torch.testing.assert_close(to_rgb(x, w), base)


@pytest.fixture
def generator() -> StyleGAN2Generator:
    torch.manual_seed(0)
    gen = StyleGAN2Generator(32, 16, lambda r: min(16, 256 // r), num_mlps=2)
    with torch.no_grad():
        for conv in [gen.conv1, *gen.convs]:
            conv.noise_injector.weight.fill_(0.5)
    return gen.eval()


def test_generator_layout_matches_the_noise_and_latent_counts(generator: StyleGAN2Generator) -> None:
    assert generator.num_latents == 2 * 5 - 2
    assert [n.shape[-1] for n in generator.noises()] == [4, 8, 8, 16, 16, 32, 32]
    assert len(generator.convs) == 6 and len(generator.to_rgbs) == 3 and len(generator.upsamples) == 0


def test_every_latent_reaches_the_image(generator: StyleGAN2Generator) -> None:
    latents = torch.randn(2, generator.num_latents, 16, requires_grad=True)
    img = generator.synthesize(latents)
    assert img.shape == (2, 3, 32, 32)
    img.square().sum().backward()
    assert latents.grad is not None
    per_latent = latents.grad.abs().sum(dim=(0, 2))
    assert bool((per_latent > 0).all()), per_latent


def test_last_latent_only_drives_the_last_to_rgb(generator: StyleGAN2Generator) -> None:
    # Spec 1.12: w_{L-1} feeds to_rgbs[-1] alone; changing it moves the image by exactly the change
    # of that layer's 1x1 conv output.
    latents = torch.randn(1, generator.num_latents, 16)
    other = latents.clone()
    other[:, -1] = torch.randn(16)
    with torch.no_grad():
        diff = generator.synthesize(other) - generator.synthesize(latents)
        # Capture the last feature map to evaluate the 1x1 conv under both latents.
        captured: list[torch.Tensor] = []
        hook = generator.to_rgbs[-1].register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
        generator.synthesize(latents)
        hook.remove()
        conv = generator.to_rgbs[-1].conv
        want = conv(captured[0], other[:, -1]) - conv(captured[0], latents[:, -1])
    torch.testing.assert_close(diff, want, rtol=1e-4, atol=1e-5)


def test_noise_comes_from_the_stored_buffers(generator: StyleGAN2Generator) -> None:
    latents = torch.randn(1, generator.num_latents, 16)
    with torch.no_grad():
        a = generator.synthesize(latents)
        b = generator.synthesize(latents)
        assert torch.equal(a, b)
        generator.injected_noise_3.add_(1.0)
        c = generator.synthesize(latents)
    assert not torch.allclose(a, c)
