"""How deep the graph's queues may be so that the frames in flight stay within a memory budget.

Counting frames is not enough: one 7680x4320 RGB frame is 100 MB, so the default depth of 8 in
each of six queues, plus what the stages hold, is several GB, while at 640x360 it is 50 MB. The
plan counts bytes: the frames every stage holds whatever the queue depth (a detector batch, the
restorer's window, the decoder's and encoder's own frame threads and look-ahead) are fixed; the
queues get what the budget leaves, at least one frame each and at most the configured depth.
The caller (the run's wiring) may shorten the encoder's look-ahead first to make room.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SHARE = 4  # the default budget is this share of the machine's memory (1/4) ...
DEFAULT_FLOOR = 512 * 2**20  # ... but at least this much


def total_memory() -> int | None:
    """Physical memory in bytes, None when the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """A quarter of the machine's memory, at least 512 MiB (2 GiB when the memory is unknown)."""
    total = total_memory()
    if total is None:
        return 4 * DEFAULT_FLOOR
    return max(DEFAULT_FLOOR, total // DEFAULT_SHARE)


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """The queue depth chosen for a budget, and the figures behind it (``--stats-json``).

    frames_fixed: frames held whatever the queue depth (the encoders' included); queues: how many
    queues there are; frames_in_flight: the most frames the run can hold at once with
    ``queue_size``; bytes_in_flight: that many frames' bytes; within_budget: False when even one
    frame per queue does not fit (the run goes on at depth 1, with a warning).
    """

    budget_bytes: int
    frame_bytes: int
    queues: int
    frames_fixed: float
    queue_size: int
    configured_queue_size: int
    encoder_lookahead: int | None = None  # x264's rc-lookahead when shortened for the budget

    @property
    def frames_in_flight(self) -> float:
        return self.frames_fixed + self.queue_size * self.queues

    @property
    def bytes_in_flight(self) -> int:
        return int(self.frames_in_flight * self.frame_bytes)

    @property
    def within_budget(self) -> bool:
        return self.bytes_in_flight <= self.budget_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "frames_in_flight": self.frames_in_flight,
            "bytes_in_flight": self.bytes_in_flight,
            "within_budget": self.within_budget,
        }


def plan_queues(
    budget: int,
    frame_bytes: int,
    queues: int,
    frames_fixed: float,
    queue_size: int,
    *,
    encoder_lookahead: int | None = None,
) -> MemoryPlan:
    """The deepest queues (up to ``queue_size``) whose frames, with the fixed ones, fit ``budget``."""
    if frame_bytes <= 0 or queues <= 0:
        raise ValueError(f"frame_bytes and queues must be positive, got {frame_bytes} and {queues}")
    room = budget / frame_bytes - frames_fixed
    depth = int(room // queues) if room > 0 else 0
    chosen = max(1, min(queue_size, depth))
    plan = MemoryPlan(
        budget_bytes=budget,
        frame_bytes=frame_bytes,
        queues=queues,
        frames_fixed=frames_fixed,
        queue_size=chosen,
        configured_queue_size=queue_size,
        encoder_lookahead=encoder_lookahead,
    )
    if not plan.within_budget:
        log.warning(
            "frames of %.0f MB each need at least %.0f MB in flight; the memory budget is %.0f MB (--max-memory)",
            frame_bytes / 2**20,
            plan.bytes_in_flight / 2**20,
            budget / 2**20,
        )
    elif chosen < queue_size:
        log.info(
            "queues %d frames deep instead of %d: %.0f MB frames within a %.0f MB budget",
            chosen,
            queue_size,
            frame_bytes / 2**20,
            budget / 2**20,
        )
    return plan
