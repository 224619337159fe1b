"""The restore stage and the graph on a device: failure stops, flat memory, overlap of the streams."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from panini_video.config import RestoreConfig
from panini_video.errors import ProcessingError
from panini_video.models import VARIANTS, PaniniNet
from panini_video.restore.executor import DeviceExecutor
from panini_video.restore.stage import RestoreStage
from panini_video.runtime.graph import Graph
from tests.cuda.conftest import DEVICES
from tests.cuda.frames import ONE_FACE, affines, renumbered, tracked


def restore_config(device: str, **changes: object) -> RestoreConfig:
    base = RestoreConfig(model="tiny", device=device, precision="fp32", batch_size=4, max_wait_ms=60_000.0)
    return dataclasses.replace(base, **changes)


class FailsAt(nn.Module):
    """The given network, whose ``at``-th forward asks its device for 8 TiB: a real allocator failure."""

    def __init__(self, inner: PaniniNet, at: int) -> None:
        super().__init__()
        self.inner, self.config, self.at, self.calls = inner, inner.config, at, 0
        self.failed_at: float | None = None

    def degradation_code(self, lq: Tensor) -> Tensor:
        return self.inner.degradation_code(lq)

    def dafi_masks(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.dafi_masks(code)

    def forward(self, lq: Tensor, code: Tensor | None = None) -> Tensor:
        self.calls += 1
        if self.calls == self.at:
            self.failed_at = time.monotonic()
            torch.empty(2**43, dtype=torch.uint8, device=lq.device)  # raises: no device has 8 TiB
        return self.inner(lq, code)


@pytest.mark.parametrize("device", DEVICES)
def test_the_graph_stops_within_two_seconds_when_the_device_stage_fails(
    testdata: Path, tiny_net: PaniniNet, device: str
) -> None:
    items = renumbered(tracked(testdata, ONE_FACE, 12), 400)
    net = FailsAt(copy.deepcopy(tiny_net), at=3)
    stage = RestoreStage(restore_config(device), model=net)
    seen: list[int] = []
    graph = Graph(items, [stage], lambda item: seen.append(item.index))
    with pytest.raises(ProcessingError) as info:
        graph.run()
    stopped = time.monotonic()
    assert net.failed_at is not None, "the failing forward never ran"
    assert stopped - net.failed_at < 2.0, f"the graph took {stopped - net.failed_at:.2f} s to stop"
    assert isinstance(info.value.__cause__, RuntimeError)  # torch.OutOfMemoryError on CUDA
    assert "restore" in str(info.value)
    assert graph.alive_threads() == []
    assert len(seen) < len(items)


@pytest.mark.cuda
def test_auto_precision_reaches_the_stage_as_bf16(tiny_file: Path) -> None:
    stage = RestoreStage(restore_config("cuda", model=str(tiny_file), precision="auto"))
    assert stage.stats()["precision"] == "bf16" and stage.stats()["device"].startswith("cuda")


@pytest.mark.cuda
def test_gpu_memory_stays_flat_over_a_long_run(testdata: Path, tiny_net: PaniniNet) -> None:
    """1,200 real frames through the stage: what is allocated after the first 200 does not grow."""
    items = renumbered(tracked(testdata, ONE_FACE, 12), 1200)
    stage = RestoreStage(restore_config("cuda", batch_size=8, max_wait_ms=50.0), model=copy.deepcopy(tiny_net))
    allocated: list[int] = []
    out = 0
    stage.start()
    for item in items:
        out += len(stage.process(item))
        allocated.append(torch.cuda.memory_allocated())
    out += len(stage.flush())
    stage.close()
    assert out == len(items)
    early, late = max(allocated[200:400]), max(allocated[1000:])
    assert late <= early + 2**20, f"allocated grew from {early / 2**20:.1f} MiB to {late / 2**20:.1f} MiB"
    pools = [stage.executor._upload_pool._free, stage.executor._download_pool._free]
    assert sum(len(bucket) for pool in pools for bucket in pool.values()) <= 16


@pytest.mark.cuda
def test_uploads_and_downloads_overlap_the_network(testdata: Path) -> None:
    """CUDA events show several frames in flight: a 4K upload and a 4K download each finish while
    the MFR network (32 faces, bf16) runs on the compute stream. Were any step to wait for the
    device, the copy would end before the network began or after it ended."""
    (item,) = tracked(testdata, ONE_FACE, 1)
    torch.manual_seed(0)
    ex = DeviceExecutor(PaniniNet(VARIANTS["mfr"]).eval(), torch.device("cuda"), "bf16")
    mats = affines(item, ex.in_size) * 32
    rng = np.random.default_rng(1)
    big = [rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8) for _ in range(2)]

    def timing() -> torch.cuda.Event:
        return torch.cuda.Event(enable_timing=True)

    for _ in range(2):  # the second round is measured: kernels loaded, allocator warm
        image = ex.upload(item.frame.rgb())
        crops = list(ex.align(image, mats))
        codes = list(ex.codes(crops))
        frame_a = ex.compose(ex.upload(big[0]), [], [], [], [], [])
        torch.cuda.synchronize()
        t0, c0, c1, u1, d1 = timing(), timing(), timing(), timing(), timing()
        t0.record(ex.compute)
        down = ex.download(frame_a)  # waits, on the d2h stream, for frame_a's compose only
        d1.record(ex.d2h)
        c0.record(ex.compute)
        ex.restore(crops, codes)
        c1.record(ex.compute)
        ex.upload(big[1])  # the next frame goes up while the network runs
        u1.record(ex.h2d)
        torch.cuda.synchronize()
        down.result()
    start, end = t0.elapsed_time(c0), t0.elapsed_time(c1)
    up, dn = t0.elapsed_time(u1), t0.elapsed_time(d1)
    assert end - start > 2.0, f"the network ran {end - start:.2f} ms: too short to show overlap"
    assert start < up < end, f"upload ended at {up:.2f} ms, network ran {start:.2f}-{end:.2f} ms"
    assert start < dn < end, f"download ended at {dn:.2f} ms, network ran {start:.2f}-{end:.2f} ms"
