"""``panini-video bench pipeline``: the main command's run on N frames, its fps and stage shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import panini_video.run.pipeline as runtime_pipeline
from panini_video import cache
from panini_video.bench.pipeline import bench_model
from panini_video.cli import main
from panini_video.config import RestoreConfig
from panini_video.errors import InputError, UsageError
from panini_video.models import VARIANTS, PaniniNet, save_model
from panini_video.models.fetch import init_model

CLIP = "videos/talking_720p_silent_audio.mp4"  # 1280x720, 180 frames, one face
WEIGHTS = "weights/retinaface_mobilenet0.25_Final.pth"


def test_bench_pipeline_reports_fps_and_every_stage(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[list[str]] = []
    real_build = runtime_pipeline.build_stages

    def spy(*args: object, **kwargs: object) -> list:
        stages = real_build(*args, **kwargs)  # type: ignore[arg-type]
        built.append([s.name for s in stages])
        return stages

    monkeypatch.setattr(runtime_pipeline, "build_stages", spy)
    report = tmp_path / "pipeline.json"
    argv = ["bench", "pipeline", str(testdata / CLIP), "--frames", "10", "--warmup", "2", "--model", "tiny"]
    argv += ["--detector-weights", str(testdata / WEIGHTS), "--json", str(report)]
    assert main(argv) == 0
    result = json.loads(report.read_text())
    # The warm-up ran on fresh stages of the main command's factory; its frames are not counted.
    assert built == [["detect", "track", "restore"]] * 2
    assert result["frames"] == 10 and result["warmup_frames"] == 2
    assert result["size"] == [1280, 720]
    assert "random weights" in result["weights"]
    # One face in every frame of this clip (MANIFEST.md); each one restored, none failed.
    assert 8 <= result["faces"] <= 12 and result["faces_failed"] == 0
    assert result["restore"]["faces"] == result["faces"] and result["restore"]["frames"] == 10
    assert result["fps"] == pytest.approx(10 / result["wall_s"])
    assert result["graph_fps"] == pytest.approx(10 / result["graph_wall_s"])
    assert 0 < result["fps"] <= result["graph_fps"]
    assert result["faces_per_s"] == pytest.approx(result["faces"] / result["wall_s"])
    stages = {s["name"]: s for s in result["stages"]}
    assert list(stages) == ["source", "detect", "track", "restore", "reorder", "encode"]
    for name, s in stages.items():
        assert 0.0 <= s["busy_share"] <= 1.0, name
        assert s["busy_share"] == pytest.approx(s["busy_s"] / result["graph_wall_s"])
        assert (s["items_out"] if s["kind"] == "source" else s["items_in"]) == 10, name
    assert stages["detect"]["busy_s"] > 0 and stages["restore"]["busy_s"] > 0
    table = capsys.readouterr().out
    assert "fps end to end" in table and "random weights" in table
    for name in stages:
        assert f"\n{name} " in table


def test_bench_pipeline_follows_the_preset_and_flags(testdata: Path, tmp_path: Path) -> None:
    report = tmp_path / "pipeline.json"
    argv = ["bench", "pipeline", str(testdata / CLIP), "--frames", "4", "--warmup", "0", "--model", "tiny"]
    argv += ["--detector-weights", str(testdata / WEIGHTS), "--detect-every", "2", "--batch-size", "2"]
    argv += ["--dre-mode", "frame", "--json", str(report)]
    assert main(argv) == 0
    result = json.loads(report.read_text())
    assert result["frames"] == 4 and result["warmup_frames"] == 0
    assert (result["detect_every"], result["batch_size"], result["dre_mode"]) == (2, 2, "frame")
    assert result["restore"]["batch_size_mean"] <= 2
    # Detection on every second frame; the tracker carries the face over the others.
    assert result["faces"] >= 3


def test_bench_pipeline_refuses_what_it_cannot_measure(testdata: Path, tmp_path: Path) -> None:
    clip = str(testdata / CLIP)
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    assert main(["bench", "pipeline", str(bad), "--model", "tiny", "-q"]) == InputError.exit_code
    assert main(["bench", "pipeline", clip, "--frames", "0", "-q"]) == UsageError.exit_code
    # The preview preset draws faces and restores nothing: no restoration to measure.
    argv = ["bench", "pipeline", clip, "--pipeline", "preview", "--model", "tiny", "-q"]
    assert main([*argv, "--detector-weights", str(testdata / WEIGHTS)]) == UsageError.exit_code


def test_bench_model_says_what_the_weights_are(tmp_path: Path) -> None:
    tiny = RestoreConfig(model="tiny", device="cpu")
    assert bench_model(tiny, seed=2)[1] == "random weights, seed 2"  # no file: made here
    init_model("tiny", seed=7)
    assert bench_model(tiny, seed=2)[1] == "random weights, seed 7"  # the file's own label, not "trained"
    plain = save_model(PaniniNet(VARIANTS["tiny"]), tmp_path / "t.safetensors")
    assert bench_model(RestoreConfig(model=str(plain), device="cpu"))[1] == "trained weights"
    assert cache.model_path("tiny").is_file()
