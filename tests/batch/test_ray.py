"""``batch --ray`` on a local Ray cluster (``ray.init(num_cpus=2)``).

It gives the local run's bytes, and the file of an actor killed mid-file is retried.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from panini_video.cli import main

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'panini-video[ray]')")
pytestmark = pytest.mark.slow  # a Ray cluster starts in seconds, not milliseconds


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path, clips: dict[str, Path]) -> Path:
    folder = tmp_path / "in"
    for name in ("a.mp4", "sub/b.mp4", "long.mp4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips[name], folder / name)
    return folder


def files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.mkv"))
    }  # archival: FFV1 in Matroska


def attempts(ledger: Path) -> dict[str, tuple[str, int]]:
    with closing(sqlite3.connect(ledger)) as db:
        return {Path(p).name: (s, a) for p, s, a in db.execute("SELECT path, state, attempts FROM files")}


def test_ray_gives_the_local_bytes_and_retries_a_killed_actor(
    cluster: None, folder: Path, run_args: list[str], tmp_path: Path
) -> None:
    from panini_video.batch.ray_runner import RayExecutor
    from panini_video.batch.session import BatchOptions, run_batch
    from panini_video.cli.batch import build_parser, config_from

    local, on_ray, killed = tmp_path / "local", tmp_path / "ray", tmp_path / "killed"
    assert main(["batch", str(folder), "--out", str(local), *run_args]) == 0
    assert main(["batch", str(folder), "--out", str(on_ray), *run_args, "--ray", "--jobs", "2"]) == 0
    assert files(on_ray) == files(local) and len(files(local)) == 3
    assert {s for s, _ in attempts(on_ray / ".panini-batch.sqlite").values()} == {"done"}

    # an actor killed while it writes the long clip: Ray restarts it, the driver retries the file
    config = config_from(build_parser("panini-video batch").parse_args([str(folder), "--out", str(killed), *run_args]))
    made: list[RayExecutor] = []
    shot: list[int] = []

    def factory(n: int) -> RayExecutor:
        made.append(RayExecutor(config, jobs=1))
        return made[0]

    def kill_mid_file() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not shot:
            running = made[0].running() if made else {}
            pid = next((p for path, p in running.items() if path.endswith("long.mp4")), None)
            if pid is not None and any("long.mkv.partial-" in p.name for p in killed.iterdir()):
                time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
                shot.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_file, daemon=True)
    killer.start()
    options = BatchOptions((str(folder),), killed, codec=config.io.codec)  # archival: FFV1, so .mkv
    summary = run_batch(options, "test-settings", factory)
    killer.join(10)
    assert shot, "the actor was never caught mid-file"
    assert summary.complete and summary.run.retried == 1
    assert attempts(killed / ".panini-batch.sqlite") == {
        "a.mp4": ("done", 1),
        "b.mp4": ("done", 1),
        "long.mp4": ("done", 2),
    }
    assert files(killed) == files(local)
    assert not [p for p in killed.rglob(".*partial-*")], "the killed actor's temporary files were removed"
