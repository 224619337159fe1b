"""The measures of ``bench faces``: count errors, id switches, the Hamilton cut, agreement offsets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panini_video.bench.face_metrics import (
    agreement_section,
    count_errors,
    id_section,
    person_chains,
    read_rgb,
    trace_clip,
)
from panini_video.bench.faces import HAMILTON, HAMILTON_CUTS, WEIGHTS_NAME
from panini_video.config import DetectConfig
from panini_video.records import Face

PHOTO = "two_people.jpg"  # 2 faces (manifest)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector(testdata: Path) -> object:
    from panini_video.faces.retinaface import load_detector

    return load_detector(DetectConfig(weights=str(testdata / WEIGHTS_NAME)))


def _face(box: tuple[float, float, float, float], track: int) -> Face:
    x0, y0, x1, y1 = box
    marks = np.array([[x0, y0], [x1, y0], [(x0 + x1) / 2, (y0 + y1) / 2], [x0, y1], [x1, y1]], np.float32)
    return Face(box=np.array(box, np.float32), landmarks=marks, score=0.99, track=track)


def test_counts_map_to_misses_and_false_positives() -> None:
    # frames expecting [1, 1], [1, 1], [4, 6], [4, 6]: one frame misses its face, one finds 8 of at most 6
    r = count_errors([1, 0, 8, 3], [(1, 1), (1, 1), (4, 6), (4, 6)])
    assert (r["expected"], r["detected"], r["misses"], r["false_positives"]) == (10, 12, 2, 2)
    assert r["recall"] == pytest.approx(0.8) and r["fp_per_frame"] == 0.5 and r["frames_in_range"] == 0.25
    assert count_errors([0], [(0, 0)])["recall"] is None  # a photo without faces has no recall, only FP


def test_an_id_change_along_an_iou_continuous_person_is_a_switch() -> None:
    a, b = (10, 10, 60, 70), (200, 10, 250, 70)
    moved = (14, 12, 64, 72)  # IoU with a ~0.8
    frames = [
        (_face(a, 1), _face(b, 2)),
        (_face(moved, 1), _face(b, 2)),
        (_face(moved, 3),),  # same place, new id: a switch; b missed for a frame
        (),
        (_face(moved, 3), _face(b, 2)),  # b back after a gap: same person, same id
    ]
    chains = person_chains(frames, start=0, max_gap=10)
    assert sorted(len(c) for c in chains) == [3, 4]
    assert [t for _, t in max(chains, key=len)] == [1, 1, 3, 3]
    assert person_chains(frames, start=0, max_gap=0) != chains  # a gap longer than allowed splits b


def test_ids_reset_at_the_first_scene_cut(testdata: Path, detector: object) -> None:
    trace = trace_clip(detector, testdata / HAMILTON, limit=30)
    result = id_section(trace, HAMILTON_CUTS)
    assert result["cuts_detected"] == [20] and result["cuts_missed"] == []
    first, second = result["shots"]
    assert (first["frames"], second["frames"]) == (20, 10)
    assert first["id_switches"] == 0 and second["ids_from_previous_shot"] == 0


def test_agreement_measures_the_offset_of_a_shifted_dump(testdata: Path, detector: object, tmp_path: Path) -> None:
    path = testdata / "photos" / PHOTO
    ours = detector.detect([read_rgb(path)])[0]  # type: ignore[attr-defined]
    ref = {
        "path": str(path),
        "boxes": (ours.boxes + 1.0).tolist(),  # everything one pixel off, scores 0.01 lower
        "landmarks": (ours.landmarks - 1.0).tolist(),
        "scores": (ours.scores - 0.01).tolist(),
    }
    dump = tmp_path / "fx.json"
    dump.write_text(json.dumps({"meta": {"threshold": 0.8, "network": "mobile0.25"}, "runs": {"det640": {PHOTO: ref}}}))
    (row,) = agreement_section(detector, [dump], testdata)["rows"]
    assert (row["faces"], row["unmatched"]) == (2, 0)
    assert row["box_max_px"] == pytest.approx(1.0, abs=1e-3) and row["landmark_mean_px"] == pytest.approx(1.0, abs=1e-3)
    assert row["score_max"] == pytest.approx(0.01, abs=1e-6)
