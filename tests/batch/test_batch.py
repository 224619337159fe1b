"""``panini-video batch`` end to end on real clips: good and bad files, resume, changed settings, status, shards."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import av
import pytest

from panini_video.batch.inputs import find_inputs, output_path
from panini_video.batch.session import BatchOptions, list_files
from panini_video.batch.shard import parse_shard
from panini_video.cli import main
from panini_video.errors import UsageError
from tests.batch.conftest import GOOD


def rows(ledger: Path) -> dict[str, dict]:
    with closing(sqlite3.connect(ledger)) as db:
        db.row_factory = sqlite3.Row
        return {Path(r["path"]).name: dict(r) for r in db.execute("SELECT * FROM files")}


def frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_folder_of_good_and_bad_files(mixed_folder: Path, run_args: list[str], tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert main(["batch", str(mixed_folder), "--out", str(out), *run_args, "--report", str(report)]) == 5
    r = rows(out / ".panini-batch.sqlite")
    assert {n: r[n]["state"] for n in r} == {
        "a.mp4": "done",
        "b.mp4": "done",
        "corrupt.mp4": "failed",
        "fake.mp4": "failed",
        "notes.txt": "skipped",
    }
    assert "truncated/corrupt" in r["corrupt.mp4"]["error"] and "not a media file" in r["fake.mp4"]["error"]
    assert r["notes.txt"]["error"] == "not a video file FFmpeg can read"
    assert r["corrupt.mp4"]["attempts"] == 1  # the file's own fault: not retried
    for name in GOOD:  # the folder structure is kept, every frame is there, faces were restored
        assert frames((out / name).with_suffix(".mkv")) == 10
        assert r[Path(name).name]["frames"] == 10 and r[Path(name).name]["faces"] >= 10
    assert listing(out) == [".panini-batch.sqlite", "a.mkv", "sub", "sub/b.mkv"]  # archival: FFV1 in Matroska
    data = json.loads(report.read_text())
    assert (data["done"], data["failed"], data["skipped"], data["frames"]) == (2, 2, 1, 20)
    assert {Path(f["path"]).name for f in data["failures"]} == {"corrupt.mp4", "fake.mp4"}
    # the archival preset is the batch's default; the flags given override it
    with closing(sqlite3.connect(out / ".panini-batch.sqlite")) as db:
        settings = json.loads(db.execute("SELECT value FROM meta WHERE key = 'settings_json'").fetchone()[0])
    assert (
        settings["io"]["codec"] == "ffv1"
        and settings["io"]["verify"] is True
        and settings["blend"]["color_match"] is True
    )
    assert settings["io"]["preset"] == "ultrafast" and settings["detect"]["detector"] == "mobilenet"

    # started again: nothing to redo (done stays done, the bad files are out of attempts or permanent)
    before = {name: (out / name).with_suffix(".mkv").stat().st_mtime_ns for name in GOOD}
    assert main(["batch", str(mixed_folder), "--out", str(out), *run_args, "--report", str(report), "-y"]) == 5
    assert json.loads(report.read_text())["this_run"]["started"] == 0
    assert {name: (out / name).with_suffix(".mkv").stat().st_mtime_ns for name in GOOD} == before

    # a changed setting makes the done rows stale: both good files run again
    assert main(["batch", str(mixed_folder), "--out", str(out), *run_args, "--crf", "30", "--report", str(report)]) == 5
    assert json.loads(report.read_text())["this_run"]["done"] == 2
    assert all(r["attempts"] == 1 for r in rows(out / ".panini-batch.sqlite").values() if r["state"] == "done")
    assert {name: (out / name).with_suffix(".mkv").stat().st_mtime_ns for name in GOOD} != before

    # a changed input makes its own row stale, and only that one
    (mixed_folder / "a.mp4").write_bytes((mixed_folder / "sub/b.mp4").read_bytes())
    assert main(["batch", str(mixed_folder), "--out", str(out), *run_args, "--crf", "30", "--report", str(report)]) == 5
    data = json.loads(report.read_text())["this_run"]
    assert (data["started"], data["done"]) == (1, 1)


def test_status_reads_the_ledger(mixed_folder: Path, run_args: list[str], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    main(["batch", str(mixed_folder / "a.mp4"), str(mixed_folder / "fake.mp4"), "--out", str(out), *run_args])
    capsys.readouterr()
    assert main(["batch", "--status", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["files"], data["done"], data["failed"]) == (2, 1, 1)
    assert main(["batch", "--status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 files: 1 done, 1 failed" in text and "fake.mp4" in text
    assert main(["batch", "--status", str(tmp_path)]) == 2  # no ledger there: says so


def test_an_existing_output_is_kept_unless_y(clips: dict[str, Path], run_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.mkv").write_bytes(b"someone else's file")
    assert main(["batch", str(clips["a.mp4"]), "--out", str(out), *run_args]) == 5
    assert (out / "a.mkv").read_bytes() == b"someone else's file"
    assert "exists" in rows(out / ".panini-batch.sqlite")["a.mp4"]["error"]
    assert main(["batch", str(clips["a.mp4"]), "--out", str(out), *run_args, "-n"]) == 0  # skipped
    assert rows(out / ".panini-batch.sqlite")["a.mp4"]["state"] == "skipped"


def test_outputs_that_would_replace_inputs_or_collide_are_refused(mixed_folder: Path, run_args: list[str]) -> None:
    with pytest.raises(UsageError, match="is the input"):
        list_files(BatchOptions((str(mixed_folder),), mixed_folder))
    (mixed_folder / "sub" / "a.mp4").write_bytes(b"x")
    with pytest.raises(UsageError, match="would both be written"):
        list_files(BatchOptions((str(mixed_folder),), mixed_folder.parent / "o", out_name="{stem}{suffix}"))


def test_inputs_globs_lists_and_names(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    found = find_inputs([str(mixed_folder)])
    assert [i.rel.as_posix() for i in found] == ["a.mp4", "corrupt.mp4", "fake.mp4", "notes.txt", "sub/b.mp4"]
    assert [output_path(i, out).relative_to(out).as_posix() for i in found if i.skip is None][-1] == "sub/b.mp4"
    # a video without a video extension is recognised by its content; a copy found twice is listed once
    (mixed_folder / "tape07").write_bytes((mixed_folder / "a.mp4").read_bytes())
    lst = tmp_path / "list.txt"
    lst.write_text(f"# two files\n{mixed_folder / 'a.mp4'}\n\nin/sub/b.mp4\n")
    found = find_inputs([str(mixed_folder / "*.mp4"), str(mixed_folder), f"@{lst}"])
    names = [i.rel.as_posix() for i in found]
    assert names == ["a.mp4", "corrupt.mp4", "fake.mp4", "notes.txt", "sub/b.mp4", "tape07"]
    assert next(i for i in found if i.rel.name == "tape07").skip is None
    assert output_path(found[-1], out).name == "tape07.mkv"  # no muxer for no extension: Matroska
    with pytest.raises(UsageError, match="no such file"):
        find_inputs([str(tmp_path / "missing")])


def test_shards_are_disjoint_and_cover_the_batch(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for i in range(60):
        (folder / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 4}" / f"clip{i:03d}.mp4").write_bytes(b"")
    out = tmp_path / "out"
    every = {str(i.path) for i, _ in list_files(BatchOptions((str(folder),), out))}
    for n in (1, 3, 7):
        shares = [
            {str(i.path) for i, _ in list_files(BatchOptions((str(folder),), out, shard=(k, n)))} for k in range(n)
        ]
        assert set().union(*shares) == every and sum(map(len, shares)) == len(every) == 60
        if n > 1:
            assert all(shares), "every share gets files"
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "1", "-1/3", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)
