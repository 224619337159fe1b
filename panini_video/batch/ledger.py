"""The batch's ledger: one SQLite row per input file, the only memory a resumed batch has.

Each row holds the file's identity (path, size, mtime, the hash of the output-changing settings),
its state, attempts, the last error, what the run did (frames, faces, seconds) and the output.
Every change is one transaction, made after the fact it records: a row says ``done`` only once its
output has been verified and renamed into place, so a SIGKILL at any moment leaves at worst a
``running`` row, which the next run starts again from scratch. WAL journaling keeps a reader
(``batch --status`` from another shell) from blocking the writer; ``synchronous=FULL`` makes a
committed ``done`` survive a power cut as the renamed file does.

States: queued (known, not yet run), running (started; after a kill: to be redone), done,
failed (with its error; retried while attempts remain and the error is not permanent), skipped
(not a video, or an existing output kept by ``-n``; with the reason).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from panini_video.errors import OutputError

State = Literal["queued", "running", "done", "failed", "skipped"]
STATES: tuple[State, ...] = ("queued", "running", "done", "failed", "skipped")
LEDGER_NAME = ".panini-batch.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    position INTEGER NOT NULL,       -- order of the inputs as last listed
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    settings TEXT NOT NULL,          -- settings hash the row's state holds for
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    permanent INTEGER NOT NULL DEFAULT 0,  -- the error is the file's own (retrying cannot help)
    error TEXT,
    frames INTEGER,
    faces INTEGER,
    seconds REAL,
    output TEXT,
    output_size INTEGER,
    worker TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Identity:
    """What makes a done row still true: the input's path, size and mtime, and the settings hash."""

    path: str
    size: int
    mtime_ns: int
    settings: str

    @classmethod
    def of(cls, path: str | os.PathLike[str], settings: str) -> Identity:
        st = os.stat(path)
        return cls(str(path), st.st_size, st.st_mtime_ns, settings)


@dataclass(frozen=True, slots=True)
class Row:
    """One file's row, as read."""

    path: str
    position: int
    size: int
    mtime_ns: int
    settings: str
    state: State
    attempts: int
    permanent: bool
    error: str | None
    frames: int | None
    faces: int | None
    seconds: float | None
    output: str | None
    output_size: int | None
    worker: str | None
    updated: float

    def matches(self, identity: Identity) -> bool:
        return (self.size, self.mtime_ns, self.settings) == (identity.size, identity.mtime_ns, identity.settings)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class Ledger:
    """The SQLite ledger at ``path`` (created when missing); use from one thread (the driver's)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.timing = 0.0  # seconds spent in ledger operations (``bench batch`` reports it per file)
        self.operations = 0
        try:
            if readonly:
                if not self.path.is_file():
                    raise OutputError(f"{self.path}: no batch ledger here; give the batch's output folder or --ledger")
                self._db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
            else:
                self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._set_meta("schema", str(SCHEMA_VERSION))
        except sqlite3.DatabaseError as e:
            raise OutputError(f"{self.path}: cannot be used as the batch ledger ({e})") from e

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of the block's changes, or none."""
        t0 = time.perf_counter()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self.timing += time.perf_counter() - t0
            self.operations += 1

    def _set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        cur = self._db.execute(f"SELECT {', '.join(Row.__slots__)} FROM files ORDER BY position, path")  # type: ignore[attr-defined]
        return [_row(r) for r in cur.fetchall()]

    def get(self, path: str) -> Row | None:
        cols = ", ".join(Row.__slots__)  # type: ignore[attr-defined]
        r = self._db.execute(f"SELECT {cols} FROM files WHERE path = ?", (path,)).fetchone()
        return None if r is None else _row(r)

    def counts(self) -> dict[str, int]:
        found = dict(self._db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
        return {s: int(found.get(s, 0)) for s in STATES}

    # -- changes (one transaction each) --------------------------------------------------------------

    def sync(self, entries: Iterable[tuple[Identity, str | None, str | None]]) -> None:
        """Bring rows in line with the listed inputs: ``(identity, skip reason, output)`` each, in order.

        A new file is queued (or skipped with its reason); a row whose input or settings changed
        starts afresh (attempts 0). Rows are never deleted: a file no longer listed keeps its row.
        """
        now = time.time()
        with self.transaction() as db:
            for position, (ident, skip, output) in enumerate(entries):
                old = self.get(ident.path)
                state: State = "skipped" if skip else "queued"
                if old is not None and not old.matches(ident):  # changed: afresh, but the output stays known as ours
                    db.execute(
                        "UPDATE files SET position = ?, size = ?, mtime_ns = ?, settings = ?, state = ?, attempts = 0,"
                        " permanent = ?, error = ?, updated = ? WHERE path = ?",
                        (position, ident.size, ident.mtime_ns, ident.settings, state, int(bool(skip)), skip, now,
                         ident.path),
                    )  # fmt: skip
                elif old is None:
                    db.execute(
                        "INSERT OR REPLACE INTO files (path, position, size, mtime_ns, settings, state, attempts,"
                        " permanent, error, output, updated) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                        (ident.path, position, ident.size, ident.mtime_ns, ident.settings, state, int(bool(skip)),
                         skip, output, now),
                    )  # fmt: skip
                elif old.state == "skipped" and not skip:
                    db.execute(
                        "UPDATE files SET position = ?, state = 'queued', error = NULL, permanent = 0, output = ?,"
                        " updated = ? WHERE path = ?",
                        (position, output, now, ident.path),
                    )
                else:
                    db.execute("UPDATE files SET position = ? WHERE path = ?", (position, ident.path))

    def start(self, path: str, output: str, worker: str) -> int:
        """The file is being run now: ``running``, one more attempt; returns the attempt's number."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = 'running', attempts = attempts + 1, output = ?, worker = ?, updated = ?"
                " WHERE path = ?",
                (output, worker, time.time(), path),
            )
            (attempts,) = db.execute("SELECT attempts FROM files WHERE path = ?", (path,)).fetchone()
        return int(attempts)

    def done(self, path: str, output: str, frames: int, faces: int | None, seconds: float, output_size: int) -> None:
        """Record a file whose output is complete and in place."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = 'done', error = NULL, permanent = 0, frames = ?, faces = ?, seconds = ?,"
                " output = ?, output_size = ?, updated = ? WHERE path = ?",
                (frames, faces, seconds, output, output_size, time.time(), path),
            )

    def failed(self, path: str, error: str, permanent: bool, seconds: float | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = 'failed', error = ?, permanent = ?, seconds = ?, updated = ? WHERE path = ?",
                (error, int(permanent), seconds, time.time(), path),
            )

    def skipped(self, path: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = 'skipped', error = ?, permanent = 1, updated = ? WHERE path = ?",
                (reason, time.time(), path),
            )

    def requeue(self, path: str, reason: str, *, refund: bool) -> None:
        """Back to ``queued`` (an interrupted file); ``refund``: the attempt does not count."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET state = 'queued', error = ?, attempts = MAX(attempts - ?, 0), updated = ?"
                " WHERE path = ?",
                (reason, int(refund), time.time(), path),
            )


def _row(r: tuple[Any, ...]) -> Row:
    values = dict(zip(Row.__slots__, r, strict=True))  # type: ignore[attr-defined]
    values["permanent"] = bool(values["permanent"])
    return Row(**values)


def default_ledger(out_dir: str | os.PathLike[str], shard: tuple[int, int] | None = None) -> Path:
    """``DIR/.panini-batch.sqlite``; a shard's own file beside it (shards never share a SQLite file)."""
    if shard is None:
        return Path(out_dir) / LEDGER_NAME
    i, n = shard
    return Path(out_dir) / f".panini-batch-shard-{i}-of-{n}.sqlite"


def ledgers_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The batch ledgers of an output folder: the main one and every shard's."""
    return sorted(Path(folder).glob(".panini-batch*.sqlite"))
