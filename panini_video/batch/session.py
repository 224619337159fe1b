"""One batch from start to end: list the inputs, sync the ledger, run what is left, sum it up.

``run_batch`` is what ``panini-video batch`` and ``bench batch`` call. Before any file runs it
refuses what would harm the archive (an output that would replace an input, two inputs with one
output), removes the temporary files of killed runs in the output folders, and brings the
ledger in line with the listed inputs. The executor (local threads or Ray actors) is built by
the caller's ``executor_factory(files to run)`` once the plan is known, so a batch with nothing
left to do starts no worker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panini_video import outputs
from panini_video.batch.inputs import DEFAULT_OUT_NAME, BatchInput, find_inputs, output_path
from panini_video.batch.ledger import Identity, Ledger, Row, default_ledger
from panini_video.batch.runner import DriveStats, Events, Executor, drive, plan
from panini_video.batch.shard import select_shard
from panini_video.batch.worker import FileJob
from panini_video.errors import InputError, OutputError, UsageError
from panini_video.outputs import Overwrite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOptions:
    """What a batch is asked to do (the command line's batch options)."""

    inputs: tuple[str, ...]
    out_dir: Path
    out_name: str = DEFAULT_OUT_NAME
    ledger: Path | None = None
    shard: tuple[int, int] | None = None
    retries: int = 2
    overwrite: Overwrite = "refuse"
    codec: str | None = None  # the output's encoder (io.codec): the outputs' suffix follows it

    @property
    def ledger_path(self) -> Path:
        return self.ledger if self.ledger is not None else default_ledger(self.out_dir, self.shard)


@dataclass
class BatchSummary:
    """The batch's outcome over its listed files (the ledger's rows), and this run's figures."""

    rows: list[Row]
    run: DriveStats = field(default_factory=DriveStats)
    planned: int = 0  # files this run set out to run
    settings: str = ""
    ledger: str = ""

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.state == "failed"]

    @property
    def complete(self) -> bool:
        """Every file done or skipped."""
        return all(r.state in ("done", "skipped") for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        done = [r for r in self.rows if r.state == "done"]
        return {
            "ledger": self.ledger,
            "settings": self.settings,
            "files": len(self.rows),
            **{state: self.count(state) for state in ("done", "failed", "skipped", "queued", "running")},
            "frames": sum(r.frames or 0 for r in done),
            "faces": sum(r.faces or 0 for r in done),
            "seconds": sum(r.seconds or 0.0 for r in done),
            "this_run": {
                "planned": self.planned,
                "started": self.run.started,
                "done": self.run.done,
                "failed": self.run.failed,
                "retried": self.run.retried,
                "wall_s": self.run.wall_s,
                "ledger_s": self.run.ledger_s,
                "ledger_ops": self.run.ledger_ops,
            },
            "failures": [{"path": r.path, "error": r.error, "attempts": r.attempts} for r in self.failed],
            "rows": [r.to_dict() for r in self.rows],
        }


def list_files(options: BatchOptions) -> list[tuple[BatchInput, Path]]:
    """The batch's files (this shard's) with their outputs; UsageError for outputs that collide."""
    out_dir = options.out_dir.absolute()
    found = find_inputs(list(options.inputs), exclude=(out_dir,))
    pairs = [(item, output_path(item, out_dir, options.out_name, options.codec)) for item in found]
    if options.shard is not None:
        pairs = select_shard(pairs, options.shard, key=lambda p: p[1].relative_to(out_dir).as_posix())
    by_output: dict[Path, BatchInput] = {}
    input_keys: dict[tuple[object, ...], Path] = {}
    for item, _ in pairs:
        for key in outputs.identities(item.path):
            input_keys.setdefault(key, item.path)
    for item, out in pairs:
        if out in by_output:
            raise UsageError(
                f"{by_output[out].path} and {item.path} would both be written to {out}; "
                "give an --out-name with {folder} or a distinct pattern"
            )
        by_output[out] = item
        hit = next((input_keys[k] for k in outputs.identities(out) if k in input_keys), None)
        if hit is not None:
            raise UsageError(f"the output {out} is the input {hit}; give another --out folder or --out-name")
    return pairs


def _identity(item: BatchInput, settings: str) -> Identity | None:
    try:
        return Identity.of(item.path, settings)
    except OSError:
        return None


def prepare(
    options: BatchOptions, settings: str, ledger: Ledger, pairs: Sequence[tuple[BatchInput, Path]]
) -> tuple[list[FileJob], list[FileJob]]:
    """Sync the ledger with the listed files; returns (every listed job, the jobs to run now)."""
    entries = []
    jobs: list[FileJob] = []
    missing: list[tuple[str, str]] = []
    for item, out in pairs:
        ident = _identity(item, settings)
        if ident is None:  # listed but gone (a broken link, a file deleted since the listing)
            ident = Identity(item.key, -1, -1, settings)
            missing.append((item.key, f"{item.path}: cannot be read (missing or a broken link)"))
        entries.append((ident, item.skip, str(out)))
        jobs.append(FileJob(item.key, str(out)))
    ledger.sync(entries)
    for path, reason in missing:
        ledger.failed(path, reason, permanent=True)
    planned = plan(jobs, ledger, options.retries)
    to_run: list[FileJob] = []
    for p in planned:
        if not p.runs:
            continue
        row = ledger.get(p.job.input)
        ours = row is not None and row.output == p.job.output and (row.attempts > 0 or row.output_size is not None)
        if os.path.lexists(p.job.output) and not ours:
            if options.overwrite == "skip":
                ledger.skipped(p.job.input, f"{p.job.output} exists (-n)")
                continue
            if options.overwrite == "refuse":
                ledger.failed(p.job.input, f"{p.job.output} exists; give -y to replace it or -n to skip it", False)
                continue
        to_run.append(p.job)
    return jobs, to_run


def run_batch(
    options: BatchOptions,
    settings: str,
    executor_factory: Callable[[int], Executor],
    events: Events | None = None,
    settings_meta: dict[str, str] | None = None,
) -> BatchSummary:
    """List, sync, run and sum up one batch (see the module doc); raises on a signal after tidying the ledger."""
    if not options.out_dir.is_dir():
        try:
            options.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"--out {options.out_dir}: cannot be created ({e.strerror or e})") from e
    pairs = list_files(options)
    if not pairs:
        raise InputError(f"no files in {', '.join(options.inputs)}" + (" for this shard" if options.shard else ""))
    folders = {out.parent for _, out in pairs if out.parent.is_dir()} | {options.out_dir.absolute()}
    outputs.remove_stale_temps(sorted(folders))
    with Ledger(options.ledger_path) as ledger:
        ledger.set_meta({"settings": settings, "updated": str(time.time()), **(settings_meta or {})})
        jobs, to_run = prepare(options, settings, ledger, pairs)
        stats = DriveStats()
        if to_run:
            executor = executor_factory(len(to_run))
            try:
                stats = drive(executor, to_run, ledger, options.retries, events)
            finally:
                executor.close()
        listed = {j.input for j in jobs}
        rows = [r for r in ledger.rows() if r.path in listed]
        return BatchSummary(rows, stats, len(to_run), settings, str(options.ledger_path))
