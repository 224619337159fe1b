"""``panini-video bench faces``: every section on a slice of the shared test data, with real properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panini_video.cli import main
from panini_video.errors import InputNotFoundError, UsageError

PHOTO = "two_people.jpg"  # 2 faces (manifest)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_bench_faces_refuses_bad_requests(testdata: Path, tmp_path: Path) -> None:
    base = ["bench", "faces", "-q", "--testdata", str(testdata)]
    assert main([*base, "--only", "recall,nonsense"]) == UsageError.exit_code
    assert main([*base, "--only", "agreement"]) == UsageError.exit_code  # needs --facexlib
    assert main([*base, "--photos", "missing.jpg"]) == UsageError.exit_code
    assert main(["bench", "faces", "-q", "--testdata", str(tmp_path / "none")]) == InputNotFoundError.exit_code
