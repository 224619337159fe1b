"""The archival preset in a batch: FFV1 outputs named .mkv, each verified before its row is done.

Real clips (the first frames of real videos), the tiny model with seeded random weights, the
shipped detector. A failing verification is made by a real stage that changes one sample
outside the faces after the restorer, the kind of bug verify exists to catch.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import av
import pytest

from panini_video.batch.inputs import BatchInput, output_path, output_suffix
from panini_video.batch.worker import FileJob, FileWorker
from panini_video.cli import main
from panini_video.config import load_config
from panini_video.records import FrameItem
from panini_video.runtime.stage import Stage


def rows(ledger: Path) -> dict[str, dict]:
    with closing(sqlite3.connect(ledger)) as db:
        db.row_factory = sqlite3.Row
        return {Path(r["path"]).name: dict(r) for r in db.execute("SELECT * FROM files")}


@pytest.mark.parametrize(
    ("name", "codec", "suffix"),
    [
        ("a.mp4", None, ".mp4"),  # no codec set: the input's extension, as before
        ("a.mp4", "ffv1", ".mkv"),  # FFV1 cannot go in MP4: Matroska
        ("a.MKV", "ffv1", ".MKV"),  # the input's own extension when the codec may go in it
        ("a.mp4", "prores", ".mov"),  # an alias: prores_ks goes in .mov first
        ("a.mov", "x264", ".mov"),
        ("a.avi", "libx264", ".mp4"),
        ("a.avi", None, ".mkv"),  # no muxer for .avi: Matroska
        ("a.mp4", "mpeg4", ".mp4"),  # a codec without a container list: the input's
    ],
)
def test_the_output_suffix_follows_the_codec(name: str, codec: str | None, suffix: str) -> None:
    assert output_suffix(Path(name), codec) == suffix
    item = BatchInput(Path("/in") / name, Path(name), "/in")
    assert output_path(item, Path("/out"), codec=codec) == Path("/out") / f"a{suffix}"


def test_the_archival_preset_writes_ffv1_and_verifies_it() -> None:
    config = load_config("archival")
    assert (config.io.codec, config.io.crf, config.io.preset, config.io.verify) == ("ffv1", None, None, True)


def test_an_archival_batch_writes_verified_ffv1_in_matroska(
    clips: dict[str, Path], run_args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(clips["a.mp4"]), str(clips["sub/b.mp4"]), "--out", str(out), *run_args]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [".panini-batch.sqlite", "a.mkv", "b.mkv"]
    r = rows(out / ".panini-batch.sqlite")
    assert {n: (row["state"], row["frames"]) for n, row in r.items()} == {"a.mp4": ("done", 10), "b.mp4": ("done", 10)}
    for name in ("a.mkv", "b.mkv"):
        with av.open(str(out / name)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "ffv1" and stream.codec_context.pix_fmt == "yuv420p"
            assert sum(1 for _ in c.decode(stream)) == 10


class ChangeOneSample(Stage):
    """After the restorer: one luma sample of one frame, in the frame's corner (far from any face), changed."""

    name = "bug"

    def __init__(self, frame: int) -> None:
        self.frame = frame

    def process(self, item: Any) -> Iterable[Any]:
        if isinstance(item, FrameItem) and item.index == self.frame:
            pic = item.frame.image.writable_copy()
            pic.planes[0][0, 0] ^= 0x40
            item = dataclasses.replace(item, frame=dataclasses.replace(item.frame, image=pic))
        return (item,)


class BuggyWorker(FileWorker):
    def stages(self, info: Any) -> list[Any]:
        return [*super().stages(info), ChangeOneSample(frame=4)]


def test_a_file_that_fails_verification_is_kept_and_its_row_failed(
    clips: dict[str, Path], tiny_weights: Path, tmp_path: Path
) -> None:
    from panini_video.batch.settings import batch_config

    overrides = {
        "restore": {"model": str(tiny_weights), "device": "cpu"},
        "detect": {"detector": "mobilenet"},  # the shipped weights
    }
    config = batch_config(load_config("archival", overrides))
    output = tmp_path / "out" / "a.mkv"
    result = BuggyWorker(config).process(FileJob(str(clips["a.mp4"]), str(output)))
    assert not result.ok and result.permanent and not result.fatal  # the same settings would fail again
    assert result.error is not None and result.error.startswith("verify: ")
    assert "1 of the" in result.error and "(Y 1, Cb 0, Cr 0)" in result.error and "kept for inspection" in result.error
    assert output.is_file() and [p.name for p in output.parent.iterdir()] == ["a.mkv"]  # no temporary left
    # the same worker without the bug: verified, done
    assert FileWorker(config).process(FileJob(str(clips["a.mp4"]), str(tmp_path / "ok.mkv"))).ok


def test_archival_into_mp4_is_refused_naming_mkv(clips: dict[str, Path], tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    code = main([str(clips["a.mp4"]), str(tmp_path / "o.mp4"), "--pipeline", "archival", "--no-download", "-q"])
    assert code == 2 and "name the output .mkv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
