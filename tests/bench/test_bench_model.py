"""``panini-video bench model`` smoke test on the tiny variant (behaviour only, never speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panini_video.cli import main


def test_bench_model_tiny_reports_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    argv = ["bench", "model", "--variant", "tiny", "--batch", "1", "--dtype", "fp32,bf16", "--device", "cpu"]
    assert main([*argv, "--iters", "1", "--warmup", "0", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["variant"] == "tiny" and result["gflop_source"].startswith("FlopCounterMode")
    assert 0 < result["gflop_per_face"] < 10  # a small network, counted, not the official 448
    fp32, bf16 = result["rows"]
    assert (fp32["dtype"], fp32["batch"], bf16["dtype"]) == ("fp32", 1, "bf16")
    for row in (fp32, bf16):
        assert row["faces_per_s"] > 0 and row["ms_per_batch"] > 0 and row["tflops"] > 0
        assert row["peak_mib"] is not None and row["peak_mib"] >= 0
    assert fp32["max_abs_diff"] is None
    # bf16 keeps ~3 significant digits: a visible but small difference from fp32.
    assert 0 < bf16["mean_abs_diff"] <= bf16["max_abs_diff"] < 0.5
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("Panini-Net tiny:") and table[1].split()[:3] == ["dtype", "batch", "faces/s"]
    assert table[2].split()[:3] == ["fp32", "1", f"{fp32['faces_per_s']:.3g}"]


def test_bench_model_rejects_bad_lists() -> None:
    assert main(["bench", "model", "--variant", "tiny", "--batch", "0"]) == 2
    assert main(["bench", "model", "--variant", "tiny", "--dtype", "fp8"]) == 2
