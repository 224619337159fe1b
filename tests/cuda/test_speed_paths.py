"""The executor's speed options (torch.compile, channels-last) compute the eager network's function.

torch.compile of the tiny network takes about 45 s on a loaded 2-core CPU (inductor builds C++
kernels), so the compiled case is marked slow; it still runs in CI.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from panini_video.models import PaniniNet
from panini_video.restore.executor import DeviceExecutor
from tests.cuda.conftest import DEVICES
from tests.cuda.frames import CROWD, FP32_REL, affines, relative_error, tracked


def restored(ex: DeviceExecutor, testdata: Path) -> torch.Tensor:
    (item,) = tracked(testdata, CROWD, 1)
    image = ex.upload(item.frame.rgb())
    crops = list(ex.align(image, affines(item, ex.in_size)))
    out, finite = ex.restore(crops, list(ex.codes(crops)))
    assert bool(finite.all())
    return out.cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_gives_the_eager_result(testdata: Path, tiny_net: PaniniNet, device: str) -> None:
    dev = torch.device(device)
    eager = restored(DeviceExecutor(copy.deepcopy(tiny_net), dev, "fp32"), testdata)
    nhwc = DeviceExecutor(copy.deepcopy(tiny_net), dev, "fp32", channels_last=True)
    conv = next(m for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert relative_error(restored(nhwc, testdata), eager) < FP32_REL


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_the_compiled_network_gives_the_eager_result(testdata: Path, tiny_net: PaniniNet, device: str) -> None:
    dev = torch.device(device)
    eager = restored(DeviceExecutor(copy.deepcopy(tiny_net), dev, "fp32"), testdata)
    compiled = DeviceExecutor(copy.deepcopy(tiny_net), dev, "fp32", compiled=True)
    assert compiled._forward is not compiled.model  # the forward goes through torch.compile
    graphs = counters["stats"]["unique_graphs"]
    first = restored(compiled, testdata)
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo made a graph: not silently eager
    assert relative_error(first, eager) < FP32_REL
    assert relative_error(restored(compiled, testdata), eager) < FP32_REL  # the compiled graph, reused
