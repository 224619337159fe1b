"""Per-stage figures of one graph run: busy time, items in and out, input-queue depth.

A ``StageMeter`` is written by its stage's thread only (plain attribute updates, no lock) and
read by the main thread for progress; ``GraphStats`` is the frozen report ``--stats-json`` and
``bench pipeline`` read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class StageMeter:
    """Running counters of one stage; turned into ``StageStats`` by ``snapshot``."""

    def __init__(self, name: str, kind: str, queue_capacity: int) -> None:
        self.name = name
        self.kind = kind
        self.queue_capacity = queue_capacity
        self.items_in = 0
        self.items_out = 0
        self.busy_s = 0.0
        self._depth_sum = 0
        self._depth_samples = 0
        self.depth_max = 0

    def sample_depth(self, depth: int) -> None:
        """Record the input queue's depth (sampled each time the stage takes an item)."""
        self._depth_sum += depth
        self._depth_samples += 1
        if depth > self.depth_max:
            self.depth_max = depth

    def snapshot(self, wall_s: float) -> StageStats:
        mean = self._depth_sum / self._depth_samples if self._depth_samples else 0.0
        return StageStats(
            name=self.name,
            kind=self.kind,
            items_in=self.items_in,
            items_out=self.items_out,
            busy_s=self.busy_s,
            busy_share=self.busy_s / wall_s if wall_s > 0 else 0.0,
            queue_capacity=self.queue_capacity,
            queue_depth_mean=mean,
            queue_depth_max=self.depth_max,
        )


@dataclass(frozen=True)
class StageStats:
    """What one stage did during a run.

    busy_s: seconds inside ``process``/``flush`` (for the source: waiting on the iterable);
    busy_share: busy_s over the run's wall time, the stage with the highest share is the
    bottleneck; queue_depth_*: the stage's input queue when it took an item (0 for the source).
    """

    name: str
    kind: str  # source | stage | sink
    items_in: int
    items_out: int
    busy_s: float
    busy_share: float
    queue_capacity: int
    queue_depth_mean: float
    queue_depth_max: int


@dataclass(frozen=True)
class GraphStats:
    """A whole run: wall time, items dropped by backpressure, and each stage in graph order."""

    wall_s: float
    dropped: int
    backpressure: str
    completed: bool  # False when the run failed or was interrupted
    stages: tuple[StageStats, ...] = field(default_factory=tuple)

    @property
    def items_in(self) -> int:
        """Items the source produced."""
        return self.stages[0].items_out if self.stages else 0

    @property
    def items_out(self) -> int:
        """Items the sink consumed."""
        return self.stages[-1].items_in if self.stages else 0

    @property
    def fps(self) -> float:
        """Items through the sink per second of wall time."""
        return self.items_out / self.wall_s if self.wall_s > 0 else 0.0

    def stage(self, name: str) -> StageStats:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = [dataclasses.asdict(s) for s in self.stages]
        data.update(items_in=self.items_in, items_out=self.items_out, fps=self.fps)
        return data
