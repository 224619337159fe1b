"""The device executor on CUDA against the CPU: upload, align, codes, restore, compose, download.

The reference is always the CPU executor in fp32 on the same real frames and the same weights.
Where the CPU can run the same path meaningfully (bf16 against fp32, the NaN guard, buffer reuse)
the test also runs there, so CI keeps those paths working without a GPU.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from panini_video.faces.blend import paste_region
from panini_video.io.picture import Picture
from panini_video.models import VARIANTS, PaniniNet
from panini_video.records import FrameItem
from panini_video.restore.executor import DeviceExecutor, resolve_precision
from tests.cuda.conftest import DEVICES
from tests.cuda.frames import BF16_MAX, BF16_MEAN, CROWD, FP32_REL, ONE_FACE, affines, relative_error, tracked


def run_frame(ex: DeviceExecutor, item: FrameItem) -> dict[str, Any]:
    """One frame through every step of the executor, as the restore stage chains them."""
    image = ex.upload(item.frame.rgb())
    mats = affines(item, ex.in_size)
    crops = ex.align(image, mats)
    codes = ex.codes(list(crops))
    out, finite = ex.restore(list(crops), list(codes))
    composed = ex.compose(image, list(item.faces), mats, list(crops), list(out), list(finite))
    down = ex.download(composed, finite)
    frame = down.result()
    return {"crops": crops.cpu(), "codes": codes.cpu(), "out": out.cpu(), "frame": frame, "flags": down.flags()}


def executor(net: nn.Module, device: str, precision: str) -> DeviceExecutor:
    return DeviceExecutor(copy.deepcopy(net), torch.device(device), precision)


def check_close(got: dict[str, Any], ref: dict[str, Any], precision: str) -> None:
    assert got["flags"] == ref["flags"] == [True] * len(ref["flags"])
    assert relative_error(got["crops"], ref["crops"]) < FP32_REL  # the warp runs in fp32 whatever the precision
    assert got["frame"].shape == ref["frame"].shape and got["frame"].dtype == np.uint8
    frame_diff = np.abs(got["frame"].astype(np.int16) - ref["frame"].astype(np.int16))
    if precision == "fp32":
        rel = relative_error(got["out"], ref["out"])
        assert rel < FP32_REL, f"fp32 output differs from the CPU's by {rel:.2e} relative (TF32 convolutions?)"
        assert relative_error(got["codes"], ref["codes"]) < FP32_REL
        assert frame_diff.max() <= 1  # rounding of the paste, at most one grey level
    else:
        diff = (got["out"] - ref["out"]).abs()
        assert float(diff.max()) <= BF16_MAX and float(diff.mean()) <= BF16_MEAN, (
            f"{precision}: max |d| {float(diff.max()):.3f}, mean {float(diff.mean()):.4f}"
        )
        assert frame_diff.max() <= 255 * BF16_MAX / 2 + 1 and frame_diff.mean() <= 255 * BF16_MEAN / 2


CASES = [
    pytest.param("cuda", "fp32", marks=pytest.mark.cuda, id="cuda-fp32"),
    pytest.param("cuda", "bf16", marks=pytest.mark.cuda, id="cuda-bf16"),
    pytest.param("cpu", "bf16", id="cpu-bf16"),
]


@pytest.mark.parametrize(("device", "precision"), CASES)
def test_every_step_matches_the_cpu_on_a_crowd_frame(
    testdata: Path, tiny_net: PaniniNet, device: str, precision: str
) -> None:
    (item,) = tracked(testdata, CROWD, 1)
    assert len(item.faces) >= 3
    ref = run_frame(executor(tiny_net, "cpu", "fp32"), item)
    got = run_frame(executor(tiny_net, device, precision), item)
    check_close(got, ref, precision)
    assert np.abs(ref["frame"].astype(int) - item.frame.rgb()).mean() > 0.1  # the faces were pasted


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_mfr_on_cuda_matches_the_cpu(testdata: Path, precision: str) -> None:
    """The full-size MFR network (random weights): the kernels the real model runs, at 512 in, 1024 out."""
    (item,) = tracked(testdata, ONE_FACE, 1)
    torch.manual_seed(3)
    mfr = PaniniNet(VARIANTS["mfr"]).eval()
    ref = run_frame(executor(mfr, "cpu", "fp32"), item)
    got = run_frame(executor(mfr, "cuda", precision), item)
    check_close(got, ref, precision)


class NanFace(nn.Module):
    """The given network, except that face ``face`` of every batch comes out with one NaN pixel."""

    def __init__(self, inner: PaniniNet, face: int) -> None:
        super().__init__()
        self.inner, self.config, self.face = inner, inner.config, face

    def degradation_code(self, lq: Tensor) -> Tensor:
        return self.inner.degradation_code(lq)

    def dafi_masks(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.dafi_masks(code)

    def forward(self, lq: Tensor, code: Tensor | None = None) -> Tensor:
        out = self.inner(lq, code).clone()
        out[self.face, 2, 9, 11] = float("nan")
        return out


@pytest.mark.parametrize("device", DEVICES)
def test_a_nan_face_is_flagged_and_keeps_its_pixels(testdata: Path, tiny_net: PaniniNet, device: str) -> None:
    (item,) = tracked(testdata, CROWD, 1)
    bad = 1
    ex = DeviceExecutor(NanFace(copy.deepcopy(tiny_net), bad), torch.device(device), "fp32")
    got = run_frame(ex, item)
    want = [i != bad for i in range(len(item.faces))]
    assert got["flags"] == want  # the flags came back with the frame
    assert torch.isfinite(got["out"]).all() and not got["out"][bad].any()  # zeroed, cannot poison a paste
    h, w, _ = item.frame.rgb().shape
    regions = [paste_region(f, (w, h)) for f in item.faces]
    x0, y0, x1, y1 = regions[bad]
    only_bad = np.zeros((h, w), bool)
    only_bad[y0:y1, x0:x1] = True
    for i, (a0, b0, a1, b1) in enumerate(regions):
        if i != bad:
            only_bad[b0:b1, a0:a1] = False
    assert only_bad.sum() > 1000  # some of the face is nobody else's paste region
    np.testing.assert_array_equal(got["frame"][only_bad], item.frame.rgb()[only_bad])
    for i, (a0, b0, a1, b1) in enumerate(regions):
        if i != bad:
            region = np.s_[b0:b1, a0:a1]
            assert np.abs(got["frame"][region].astype(int) - item.frame.rgb()[region]).mean() > 0.5


SIZES = [(360, 640), (1080, 1920), (512, 388), (720, 1280), (2160, 3840), (1, 2)]


@pytest.mark.parametrize("device", DEVICES)
def test_pinned_buffers_are_reused_without_corruption(device: str) -> None:
    """100 frames of six sizes, several downloads in flight: every frame comes back as it went up.

    On CUDA the host array is overwritten right after its upload: the pinned copy is the
    executor's, so what went up is what was given at the call.
    """
    tiny = PaniniNet(VARIANTS["tiny"]).eval()
    ex = DeviceExecutor(tiny, torch.device(device), "fp32")
    rng = np.random.default_rng(5)
    pending: list[tuple[int, np.ndarray, Any]] = []
    checked = 0
    for i in range(100):
        h, w = SIZES[i % len(SIZES)]
        original = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        host = original.copy()
        image = ex.upload(host)
        if device == "cuda":
            host[:] = 0
        pending.append((i, original, ex.download(ex.compose(image, [], [], [], [], []))))
        while len(pending) > 6 or (i == 99 and pending):
            j, want, down = pending.pop(0)
            got = down.result()
            assert got.shape == want.shape, f"frame {j}"
            assert np.array_equal(got, want), f"frame {j} ({want.shape}) came back changed"
            checked += 1
    assert checked == 100
    if device == "cuda":  # the pools keep a few buffers per size, not one per frame
        pools = [ex._upload_pool._free, ex._download_pool._free]
        assert all(len(bucket) <= 8 for pool in pools for bucket in pool.values())


@pytest.mark.cuda
def test_auto_precision_is_bf16_on_this_gpu(tiny_net: PaniniNet) -> None:
    cuda = torch.device("cuda")
    assert torch.cuda.is_bf16_supported()  # Ampere and later; the H200 is Hopper
    assert resolve_precision("auto", cuda) == "bf16"
    assert executor(tiny_net, "cuda", "auto").precision == "bf16"


def run_picture(ex: DeviceExecutor, item: FrameItem) -> dict[str, Any]:
    """One frame through the picture path (planes up, regions converted, planes down)."""
    pic = ex.upload_picture(item.frame.image)
    mats = affines(item, ex.in_size)
    crops = ex.align_picture(pic, mats)
    codes = ex.codes(list(crops))
    out, finite = ex.restore(list(crops), list(codes))
    regions = ex.compose_picture(pic, list(item.faces), mats, list(crops), list(out), list(finite))
    down = ex.download_picture(pic, item.frame.image, torch.stack(list(finite)))
    result = down.result()
    return {"planes": [p.copy() for p in result.planes], "regions": regions, "flags": down.flags()}


@pytest.mark.parametrize("pix_fmt", [None, "yuv422p10le"], ids=["as-decoded", "yuv422p10le"])
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.cuda)])
def test_the_picture_path_matches_the_cpu(
    testdata: Path, tiny_net: PaniniNet, device: str, pix_fmt: str | None
) -> None:
    """Planes pasted on the GPU equal the CPU's within one code; outside the regions, exactly the input.

    The 10-bit case takes uint16 planes through the device (upload, paste, download).
    """
    (item,) = tracked(testdata, CROWD, 1)
    if pix_fmt is not None:
        pic = item.frame.image
        deep = Picture.of(pic.frame.reformat(format=pix_fmt), pic.colour)
        item = dataclasses.replace(item, frame=dataclasses.replace(item.frame, image=deep))
    ref = run_picture(executor(tiny_net, "cpu", "fp32"), item)
    got = run_picture(executor(tiny_net, device, "fp32"), item)
    assert got["regions"] == ref["regions"] and got["flags"] == ref["flags"]
    for a, b, src in zip(got["planes"], ref["planes"], item.frame.image.planes, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert (a != src).any() or not ref["regions"]
