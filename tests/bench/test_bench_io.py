"""``panini-video bench io``: both sides do the same work, the figures are consistent."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import pytest

from panini_video.bench.io import measure_plain
from panini_video.cli import main
from panini_video.errors import InputError

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, variable frame timing, AAC audio


def _video_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return [Fraction(f.pts) * vs.time_base for f in c.decode(vs)]


def test_the_plain_baseline_does_the_same_work(testdata: Path, tmp_path: Path) -> None:
    src, out = testdata / CLIP, tmp_path / "plain.mp4"
    result = measure_plain(src, out, preset="ultrafast")
    assert result["frames"] == 135 and result["wall_s"] > 0
    assert _video_times(out) == _video_times(src)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [(s.codec_context.name, s.rate) for s in b.streams.audio] == [
            (s.codec_context.name, s.rate) for s in a.streams.audio
        ]
        assert b.streams.audio[0].frames == a.streams.audio[0].frames


def test_bench_io_reports_both_sides_and_their_ratio(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "io.json"
    argv = ["bench", "io", str(testdata / CLIP), "--repeat", "1", "--preset", "ultrafast", "--json", str(report_path)]
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["frames"] == report["plain"]["frames"] == report["graph"]["frames"] == 135
    assert report["ratio"] == pytest.approx(report["graph"]["fps"] / report["plain"]["fps"])
    for side in ("plain", "graph"):
        assert report[side]["fps"] == pytest.approx(135 / report[side]["wall_s"])
        assert 20 < report[side]["peak_rss_mib"] < 4096  # a Python with PyAV and numpy, measured per child
    assert report["machine"]["cpus"] >= 1
    table = capsys.readouterr().out
    assert "ratio graph/plain" in table and "stage graph" in table
    if shutil.which("ffmpeg"):  # the command line's side: same frames, its own rate, the ratio against it
        assert report["ffmpeg"]["frames"] == 135
        assert report["ratio_ffmpeg"] == pytest.approx(report["graph"]["fps"] / report["ffmpeg"]["fps"])
        assert "ratio graph/ffmpeg CLI" in table


def test_bench_io_refuses_a_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"nothing")
    assert main(["bench", "io", str(bad), "-q"]) == InputError.exit_code
