"""A batch killed with SIGKILL in the middle of a file, then started again, ends as if never stopped.

The command runs in a subprocess (the real console script); it is killed once the output of the
long clip is being written (its temporary file exists). The kill leaves a ``running`` row and
temporary files; the next run removes them, redoes that file from scratch, and every output is
byte for byte the one an uninterrupted batch writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from panini_video.cli import main

TIMEOUT_S = 120


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from panini_video.cli import console_main; console_main()", *args]


def states(ledger: Path) -> dict[str, tuple[str, int]]:
    with closing(sqlite3.connect(ledger)) as db:
        return {Path(p).name: (s, a) for p, s, a in db.execute("SELECT path, state, attempts FROM files")}


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*partial-*")]


def test_sigkill_mid_file_then_resume(clips: dict[str, Path], run_args: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4", "long.mp4"):  # a.mp4 first: done before the kill; long.mp4 killed mid-file
        shutil.copy(clips[name], folder / name)
    shutil.copy(clips["sub/b.mp4"], folder / "z.mp4")  # after the killed one: never started before the kill
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = [str(folder), *run_args]

    proc = subprocess.Popen(command("batch", *args, "--out", str(out)), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not any("long.mkv" in p.name for p in temps(out)):  # archival: FFV1 in Matroska
            assert proc.poll() is None, f"the batch ended before the kill: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "the long clip's output never started"
            time.sleep(0.02)
        time.sleep(0.1)  # some frames into it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    ledger = out / ".panini-batch.sqlite"
    killed = states(ledger)
    assert killed["a.mp4"] == ("done", 1) and killed["long.mp4"] == ("running", 1)
    assert killed["z.mp4"][0] == "queued"
    assert not (out / "long.mkv").exists() and temps(out), "no finished-looking output, only temporary files"

    resumed = subprocess.run(
        command("batch", *args, "--out", str(out)), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert resumed.returncode == 0, resumed.stderr
    final = states(ledger)
    assert final == {"a.mp4": ("done", 1), "long.mp4": ("done", 2), "z.mp4": ("done", 1)}
    assert temps(out) == [], "the killed run's temporary files were removed"
    assert sorted(p.name for p in out.iterdir()) == [".panini-batch.sqlite", "a.mkv", "long.mkv", "z.mkv"]

    assert main(["batch", *args, "--out", str(reference)]) == 0  # uninterrupted, in this process
    for name in ("a.mkv", "long.mkv", "z.mkv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_sigint_discards_the_file_in_progress(clips: dict[str, Path], run_args: list[str], tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(clips["long.mp4"], folder / "long.mp4")
    proc = subprocess.Popen(
        command("batch", str(folder), *run_args, "--out", str(out)), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not temps(out):
            assert proc.poll() is None and time.monotonic() < deadline, "the file never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130 and "queued again" in err
    assert states(out / ".panini-batch.sqlite") == {"long.mp4": ("queued", 0)}  # the attempt refunded
    assert sorted(p.name for p in out.iterdir()) == [".panini-batch.sqlite"]  # no output, no temporary file
