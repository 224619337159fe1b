"""``panini-video bench stability``: motion-compensated change of the face boxes, input vs restorer."""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor

from panini_video.bench import stability
from panini_video.cli import main
from panini_video.config import RunConfig
from panini_video.records import Face, Frame, FrameItem

CLIP = "videos/lowq_real_388x512_noaudio.mp4"  # 388x512, one face, no cuts
WEIGHTS = "weights/retinaface_mobilenet0.25_Final.pth"


class BrightnessNet(torch.nn.Module):
    """A stand-in restorer: gives each face its input crop back, plus a random brightness per call.

    amplitude 0 is an identity restorer (only the paste's resampling changes the face); above 0
    every face of every frame gets its own offset in [-amplitude, amplitude]: flicker by design.
    """

    def __init__(self, amplitude: float, size: int = 256, seed: int = 0) -> None:
        super().__init__()
        self.config = SimpleNamespace(in_size=size, out_size=size, uses_dre=True)
        self.amplitude = amplitude
        self.generator = torch.Generator().manual_seed(seed)

    def degradation_code(self, lq: Tensor) -> Tensor:
        return lq.mean(dim=(2, 3))

    def dafi_masks(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return code[:, :, None, None], code[:, :, None, None]

    def forward(self, lq: Tensor, code: Tensor | None = None) -> Tensor:
        offset = (torch.rand(lq.shape[0], 1, 1, 1, generator=self.generator) * 2 - 1) * self.amplitude
        return lq + offset.to(lq.device)


def _config(testdata: Path, **restore: Any) -> RunConfig:
    config = RunConfig().with_overrides({"detect": {"weights": str(testdata / WEIGHTS)}})
    return dataclasses.replace(config, restore=dataclasses.replace(config.restore, **restore))


# The measurement on synthetic motion --------------------------------------------------------------


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 3.0)


def _moving_items(shift: tuple[float, float], frames: int = 4, cut_at: int | None = None) -> list[FrameItem]:
    """A texture moving by ``shift`` pixels per frame, with one face box whose track stays 0."""
    base = _texture(240, 320)
    items = []
    for t in range(frames):
        m = np.array([[1, 0, shift[0] * t], [0, 1, shift[1] * t]], dtype=np.float32)
        image = cv2.warpAffine(base, m, (320, 240), borderMode=cv2.BORDER_REFLECT)
        image = np.clip(image * 2.5 - 190, 0, 255).astype(np.uint8)  # stretch the blurred noise's contrast
        box = np.array([100, 60, 220, 200], dtype=np.float32)
        face = Face(box, np.zeros((5, 2), np.float32), 0.99, track=0)
        items.append(FrameItem(Frame(t, t, Fraction(1, 25), image), faces=(face,), scene_cut=t == cut_at))
    return items


def test_the_flow_compensates_the_input_motion() -> None:
    items = _moving_items((3.0, 2.0))
    images = [it.frame.rgb() for it in items]
    regions = stability.face_regions(items)
    assert [r.t for r in regions] == [1, 2, 3]
    compensated = stability.flicker(images, regions)
    plain = np.mean(
        [np.abs(images[t].astype(float) - images[t - 1].astype(float))[60:200, 100:220].mean() for t in (1, 2, 3)]
    )
    assert plain > 5  # the motion changes the box a lot ...
    assert compensated["mean"] < plain / 10  # ... and the flow from t to t-1 undoes it
    assert compensated["trusted"] > 0.9
    # Sampling frame t-1 the other way (x - flow) doubles the motion instead of undoing it.
    assert stability.flicker(images, [_reversed(r) for r in regions])["mean"] > plain


def _reversed(r: stability.Region) -> stability.Region:
    ys, xs = np.mgrid[r.box[1] : r.box[3], r.box[0] : r.box[2]].astype(np.float32)
    return dataclasses.replace(r, map_x=2 * xs - r.map_x, map_y=2 * ys - r.map_y)


def test_no_comparison_across_a_cut_a_new_track_or_outside_the_frame() -> None:
    items = _moving_items((1.0, 0.0), frames=5, cut_at=2)
    new_track = dataclasses.replace(items[4].faces[0], track=7)
    edge = Face(np.array([-30, -10, 60, 80], dtype=np.float32), np.zeros((5, 2), np.float32), 0.9, track=3)
    items[3] = dataclasses.replace(items[3], faces=(*items[3].faces, edge))
    items[4] = dataclasses.replace(items[4], faces=(items[4].faces[0], new_track, edge))
    regions = stability.face_regions(items)
    # Frame 2 follows a cut; frame 4's track 7 was not in frame 3; the edge face first shows in 3.
    assert sorted((r.t, r.box) for r in regions) == [
        (1, (100, 60, 220, 200)),
        (3, (100, 60, 220, 200)),
        (4, (0, 0, 60, 80)),
        (4, (100, 60, 220, 200)),
    ]


# The bench on a real clip -------------------------------------------------------------------------


def test_bench_stability_rows_on_a_real_clip(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "stability.json"
    argv = ["bench", "stability", str(testdata / CLIP), "--frames", "8", "--model", "tiny", "--dre-ema", "0"]
    argv += ["--detector-weights", str(testdata / WEIGHTS), "--json", str(report)]
    assert main(argv) == 0
    result = json.loads(report.read_text())
    assert result["frames"] == 8 and result["pairs_compared"] == 7  # one face in every frame, no cut
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == ["input", "dre=track", "dre=frame"]
    for name, r in rows.items():
        assert math.isfinite(r["mean"]) and r["mean"] > 0, name
        assert r["faces"] == 7 and r["p95"] >= r["mean"] * 0.5, name
    assert rows["input"]["vs_input"] == 1.0
    # --dre-ema 0: one code per track, frozen after the warmup; per-frame codes move.
    assert rows["dre=track"]["code_step_mean"] == 0.0
    assert rows["dre=frame"]["code_step_mean"] > 0.0
    assert rows["dre=track"]["faces_restored"] == rows["dre=frame"]["faces_restored"] == 8
    table = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in table and "dre=track" in table


@pytest.fixture(scope="module")
def clip_faces(testdata: Path) -> tuple[list[FrameItem], list[stability.Region]]:
    items = stability.detect_items(testdata / CLIP, _config(testdata), 8)
    return items, stability.face_regions(items)


def test_a_flickering_restorer_scores_above_the_input(
    testdata: Path, clip_faces: tuple[list[FrameItem], list[stability.Region]]
) -> None:
    items, regions = clip_faces
    config = _config(testdata, device="cpu")
    reference = stability.flicker([it.frame.rgb() for it in items], regions)["mean"]
    steady, _ = stability.restore_frames(items, config, BrightnessNet(0.0))
    flickering, _ = stability.restore_frames(items, config, BrightnessNet(0.15))
    steady_mean = stability.flicker(steady, regions)["mean"]
    flicker_mean = stability.flicker(flickering, regions)["mean"]
    # An identity restorer changes the faces as the input does (the paste resamples them a little);
    # a random brightness of up to +-19 grey levels per frame shows far above the input's figure.
    assert 0.6 * reference < steady_mean < 1.4 * reference
    assert flicker_mean > 2 * reference
