"""PaniniNet against a functional re-statement of the spec, read from the state_dict alone.

The reference below is written straight from sections 1-2 of OFFICIAL_ARCHITECTURE.md in the
official style (per-sample modulated weights in one grouped convolution, explicit zero
insertion and padding for the FIR filters, explicit softmax of the mask pairs), sharing no code
with ``panini_video.models``. It checks the wiring: latent schedule, fusion placement, mask
layout, CBAM quirk, DRE pooling, encoder order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from panini_video.models import PaniniConfig, PaniniNet

S = dict[str, Tensor]


def conv(sd: S, key: str, x: Tensor, stride: int = 1) -> Tensor:
    w = sd[f"{key}.weight"]
    return F.conv2d(x, w, sd.get(f"{key}.bias"), stride=stride, padding=w.shape[-1] // 2)


def lrelu(x: Tensor, a: float) -> Tensor:
    return torch.where(x >= 0, x, a * x)


def bn(sd: S, key: str, x: Tensor, eps: float = 1e-5) -> Tensor:
    mean, var = sd[f"{key}.running_mean"], sd[f"{key}.running_var"]
    w, b = sd[f"{key}.weight"], sd[f"{key}.bias"]
    return (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps) * w[:, None, None] + b[:, None, None]


def fir(x: Tensor, up: int, p0: int, p1: int) -> Tensor:
    """Zero insertion (sample i -> up*i), pad p0/p1, convolve with outer([1,3,3,1])/64 * up^2."""
    b, c, h, w = x.shape
    if up == 2:
        z = torch.zeros(b, c, 2 * h, 2 * w, dtype=x.dtype)
        z[:, :, ::2, ::2] = x
        x = z
    x = F.pad(x, (p0, p1, p0, p1))
    t = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    k = torch.outer(t, t) / 64 * 4  # sums to 4 for both filters
    return F.conv2d(x, k.expand(c, 1, 4, 4), groups=c)


def modconv(sd: S, key: str, x: Tensor, w: Tensor, demod: bool, up: bool) -> Tensor:
    wo = sd[f"{key}.weight_orig"][0]  # [Cout, Cin, k, k]
    cout, cin, k, _ = wo.shape
    a = sd[f"{key}.style_modulation.linear.weight_orig"] / math.sqrt(w.shape[1])
    s = w @ a.T + sd[f"{key}.style_modulation.bias"]
    wm = (wo / math.sqrt(cin * k * k))[None] * s[:, None, :, None, None]  # [B, Cout, Cin, k, k]
    if demod:
        wm = wm / torch.sqrt(wm.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    b = x.shape[0]
    xg = x.reshape(1, b * cin, *x.shape[2:])
    if up:
        wt = wm.transpose(1, 2).reshape(b * cin, cout, k, k)
        y = F.conv_transpose2d(xg, wt, stride=2, groups=b)
        y = fir(y.reshape(b, cout, *y.shape[2:]), 1, 1, 1)
    else:
        y = F.conv2d(xg, wm.reshape(b * cout, cin, k, k), padding=k // 2, groups=b)
        y = y.reshape(b, cout, *y.shape[2:])
    return y


def style_conv(sd: S, key: str, x: Tensor, w: Tensor, noise: Tensor, up: bool) -> Tensor:
    y = modconv(sd, f"{key}.conv", x, w, True, up)
    y = y + sd[f"{key}.noise_injector.weight"] * noise
    return lrelu(y + sd[f"{key}.activate.bias"][:, None, None], 0.2) * math.sqrt(2)


def to_rgb(sd: S, key: str, x: Tensor, w: Tensor, skip: Tensor | None) -> Tensor:
    y = modconv(sd, f"{key}.conv", x, w, False, False) + sd[f"{key}.bias"]
    return y if skip is None else y + fir(skip, 2, 2, 1)


def rdb(sd: S, key: str, x: Tensor) -> Tensor:
    feats = [x]
    for i in range(1, 5):
        feats.append(lrelu(conv(sd, f"{key}.conv{i}", torch.cat(feats, 1)), 0.2))
    return conv(sd, f"{key}.conv5", torch.cat(feats, 1)) * 0.2 + x


def cbam(sd: S, key: str, x: Tensor) -> Tensor:
    def mlp(v: Tensor) -> Tensor:
        h = F.relu(F.linear(v, sd[f"{key}.ChannelGate.mlp.1.weight"], sd[f"{key}.ChannelGate.mlp.1.bias"]))
        return F.linear(h, sd[f"{key}.ChannelGate.mlp.3.weight"], sd[f"{key}.ChannelGate.mlp.3.bias"])

    a = conv(sd, f"{key}.fea_preprocess", x)
    a = a * torch.sigmoid(mlp(a.mean(dim=(2, 3))) + mlp(a.amax(dim=(2, 3))))[:, :, None, None]
    b = conv(sd, f"{key}.fea_preprocess", a)
    m = torch.cat([b.max(dim=1, keepdim=True).values, b.mean(dim=1, keepdim=True)], 1)
    m = bn(sd, f"{key}.SpatialGate.spatial.bn", conv(sd, f"{key}.SpatialGate.spatial.conv", m))
    return b * torch.sigmoid(m)


def reference_forward(sd: S, cfg: PaniniConfig, lq: Tensor) -> Tensor:
    b = lq.shape[0]
    nf = cfg.num_fusions
    # Degradation code and masks (2.4, 2.5, 3.2).
    if cfg.uses_dre:
        h = F.avg_pool2d(lq, lq.shape[-1] // cfg.dre_size)
        for i in range(6):
            h = conv(sd, f"deg_encoder.E.{3 * i}", h, 2 if i in (2, 4) else 1)
            h = lrelu(bn(sd, f"deg_encoder.E.{3 * i + 1}", h), 0.1)
        code = h.mean(dim=(2, 3))
    else:
        code = sd["choice_vector"].repeat(b, 1)
    z = lrelu(F.linear(code, sd["AFS_maskGen.mapping.0.weight"], sd["AFS_maskGen.mapping.0.bias"]), 0.1)
    z = F.linear(z, sd["AFS_maskGen.mapping.2.weight"], sd["AFS_maskGen.mapping.2.bias"])
    c = cfg.fusion_channels
    masks = []
    for layer in range(nf):
        p0 = z[:, layer * 2 * c : layer * 2 * c + c]
        p1 = z[:, layer * 2 * c + c : (layer + 1) * 2 * c]
        e0, e1 = torch.exp(p0), torch.exp(p1)
        masks.append((e0 / (e0 + e1), e1 / (e0 + e1)))
    # Encoder (2.1-2.3).
    f = conv(sd, "encoder.0.0.conv_first", lq)
    t = f
    for i in range(cfg.num_rrdbs):
        t0 = t
        for j in (1, 2, 3):
            t = rdb(sd, f"encoder.0.0.body.{i}.rdb{j}", t)
        t = t * 0.2 + t0
    h = f + conv(sd, "encoder.0.0.conv_body", t)
    h = cbam(sd, "encoder.0.1", h)
    for i in range(len(cfg.stem_channels)):
        h = lrelu(conv(sd, f"encoder.0.{2 + 2 * i}", h, 1 if i == 0 else 2), 0.2)
    enc = {h.shape[-1]: h}
    for i in range(1, nf):
        h = lrelu(conv(sd, f"encoder.{i}.0", h, 2), 0.2)
        enc[h.shape[-1]] = h
    h = lrelu(conv(sd, f"encoder.{nf}.0", h), 0.2).reshape(b, -1)
    latents = F.linear(h, sd[f"encoder.{nf}.3.weight"], sd[f"encoder.{nf}.3.bias"]).reshape(b, -1, cfg.style_channels)
    # Synthesis with fusion (1.11, 1.12, 2.5, 2.6).
    g = "generator"
    noise = [sd[f"{g}.injected_noise_{i}"] for i in range(cfg.num_noises)]
    out = sd[f"{g}.constant_input.input"].repeat(b, 1, 1, 1)
    out = style_conv(sd, f"{g}.conv1", out, latents[:, 0], noise[0], False)
    skip = to_rgb(sd, f"{g}.to_rgb1", out, latents[:, 1], None)
    for k in range(cfg.log_size - 2):
        res = 4 * 2**k
        if k < nf:
            m1, m2 = masks[k]
            fused = conv(sd, f"fusion_out.{k}", enc[res])
            out = m1[:, :, None, None] * out + m2[:, :, None, None] * fused
        out = style_conv(sd, f"{g}.convs.{2 * k}", out, latents[:, 2 * k + 1], noise[2 * k + 1], True)
        out = style_conv(sd, f"{g}.convs.{2 * k + 1}", out, latents[:, 2 * k + 2], noise[2 * k + 2], False)
        skip = to_rgb(sd, f"{g}.to_rgbs.{k}", out, latents[:, 2 * k + 3], skip)
    return skip


@pytest.mark.parametrize("fixture", ["tiny", "tiny_choice"])
def test_network_equals_the_functional_reference(
    fixture: str, request: pytest.FixtureRequest, random_faces: Callable[..., Tensor]
) -> None:
    model: PaniniNet = request.getfixturevalue(fixture).double()
    sd = {k: v for k, v in model.state_dict().items()}
    lq = random_faces(model.config, 2, seed=5).double()
    with torch.no_grad():
        got = model(lq)
        want = reference_forward(sd, model.config, lq)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
