"""The batch loop: which files run, handing them to workers, and the ledger kept after each result.

``plan`` reads the ledger against the listed inputs and says what runs: new and queued files,
files of a killed run (``running``: started again from scratch), failed ones with attempts left
and a transient error, done ones whose input, settings or output changed. ``drive`` hands those
to an ``Executor`` (threads in this process, or Ray actors) a few at a time and records each
result in one ledger transaction; only the driver's thread touches the ledger. A failed file
with attempts left goes to the back of the queue; a fatal failure (the weights) stops the batch.
On a signal, the files in progress are stopped, their rows put back to ``queued`` with the
attempt refunded, and the signal's exception goes on to the caller.

``ThreadExecutor`` is the local one: ``jobs`` threads sharing one ``FileWorker`` (the models
loaded once in the process), each running one file at a time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from panini_video.batch.ledger import Ledger, Row
from panini_video.batch.worker import FileJob, FileResult, FileWorker
from panini_video.errors import PaniniError, WeightsError

log = logging.getLogger(__name__)

STOP_GRACE_S = 60.0  # how long stopped files may take to discard their work


@dataclass(frozen=True, slots=True)
class Planned:
    """One listed file: its job, and whether it runs now (else why not: done, skipped, failed)."""

    job: FileJob
    runs: bool
    why: str = ""


def plan(jobs: Sequence[FileJob], ledger: Ledger, retries: int) -> list[Planned]:
    """What each listed file needs, from its ledger row (``Ledger.sync`` ran before).

    A done row stays done while its output is where the row says with the size it had; a row of a
    file that a killed run left ``running`` counts that attempt. A file is tried at most
    ``1 + retries`` times over all runs, unless its input or settings change.
    """
    out: list[Planned] = []
    for job in jobs:
        row = ledger.get(job.input)
        out.append(_planned(job, row, retries))
    return out


def _planned(job: FileJob, row: Row | None, retries: int) -> Planned:
    if row is None or row.state == "queued":
        return Planned(job, True)
    if row.state == "skipped":
        return Planned(job, False, row.error or "skipped")
    if row.state == "done":
        if row.output == job.output and _size(job.output) == row.output_size:
            return Planned(job, False, "done")
        return Planned(job, True, "its output changed")
    if row.attempts >= 1 + retries:
        return Planned(job, False, "failed")
    if row.state == "running":
        return Planned(job, True, "left running by a stopped run")
    if row.permanent:
        return Planned(job, False, "failed")
    return Planned(job, True, "retried")


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


class Events(Protocol):
    """What the loop tells the display (called from the driver's thread; ``frames`` from any)."""

    def started(self, job: FileJob, attempt: int) -> None: ...

    def frames(self, job: FileJob, done: int, total: int | None) -> None: ...

    def finished(self, result: FileResult, retrying: bool) -> None: ...


class NoEvents:
    def started(self, job: FileJob, attempt: int) -> None:
        pass

    def frames(self, job: FileJob, done: int, total: int | None) -> None:
        pass

    def finished(self, result: FileResult, retrying: bool) -> None:
        pass


class Executor(Protocol):
    """Where files run: ``slots`` at a time."""

    @property
    def slots(self) -> int: ...

    def submit(self, job: FileJob) -> None: ...

    def poll(self, timeout: float) -> list[FileResult]:
        """Results that came in within ``timeout`` seconds (maybe none)."""
        ...

    def stop(self, grace: float) -> list[FileResult]:
        """Stop the files in progress; their results (interrupted ones) within ``grace`` seconds."""
        ...

    def close(self) -> None: ...


@dataclass
class DriveStats:
    """What ``drive`` did in this run."""

    started: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    wall_s: float = 0.0
    ledger_s: float = 0.0  # time inside ledger transactions
    ledger_ops: int = 0


def drive(
    executor: Executor,
    jobs: Sequence[FileJob],
    ledger: Ledger,
    retries: int,
    events: Events | None = None,
) -> DriveStats:
    """Run ``jobs`` on ``executor``, keeping the ledger; see the module doc."""
    events = events or NoEvents()
    stats = DriveStats()
    t0, ledger_t0, ops0 = time.perf_counter(), ledger.timing, ledger.operations
    pending: deque[FileJob] = deque(jobs)
    active: dict[str, FileJob] = {}
    try:
        while pending or active:
            while pending and len(active) < executor.slots:
                job = pending.popleft()
                attempt = ledger.start(job.input, job.output, getattr(executor, "name", "local"))
                active[job.input] = job
                stats.started += 1
                events.started(job, attempt)
                executor.submit(job)
            for result in executor.poll(0.2):
                active.pop(result.job.input, None)
                retry = _record(ledger, result, retries, stats)
                events.finished(result, retry)
                if retry:
                    pending.append(result.job)
                if result.fatal:
                    raise WeightsError(result.error or "the weights cannot be used")
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
        for result in executor.stop(STOP_GRACE_S):
            active.pop(result.job.input, None)
            if result.ok:
                _record(ledger, result, retries, stats)
            else:
                ledger.requeue(result.job.input, reason, refund=True)
        for job in active.values():  # no word from them: their row says how far they got
            ledger.requeue(job.input, reason, refund=True)
        raise
    finally:
        stats.wall_s = time.perf_counter() - t0
        stats.ledger_s = ledger.timing - ledger_t0
        stats.ledger_ops = ledger.operations - ops0
    return stats


def _record(ledger: Ledger, result: FileResult, retries: int, stats: DriveStats) -> bool:
    """Write one result to the ledger; True when the file goes back in the queue."""
    job = result.job
    if result.ok:
        ledger.done(job.input, job.output, result.frames, result.faces, result.seconds, result.output_size)
        stats.done += 1
        return False
    if result.interrupted:
        ledger.requeue(job.input, result.error or "interrupted", refund=True)
        return False
    ledger.failed(job.input, result.error or "failed", result.permanent, result.seconds)
    row = ledger.get(job.input)
    if not result.permanent and not result.fatal and row is not None and row.attempts < 1 + retries:
        stats.retried += 1
        return True
    stats.failed += 1
    return False


class ThreadExecutor:
    """``jobs`` files at a time in this process, on threads sharing one ``FileWorker``."""

    name = "local"

    def __init__(self, worker: FileWorker, jobs: int = 1, events: Events | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.worker = worker
        self.jobs = jobs
        self.events = events or NoEvents()
        self._tasks: queue.Queue[FileJob | None] = queue.Queue()
        self._results: queue.Queue[FileResult] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def slots(self) -> int:
        return self.jobs

    def submit(self, job: FileJob) -> None:
        if not self._threads:
            for i in range(self.jobs):
                t = threading.Thread(target=self._loop, name=f"batch-worker-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        self._tasks.put(job)

    def _loop(self) -> None:
        while True:
            job = self._tasks.get()
            if job is None:
                return
            on_frames: Callable[[int, int | None], None] = lambda done, total, job=job: self.events.frames(  # noqa: E731
                job, done, total
            )
            try:
                result = self.worker.process(job, stop=self._stop, on_frames=on_frames)
            except BaseException as exc:  # never lose a result: the driver waits for one per job
                text = str(exc) if isinstance(exc, PaniniError) else f"{type(exc).__name__}: {exc}"
                result = FileResult(job, False, error=text, worker=self.worker.name)
            self._results.put(result)

    def poll(self, timeout: float) -> list[FileResult]:
        out: list[FileResult] = []
        try:
            out.append(self._results.get(timeout=timeout))
            while True:
                out.append(self._results.get_nowait())
        except queue.Empty:
            pass
        return out

    def stop(self, grace: float) -> list[FileResult]:
        self._stop.set()
        while True:  # files not started yet never start
            try:
                self._tasks.get_nowait()
            except queue.Empty:
                break
        busy = [t for t in self._threads if t.is_alive()]
        for _ in busy:
            self._tasks.put(None)
        deadline = time.monotonic() + grace
        for t in busy:
            t.join(max(0.0, deadline - time.monotonic()))
        return self.poll(0.0)

    def close(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for t in self._threads:
            t.join(5.0)
