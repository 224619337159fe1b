"""``--shard I/N``: the I-th of N deterministic, disjoint shares of a batch's files.

For schedulers that start N copies of one command (Kubernetes Indexed Jobs, Slurm arrays): each
copy lists the same inputs and keeps the files whose share is its own. A file's share comes from
a hash of its output's path relative to the output folder, not from its place in the list, so
it does not depend on where the archive is mounted, and a file added later does not move the
others to another share (a resumed shard finds its done files where it left them). Every file
is in exactly one share: the shares are disjoint and together cover the batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from panini_video.errors import UsageError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N (0-based, as ``JOB_COMPLETION_INDEX`` and ``SLURM_ARRAY_TASK_ID`` count)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None:
        raise UsageError(f"--shard {text!r}: give I/N, the share I (from 0) of N, like 0/4")
    i, n = int(m[1]), int(m[2])
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text}: I must be from 0 to N-1 and N at least 1")
    return i, n


def share_of(key: str, n: int) -> int:
    """Which of ``n`` shares the file named ``key`` is in (sha256, so the same on every machine)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def select_shard(items: Sequence[T], shard: tuple[int, int], key: Callable[[T], str]) -> list[T]:
    """The items of share ``shard`` = (I, N), in their order."""
    i, n = shard
    return [item for item in items if share_of(key(item), n) == i]
