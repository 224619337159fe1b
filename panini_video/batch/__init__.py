"""Archival batches: many files, a SQLite ledger that makes them resumable, local threads or Ray actors.

``run_batch`` (``session``) lists the inputs (``inputs``), syncs the ledger (``ledger``), picks this
shard's files (``shard``) and drives an executor (``runner``: threads here; ``ray_runner``: Ray
actors) whose workers (``worker``) keep the models loaded and commit each output only once it is
complete and verified.
"""

from __future__ import annotations

from panini_video.batch.inputs import BatchInput, find_inputs, output_path
from panini_video.batch.ledger import Identity, Ledger, Row, default_ledger
from panini_video.batch.runner import ThreadExecutor, drive, plan
from panini_video.batch.session import BatchOptions, BatchSummary, run_batch
from panini_video.batch.shard import parse_shard, select_shard, share_of
from panini_video.batch.worker import FileJob, FileResult, FileWorker

__all__ = [
    "BatchInput",
    "BatchOptions",
    "BatchSummary",
    "FileJob",
    "FileResult",
    "FileWorker",
    "Identity",
    "Ledger",
    "Row",
    "ThreadExecutor",
    "default_ledger",
    "drive",
    "find_inputs",
    "output_path",
    "parse_shard",
    "plan",
    "run_batch",
    "select_shard",
    "share_of",
]
