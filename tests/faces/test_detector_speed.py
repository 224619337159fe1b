"""The detector speed measurement (bench): what it reports, not how fast it is."""

from __future__ import annotations

import numpy as np
import pytest

from panini_video.bench.detector import format_speeds, measure_detector_speed, measure_detector_speeds
from panini_video.faces.retinaface import RetinaFace
from panini_video.faces.retinaface_net import RetinaFaceNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector() -> RetinaFace:
    return RetinaFace(RetinaFaceNet("mobilenet"))  # random weights: speed does not need real ones


def test_measurement_reports_what_it_timed(detector: RetinaFace) -> None:
    frames = [np.full((90, 160, 3), v, np.uint8) for v in (0, 128)]
    r = measure_detector_speed(detector, frames, det_size=64, batch_size=3, warmup=1, min_batches=2, min_seconds=0)
    assert (r.backbone, r.device, r.det_size, r.batch_size) == ("mobilenet", "cpu", 64, 3)
    assert r.frame_size == (160, 90) and r.input_size == (64, 36)
    assert r.frames == 6 and r.seconds > 0 and r.fps == pytest.approx(r.frames / r.seconds)
    assert r.to_dict()["ms_per_frame"] == pytest.approx(1000 * r.seconds / 6)
    assert detector.settings.det_size == 640  # the caller's detector is left as it was


def test_grid_and_table(detector: RetinaFace) -> None:
    frames = [np.zeros((40, 80, 3), np.uint8)]
    rows = measure_detector_speeds(detector, frames, det_sizes=(32, 48), batch_sizes=(1, 2), min_seconds=0, warmup=0)
    assert [(r.det_size, r.batch_size) for r in rows] == [(32, 1), (32, 2), (48, 1), (48, 2)]
    table = format_speeds(rows).splitlines()
    assert len(table) == 5 and "fps" in table[0] and "48x24" in table[3]


def test_bad_arguments(detector: RetinaFace) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        measure_detector_speed(detector, [])
    with pytest.raises(ValueError, match="batch_size"):
        measure_detector_speed(detector, [np.zeros((8, 8, 3), np.uint8)], batch_size=0)
