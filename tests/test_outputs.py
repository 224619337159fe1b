"""The output rule (panini_video/outputs.py) on its own: checks, atomic writes, stale temporaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from panini_video import outputs
from panini_video.errors import OutputError, UsageError
from panini_video.outputs import Output, OutputExistsError, atomic_output, check_outputs, remove_stale_temps, temp_path


def test_a_new_file_in_a_writable_folder_passes_and_leaves_nothing(tmp_path: Path) -> None:
    assert check_outputs([Output(str(tmp_path / "a.mp4"), "OUT")], [])
    assert list(tmp_path.iterdir()) == []  # the writability probe is gone again


def test_two_outputs_that_are_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is the output"):
        check_outputs([Output(str(tmp_path / "a.mp4"), "OUT"), Output(str(tmp_path / "./a.mp4"), "--stats-json")])


def test_an_existing_output_refused_kept_or_replaced(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(OutputExistsError, match="-y"):
        check_outputs([Output(str(target), "--json")])
    assert check_outputs([Output(str(target), "--json")], overwrite="skip") is False
    assert check_outputs([Output(str(target), "--json")], overwrite="overwrite") is True
    assert target.read_text() == "old"


def test_stdout_only_where_documented(tmp_path: Path) -> None:
    assert check_outputs([Output("-", "--stats-json", stdout_ok=True)])
    with pytest.raises(UsageError, match="standard output"):
        check_outputs([Output("-", "OUT")])


@pytest.mark.parametrize("fail", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_atomic_output_removes_its_temporary_file_on_any_failure(tmp_path: Path, fail: BaseException) -> None:
    target = tmp_path / "w.safetensors"
    target.write_text("before")
    with pytest.raises(type(fail)), atomic_output(target, suffix=".tmp") as temp:
        temp.write_text("half")
        assert temp.parent == tmp_path and f".partial-{os.getpid()}-" in temp.name
        raise fail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"] and target.read_text() == "before"


def test_the_rename_replaces_a_link_and_never_follows_it(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    outputs.write_text(link, "{}\n")
    assert not link.is_symlink() and link.read_text() == "{}\n" and real.read_text() == "keep me"
    assert outputs.committed[-1] == link


def test_commit_refuses_a_folder_that_appeared_since_the_check(tmp_path: Path) -> None:
    target = tmp_path / "late"
    with pytest.raises(OutputError, match="became a folder"), atomic_output(target) as temp:
        temp.write_text("x")
        target.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late"]


def test_stale_temporaries_of_dead_processes_only_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.mp4.partial-{dead_pid}-0a1b2c3d.mp4"
    alive = tmp_path / f".out.mp4.partial-{os.getpid()}-0a1b2c3d.mp4"
    foreign = tmp_path / ".out.mp4.partial-abc.mp4"  # not our pattern
    kept = tmp_path / "out.mp4"
    ours = tmp_path / f".b.mp4.partial-{dead_pid}-{outputs.HOST_TAG}-0a1b2c3d.mp4"  # this machine's, dead
    elsewhere = tmp_path / f".c.mp4.partial-{dead_pid}-0badf00d-0a1b2c3d.mp4"  # another machine's: its PID is not ours
    for p in (stale, alive, foreign, kept, ours, elsewhere):
        p.write_bytes(b"x")
    assert sorted(remove_stale_temps([tmp_path])) == sorted([stale, ours])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (alive, foreign, kept, elsewhere))
    assert f"-{outputs.HOST_TAG}-" in temp_path(tmp_path / "x.mp4").name


def test_a_result_gets_the_usual_mode_or_keeps_the_replaced_files(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    with atomic_output(new) as temp:
        fd = os.open(temp, os.O_CREAT | os.O_WRONLY, 0o600)  # private, as mkstemp and safetensors make them
        os.close(fd)
    mask = os.umask(0o022)
    os.umask(mask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~mask
    old = tmp_path / "old.json"
    old.write_text("x")
    old.chmod(0o640)
    outputs.write_text(old, "y")
    assert old.stat().st_mode & 0o777 == 0o640 and old.read_text() == "y"
