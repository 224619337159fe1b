"""RestoreStage on real frames with the tiny Panini-Net (random weights) on the CPU."""

from __future__ import annotations

import dataclasses
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from panini_video import cache
from panini_video.config import RestoreConfig
from panini_video.download import DRIVE_URL_ENV
from panini_video.errors import WeightsNotFoundError
from panini_video.faces.blend import paste_region
from panini_video.models import PaniniNet, fetch
from panini_video.records import FrameItem
from panini_video.restore.executor import upscale_frame
from panini_video.restore.stage import RestoreStage
from tests.fakehttp import FakeServer, Route, serve
from tests.official_checkpoint import generator_tensors, mmcv_checkpoint
from tests.restore.helpers import run_stage


def config(**changes: object) -> RestoreConfig:
    base = RestoreConfig(model="tiny", device="cpu", precision="fp32", batch_size=8, max_wait_ms=60_000.0)
    return dataclasses.replace(base, **changes)


def face_changed(before: np.ndarray, after: np.ndarray, item: FrameItem) -> bool:
    x0, y0, x1, y1 = (int(v) for v in item.faces[0].box)
    return bool(np.abs(before[y0:y1, x0:x1].astype(int) - after[y0:y1, x0:x1]).mean() > 1.0)


def test_result_does_not_depend_on_batching(clip_items: list[FrameItem], tiny_model_file: Path) -> None:
    one = RestoreStage(config(model=str(tiny_model_file), batch_size=1))
    eight = RestoreStage(config(model=str(tiny_model_file), batch_size=8))
    items = clip_items[:8]
    a, b = run_stage(one, items), run_stage(eight, items)
    assert one.stats()["batch_size_mean"] == 1.0
    assert eight.stats()["batch_size_mean"] == 8.0  # one batch across all 8 frames
    assert [x.index for x in a] == [x.index for x in b] == [x.index for x in items]
    for x, y, src in zip(a, b, items, strict=True):
        assert face_changed(src.frame.rgb(), x.frame.rgb(), src)  # the face was restored
        diff = max(
            np.abs(p.astype(int) - q.astype(int)).max()
            for p, q in zip(x.frame.image.planes, y.frame.image.planes, strict=True)
        )
        assert diff <= 1, f"frame {x.index}: batch 1 and batch 8 differ by {diff} grey levels"


def test_ema_zero_gives_one_code_per_track(clip_items: list[FrameItem], tiny_model: PaniniNet) -> None:
    stage = RestoreStage(config(dre_mode="track", dre_ema=0.0, dre_warmup=5), model=tiny_model)
    run_stage(stage, clip_items)
    (track,) = stage.stats()["tracks"]
    assert track["length"] == len(clip_items) and track["warmup_frames"] == 5
    assert track["code_step_max"] == 0.0 and track["code_drift"] == 0.0 and track["mask_step_mean"] == 0.0

    per_frame = RestoreStage(config(dre_mode="frame"), model=tiny_model)
    run_stage(per_frame, clip_items)
    (track,) = per_frame.stats()["tracks"]
    assert track["length"] == len(clip_items)
    assert track["code_step_max"] > 0.0 and track["mask_step_mean"] > 0.0


class NanOnce(nn.Module):
    """The tiny model, except that one face of its ``nth`` batch comes out as NaN."""

    def __init__(self, inner: PaniniNet, nth: int, face: int) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.nth, self.face, self.calls = nth, face, 0

    def degradation_code(self, lq: Tensor) -> Tensor:
        return self.inner.degradation_code(lq)

    def dafi_masks(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.dafi_masks(code)

    def forward(self, lq: Tensor, code: Tensor | None = None) -> Tensor:
        out = self.inner(lq, code)
        if self.calls == self.nth:
            out[self.face, 1, 5, 7] = float("nan")
        self.calls += 1
        return out


def test_failed_face_keeps_its_original_pixels(clip_items: list[FrameItem], tiny_model: PaniniNet) -> None:
    stage = RestoreStage(config(batch_size=4), model=NanOnce(tiny_model, nth=1, face=2))
    out = run_stage(stage, clip_items)
    assert [x.index for x in out] == [x.index for x in clip_items]  # no frame dropped
    failed = [x for x in out if any(j.failed for j in x.jobs)]
    assert len(failed) == 1 and stage.stats()["faces_failed"] == 1
    bad = failed[0]
    src = clip_items[bad.index]
    for p, q in zip(bad.frame.image.planes, src.frame.image.planes, strict=True):
        np.testing.assert_array_equal(p, q)
    for x in out:
        if x is not bad:
            assert face_changed(clip_items[x.index].frame.rgb(), x.frame.rgb(), x)


def test_scene_cut_restarts_the_track_code(clip_items: list[FrameItem], tiny_model: PaniniNet) -> None:
    items = [dataclasses.replace(it, scene_cut=it.index == 6) for it in clip_items]
    stage = RestoreStage(config(dre_ema=0.0, dre_warmup=3), model=tiny_model)
    run_stage(stage, items)
    runs = stage.stats()["tracks"]
    assert [(r["run"], r["first_frame"], r["last_frame"], r["warmup_frames"]) for r in runs] == [
        (0, 0, 5, 3),
        (1, 6, len(items) - 1, 3),
    ]
    assert all(r["code_step_max"] == 0.0 for r in runs)


def test_frames_without_faces_keep_their_place(clip_items: list[FrameItem], tiny_model: PaniniNet) -> None:
    items = [dataclasses.replace(it, faces=()) if it.index in (0, 3, 4, 9) else it for it in clip_items]
    out = run_stage(RestoreStage(config(batch_size=4), model=tiny_model), items)
    assert [x.index for x in out] == [x.index for x in items]
    assert [x.frame.pts for x in out] == [x.frame.pts for x in items]
    for x, src in zip(out, items, strict=True):
        if not src.faces:
            assert x.frame.image is src.frame.image and x.jobs == ()
        else:
            assert len(x.jobs) == 1 and not x.jobs[0].failed


def test_upscale_enlarges_the_frame_and_its_faces(clip_items: list[FrameItem], tiny_model: PaniniNet) -> None:
    items = clip_items[:4]
    out = run_stage(RestoreStage(config(upscale=2, batch_size=4), model=tiny_model), items)
    for x, src in zip(out, items, strict=True):
        h, w, _ = src.frame.rgb().shape
        assert x.frame.image.shape == (2 * h, 2 * w, 3)
        assert x.frame.pts == src.frame.pts
        np.testing.assert_allclose(x.faces[0].box, src.faces[0].box * 2 + 0.5, rtol=1e-6)
        # Outside the face's paste region the frame is the bicubic enlargement of the input.
        background = upscale_frame(torch.from_numpy(src.frame.rgb()).permute(2, 0, 1), 2)
        expected = background.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        x0, y0, x1, y1 = paste_region(src.faces[0], (2 * w, 2 * h), scale=2)
        mask = np.ones((2 * h, 2 * w), bool)
        mask[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(x.frame.image[mask], expected[mask])
        assert face_changed(expected, x.frame.image, x)


def test_missing_weights_say_how_to_get_them() -> None:
    with pytest.raises(WeightsNotFoundError, match="`panini-video weights init tiny`"):
        RestoreStage(RestoreConfig(model="tiny", device="cpu"))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """A local stand-in for Google Drive."""
    with serve() as s:
        monkeypatch.setenv(DRIVE_URL_ENV, s.url)
        yield s


def test_first_restore_with_an_empty_cache_downloads_then_loads(server: FakeServer) -> None:
    buffer = io.BytesIO()
    torch.save(mmcv_checkpoint(generator_tensors("mfr", real=False)), buffer)
    body = buffer.getvalue()
    drive_id = fetch.MODELS["mfr"].drive_id
    served = Route(body)  # Drive answers a small file directly, without a confirm page
    server.routes["/uc"] = Route(handler=lambda r: served if r.query.get("id") == [drive_id] else Route(status=404))
    seen: list[tuple[int, int | None]] = []
    stage = RestoreStage(
        RestoreConfig(model="mfr", device="cpu"), fetch_progress=lambda done, total: seen.append((done, total))
    )
    assert (stage.executor.in_size, stage.executor.out_size) == (512, 1024)
    assert seen[-1] == (len(body), len(body)) and cache.model_path("mfr").is_file()


def test_offline_first_restore_fails_at_once_with_the_ways_to_get_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv(DRIVE_URL_ENV, f"http://127.0.0.1:{sock.getsockname()[1]}")
    sock.close()
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError) as info:
        RestoreStage(RestoreConfig(model="mfr", device="cpu"))
    assert time.monotonic() - start < 5
    for said in ("download failed", "`panini-video weights fetch mfr`", "`panini-video weights import FILE`"):
        assert said in str(info.value)
    assert "--annotate" in str(info.value)


def test_no_download_never_asks_the_server(server: FakeServer) -> None:
    with pytest.raises(WeightsNotFoundError, match="downloads are off"):
        RestoreStage(RestoreConfig(model="mfr", device="cpu", download=False))
    assert server.requests == []


def test_paste_regions_and_track_log_are_kept_unless_the_run_has_no_end(
    clip_items: list[FrameItem], tiny_model: PaniniNet
) -> None:
    kept = RestoreStage(config(batch_size=4), model=tiny_model)
    out = run_stage(kept, clip_items)
    rows = kept.stats()["paste_regions"]["rows"]
    assert [r[0] for r in rows] == [x.index for x in out for j in x.jobs if not j.failed]  # one per pasted face
    for frame, x0, y0, x1, y1 in rows:  # each holds its face's box, on the 4:2:0 chroma grid
        box = out[frame].faces[0].box
        assert x0 <= box[0] and y0 <= box[1] and x1 >= box[2] and y1 >= box[3]
        assert x0 % 2 == y0 % 2 == 0
    (track,) = kept.artifacts()["tracks"]
    assert (track["first_frame"], track["last_frame"], track["faces"]) == (0, len(clip_items) - 1, len(clip_items))
    assert track["best"]["before"].ndim == 3 and track["best"]["after"].shape == track["best"]["before"].shape
    live = RestoreStage(config(batch_size=4), model=tiny_model, provenance=False)
    run_stage(live, clip_items)
    assert "paste_regions" not in live.stats() and live.artifacts()["tracks"] == []
