"""The RetinaFace network: MobileNet-0.25 or ResNet-50 body, FPN, SSH context modules, heads.

Layer names and shapes follow the published checkpoints (biubug6/Pytorch_Retinaface, the files
facexlib downloads), so their state_dicts load unchanged: ``body.stage1...`` for MobileNet-0.25,
torchvision's ResNet-50 names (``body.conv1``, ``body.layer1.0.conv1``...) for ResNet-50, then
``fpn.*``, ``ssh1..3.*``, ``ClassHead/BboxHead/LandmarkHead.{0,1,2}.conv1x1``.
Architecture: Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild" (2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Backbone = Literal["mobilenet", "resnet50"]

ANCHORS_PER_CELL = 2  # two square anchors per cell and level (sizes in priors.py)


@dataclass(frozen=True)
class NetSpec:
    """The facts of one backbone that the rest of the network depends on."""

    in_channels: tuple[int, int, int]  # channels of the three feature maps fed to the FPN
    out_channels: int  # FPN/SSH width
    leaky: float  # slope of the FPN/SSH activations (0.1 for the narrow net, plain ReLU else)


SPECS: dict[str, NetSpec] = {
    "mobilenet": NetSpec(in_channels=(64, 128, 256), out_channels=64, leaky=0.1),
    "resnet50": NetSpec(in_channels=(512, 1024, 2048), out_channels=256, leaky=0.0),
}


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, leaky: float | None = 0.0) -> nn.Sequential:
    """Conv (no bias) + BatchNorm, then LeakyReLU unless ``leaky`` is None (indices 0, 1, 2)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky, inplace=True))
    return nn.Sequential(*layers)


def conv_dw(cin: int, cout: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each with BatchNorm and LeakyReLU (indices 0..5)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNet-v1 at width 0.25 (Howard et al. 2017), cut after its stride-32 stage."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(  # stride 8, 64 channels
            conv_bn(3, 8, stride=2, leaky=0.1),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])  # stride 16
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))  # stride 32

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        return [c3, c4, self.stage3(c4)]


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision's layer names."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 (He et al. 2016) without pooling and classifier; returns strides 8, 16, 32."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 64, blocks=3, stride=1)
        self.layer2 = self._layer(256, 128, blocks=4, stride=2)
        self.layer3 = self._layer(512, 256, blocks=6, stride=2)
        self.layer4 = self._layer(1024, 512, blocks=3, stride=2)

    @staticmethod
    def _layer(cin: int, width: int, blocks: int, stride: int) -> nn.Sequential:
        first = Bottleneck(cin, width, stride)
        rest = [Bottleneck(width * Bottleneck.expansion, width) for _ in range(blocks - 1)]
        return nn.Sequential(first, *rest)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c3 = self.layer2(self.layer1(x))
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


class FPN(nn.Module):
    """Feature pyramid: 1x1 lateral convs, top-down nearest upsampling, 3x3 merges."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int, leaky: float) -> None:
        super().__init__()
        self.output1 = conv_bn(in_channels[0], out_channels, kernel=1, leaky=leaky)
        self.output2 = conv_bn(in_channels[1], out_channels, kernel=1, leaky=leaky)
        self.output3 = conv_bn(in_channels[2], out_channels, kernel=1, leaky=leaky)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class SSH(nn.Module):
    """Context module (Najibi et al. 2017): 3x3, 5x5 and 7x7 receptive fields, concatenated."""

    def __init__(self, channels: int, leaky: float) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.conv3X3 = conv_bn(channels, half, leaky=None)
        self.conv5X5_1 = conv_bn(channels, quarter, leaky=leaky)
        self.conv5X5_2 = conv_bn(quarter, quarter, leaky=None)
        self.conv7X7_2 = conv_bn(quarter, quarter, leaky=leaky)
        self.conv7x7_3 = conv_bn(quarter, quarter, leaky=None)  # lower-case x: the checkpoints' name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.conv5X5_1(x)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(b5), self.conv7x7_3(self.conv7X7_2(b5))], dim=1)
        return F.relu(out)


class Head(nn.Module):
    """A 1x1 conv predicting ``values`` numbers per anchor, flattened to (B, H*W*anchors, values)."""

    def __init__(self, channels: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(channels, ANCHORS_PER_CELL * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # anchors vary fastest, then x, then y
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFaceNet(nn.Module):
    """The network alone: BGR mean-subtracted input in, per-prior raw predictions out.

    ``forward`` returns box offsets (B, P, 4), face probabilities (B, P) and landmark offsets
    (B, P, 10); P is the number of priors of the input size (see ``priors.prior_boxes``).
    """

    def __init__(self, backbone: Backbone = "mobilenet") -> None:
        super().__init__()
        if backbone not in SPECS:
            raise ValueError(f"unknown RetinaFace backbone {backbone!r}; known: {', '.join(SPECS)}")
        self.backbone = backbone
        spec = SPECS[backbone]
        self.body: nn.Module = MobileNetV1() if backbone == "mobilenet" else ResNet50()
        width = spec.out_channels
        self.fpn = FPN(spec.in_channels, width, spec.leaky)
        self.ssh1 = SSH(width, spec.leaky)
        self.ssh2 = SSH(width, spec.leaky)
        self.ssh3 = SSH(width, spec.leaky)
        self.ClassHead = nn.ModuleList(Head(width, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(Head(width, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(Head(width, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.fpn(self.body(x))
        feats = [self.ssh1(pyramid[0]), self.ssh2(pyramid[1]), self.ssh3(pyramid[2])]
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, feats, strict=True)], dim=1)
        logits = torch.cat([head(f) for head, f in zip(self.ClassHead, feats, strict=True)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, feats, strict=True)], dim=1)
        return loc, logits.softmax(dim=-1)[..., 1], landmarks
