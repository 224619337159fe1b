"""``panini-video bench faces``: every section on a slice of the shared test data, with real properties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from panini_video.bench.faces import (
    WEIGHTS_NAME,
    agreement_section,
    count_errors,
    id_section,
    person_chains,
    read_rgb,
    trace_clip,
)
from panini_video.cli import main
from panini_video.config import DetectConfig
from panini_video.errors import InputNotFoundError, UsageError
from panini_video.records import Face

PHOTO = "two_people.jpg"  # 2 faces (manifest)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The bench sets torch's threads (--threads 1 here); give the others theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


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


def test_bench_faces_runs_every_section_on_a_slice(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "faces.json"
    argv = ["bench", "faces", "--testdata", str(testdata), "--frames", "12", "--photos", PHOTO, "--threads", "1"]
    argv += [
        "--det-sizes",
        "128",
        "--batches",
        "1,2",
        "--backbones",
        "mobilenet",
        "--speed-seconds",
        "0",
        "--repeat",
        "2",
    ]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [k for k in ("recall", "jitter", "ids", "speed", "paste") if k in report] == [
        "recall", "jitter", "ids", "speed", "paste"
    ]  # fmt: skip
    assert "agreement" not in report

    rows = {r["input"]: r for r in report["recall"]["rows"]}
    assert rows[f"photos/{PHOTO}"]["recall"] == 1.0 and rows[f"photos/{PHOTO}"]["false_positives"] == 0
    talking = rows["videos/talking_hdtf_mpeg4_512.mp4"]
    assert talking["frames"] == 12 and talking["recall"] == 1.0 and talking["false_positives"] == 0

    for clip in report["jitter"]["clips"]:  # one face, one track; smoothing takes jitter down
        assert clip["frames"] == 12 and clip["tracks"] == 1 and clip["samples"] == 10
        assert 0 < clip["smoothed_px"] < clip["raw_px"]

    (shot,) = report["ids"]["shots"]  # the wide stage shot: singer and pianist, both followed
    assert (shot["frames"], shot["persons"], shot["track_ids"], shot["id_switches"]) == (12, 2, 2, 0)
    assert shot["ids_on_2_persons"] == 0 and shot["ids_from_previous_shot"] == 0

    speeds = report["speed"]["rows"]
    assert [(r["batch_size"], r["input_size"]) for r in speeds] == [(1, [128, 72]), (2, [128, 72])]
    assert all(r["fps"] > 0 and r["frames"] >= 2 * r["batch_size"] for r in speeds)
    assert all(len(r["fps_all"]) == 2 and r["fps"] == max(r["fps_all"]) >= r["fps_min"] for r in speeds)

    pastes = report["paste"]["photos"]
    assert [(p["photo"], p["restored"]) for p in pastes] == [(PHOTO, 512), (PHOTO, 1024)]
    for p in pastes:
        assert p["faces"] == 2 and p["psnr_min_db"] >= 40.0
        assert p["changed_outside"] == 0 and p["changed_inside"] > 0

    printed = capsys.readouterr().out
    for title in ("Detection recall", "Landmark jitter", "Id switches", "Detector speed", "Paste round trip"):
        assert title in printed


def test_ids_reset_at_the_first_scene_cut(testdata: Path, detector: object) -> None:
    trace = trace_clip(detector, testdata / "videos/hamilton_short.mp4", limit=30)
    result = id_section(trace)
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


def test_bench_faces_refuses_bad_requests(testdata: Path, tmp_path: Path) -> None:
    base = ["bench", "faces", "-q", "--testdata", str(testdata)]
    assert main([*base, "--only", "recall,nonsense"]) == UsageError.exit_code
    assert main([*base, "--only", "agreement"]) == UsageError.exit_code  # needs --facexlib
    assert main([*base, "--photos", "missing.jpg"]) == UsageError.exit_code
    assert main(["bench", "faces", "-q", "--testdata", str(tmp_path / "none")]) == InputNotFoundError.exit_code
