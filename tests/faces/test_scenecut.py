"""Scene cuts: exactly the hard cuts of the Hamilton clip, none in a talking head."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from panini_video.config import TrackConfig
from panini_video.faces.scenecut import SceneCutDetector


def cuts_of(path: Path, threshold: float) -> list[int]:
    detector = SceneCutDetector(threshold)
    with av.open(str(path)) as container:
        return [i for i, f in enumerate(container.decode(video=0)) if detector.update(f.to_ndarray(format="rgb24"))]


def test_hamilton_cuts_exactly(testdata: Path) -> None:
    # MANIFEST: hard cuts at decoded frames 20, 82 and 211, nothing else.
    assert cuts_of(testdata / "videos" / "hamilton_short.mp4", TrackConfig().scene_cut_threshold) == [20, 82, 211]


def test_no_cuts_in_a_talking_head(testdata: Path) -> None:
    assert cuts_of(testdata / "videos" / "talking_vfr_700.mp4", TrackConfig().scene_cut_threshold) == []


def test_synthetic_cut_and_reset() -> None:
    rng = np.random.default_rng(0)
    warm = np.zeros((90, 160, 3), np.uint8)
    warm[..., 0], warm[..., 1] = 200, 120
    cool = np.zeros_like(warm)
    cool[..., 2], cool[..., 1] = 200, 90
    detector = SceneCutDetector(0.5)
    seen = []
    for i in range(12):
        base = warm if i < 6 else cool
        noise = rng.integers(0, 6, base.shape, dtype=np.uint8)
        seen.append(detector.update(base + noise))
    assert seen == [False] * 6 + [True] + [False] * 5
    detector.reset()
    assert detector.update(warm) is False  # the first frame after a reset is never a cut
