"""``panini-video bench gpu`` on this CPU (quick, tiny): every section runs and writes real figures.

The GPU machine runs the same command with ``--device cuda``; this keeps it working in CI, so the
few minutes of device time are never spent finding a broken script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from panini_video.cli import main
from panini_video.errors import UsageError


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU run: with a GPU, bench gpu is run on it instead")
def test_bench_gpu_on_the_cpu_writes_every_figure(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    assert main(["bench", "gpu", "--out", str(out), "--device", "cpu", "--model", "tiny", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cuda-tests.xml", "gpu.json", "gpu.md", "log.txt"]
    report = json.loads((out / "gpu.json").read_text())
    assert report["settings"] == {"device": "cpu", "models": ["tiny"], "quick": True, "budget_s": 480.0}
    sections = report["sections"]

    tests = sections["tests"]  # the cuda tests were collected and skipped here, with the reason
    assert tests["tests"] > 5 and tests["skipped"] == tests["tests"] and tests["failures"] == tests["errors"] == 0
    assert all("needs a CUDA GPU" in c["message"] for c in tests["cases"])

    (model,) = sections["model"]["items"]
    rows = model["result"]["rows"]
    assert [(r["dtype"], r["batch"]) for r in rows] == [("fp32", 1), ("bf16", 1), ("fp32", 2), ("bf16", 2)]
    for r in rows:
        assert r["faces_per_s"] > 0 and r["ms_per_batch"] > 0 and r["tflops"] > 0 and r["mode"] == "eager"
    assert all(0 < r["max_abs_diff"] < 0.5 for r in rows if r["dtype"] == "bf16")

    pipeline = {r["id"]: r for r in sections["pipeline"]["items"]}
    assert all(r["ok"] for r in pipeline.values()), pipeline
    faces = {"crowd": None, "1 face": 1, "2 faces": 2, "4 faces": 4}
    for label, n in faces.items():
        res = pipeline[f"pipeline-{label}"]["result"]
        assert res["fps"] > 0 and res["frames"] >= 2 and res["size"] == [1920, 1080]
        assert res["faces_per_frame"] == n if n else res["faces_per_frame"] >= 3  # the tiles hold exactly n faces
        assert res["faces_failed"] == 0

    io = {r["id"]: r for r in sections["io"]["items"]}
    assert all(r["ok"] for r in io.values()), io
    plain = io["io-2 faces"]["result"]
    assert plain["plain"]["fps"] > 0 and plain["graph"]["fps"] > 0 and plain["frames"] == 4
    decode = io["nvdec-2 faces"]["result"]
    assert decode["decode_cpu"]["frames"] == decode["transcode_cpu"]["frames"] == 4
    assert decode["decode_cpu"]["fps"] > decode["transcode_cpu"]["fps"] > 0  # encoding costs something
    assert "quick mode" in sections["compiled"]["skipped"]

    summary = report["summary"]
    two = summary["pipeline"]["2 faces"]
    assert two["of_decode_encode"] == pytest.approx(two["fps"] / max(plain["plain"]["fps"], plain["graph"]["fps"]))
    assert summary["model_best"]["tiny bf16"]["faces_per_s"] == max(r["faces_per_s"] for r in rows[1::2])

    md = (out / "gpu.md").read_text()
    assert md.startswith("# bench gpu: CPU")
    assert f"| 2 faces | tiny (random weights, seed 0) | {pipeline['pipeline-2 faces']['result']['precision']}" in md
    assert f"{two['fps']:.4g}" in md and f"{rows[0]['faces_per_s']:.4g}" in md
    assert "## Not measured" in md and "compiled: quick mode" in md


def test_bench_gpu_within_a_spent_budget_says_what_it_skipped(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    argv = ["bench", "gpu", "--out", str(out), "--device", "cpu", "--model", "tiny", "--budget-s", "5", "-q"]
    assert main(argv) == 0
    report = json.loads((out / "gpu.json").read_text())
    assert all("time budget spent" in s["skipped"] for k, s in report["sections"].items() if k != "compiled")
    assert "- model: time budget spent" in (out / "gpu.md").read_text()


def test_bench_gpu_refuses_bad_choices(testdata: Path, tmp_path: Path) -> None:
    base = ["bench", "gpu", "--out", str(tmp_path / "g"), "--device", "cpu"]
    assert main([*base, "--model", "tiny,huge"]) == UsageError.exit_code
    assert main([*base, "--sections", "model,speed"]) == UsageError.exit_code
    assert main([*base, "--testdata", str(tmp_path)]) == UsageError.exit_code
    assert not (tmp_path / "g").exists()
