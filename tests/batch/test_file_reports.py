"""``batch --file-reports json|html``: each output's provenance report beside it, with its verification."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from panini_video.cli import main


def test_each_output_gets_its_report_with_the_verification(
    clips: dict[str, Path], run_args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(clips["a.mp4"]), str(clips["sub/b.mp4"]), "--out", str(out), *run_args]
    assert main([*args, "--file-reports", "json"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [".panini-batch.sqlite", "a.mkv", "a.mkv.report.json", "b.mkv", "b.mkv.report.json"]
    for name, src in (("a.mkv", clips["a.mp4"]), ("b.mkv", clips["sub/b.mp4"])):
        report = json.loads((out / f"{name}.report.json").read_text())
        head = src.read_bytes()[: 2**20]
        assert report["input"]["identity"]["size"] == src.stat().st_size
        assert hashlib.sha256(head).hexdigest() in json.dumps(report["input"]["identity"])
        assert report["outputs"][0]["identity"]["path"].endswith(name)  # the final name, not the temporary one
        assert report["run"]["frames_in"] == report["run"]["frames_out"] == 10
        verification = report["verification"]
        assert verification["status"] == "ok", verification  # the archival preset verified it, once
        assert report["settings"]["io"]["codec"] == "ffv1"


def test_a_bad_report_kind_is_refused(clips: dict[str, Path], run_args: list[str], tmp_path: Path, capsys) -> None:
    args = ["batch", str(clips["a.mp4"]), "--out", str(tmp_path / "out"), *run_args, "--file-reports", "pdf"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert "--file-reports" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
