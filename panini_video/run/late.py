"""The latency budget of a live run: a frame too old when it reaches the restorer is not restored.

``LateGate`` wraps the restore (or annotate) stage, in its thread, so the age is read at the
moment the restorer takes the frame (a gate of its own before the restorer's queue would let
frames age there unseen). A frame whose age (now minus its ``arrival`` at the source) is above
``max_latency`` (or would be, once restored: the gate adds what restoring a frame has been
taking lately, a moving average, so the budget holds for the frame's whole way) is either
handed to the restorer with no faces, so it passes straight through and the picture keeps its
rate (``pass``), or dropped (``drop``: the reorder buffer is told, so
the frames after it are not held back). Both are counted. Skipping the restorer's work for late
frames is what lets it catch up: the age of the frames behind them falls back under the budget,
so latency stays bounded however slow the restorer is, at the cost of the faces of the frames it
could not reach in time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

from panini_video.config import LatePolicy
from panini_video.records import FrameItem
from panini_video.runtime.stage import Stage

EMA = 0.2  # weight of the newest restore time in the expected one
FADE = 0.95  # the expected restore time's shrink at each late frame


class LateGate(Stage):
    """``inner`` (the restorer) for frames younger than ``max_latency_s``; the others per ``policy``, counted."""

    def __init__(
        self,
        inner: Stage,
        max_latency_s: float,
        policy: LatePolicy = "pass",
        on_drop: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "restore")
        self.max_latency_s = max_latency_s
        self.policy = policy
        self.on_drop = on_drop
        self.clock = clock
        self.expected_s = 0.0  # what restoring a frame with faces takes (moving average)
        self._timed = 0
        self.passed = 0  # late frames passed on unrestored
        self.dropped = 0  # late frames dropped
        self.faces_skipped = 0  # faces the late frames had

    @property
    def late(self) -> int:
        return self.passed + self.dropped

    @property
    def window(self) -> Any:  # what the memory plan reads of the restorer
        return getattr(self.inner, "window", None)

    def start(self) -> None:
        self.inner.start()

    def process(self, item: Any) -> Iterable[Any]:
        if not isinstance(item, FrameItem) or item.frame.arrival is None:
            return self.inner.process(item)
        start = self.clock()
        if start - item.frame.arrival + self.expected_s <= self.max_latency_s:
            out = self.inner.process(item)
            if item.faces:  # how long restoring a frame takes now, so the next ones are judged by it
                took = self.clock() - start
                self.expected_s = took if self._timed == 0 else (1 - EMA) * self.expected_s + EMA * took
                self._timed += 1
            return out
        self.faces_skipped += len(item.faces)
        # a late frame teaches nothing of the restore time: let the estimate fade, so a restorer
        # that became fast again is tried again instead of every frame being judged late for ever
        self.expected_s *= FADE
        if self.policy == "drop":
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(item.index)
            return ()
        self.passed += 1
        return self.inner.process(dataclasses.replace(item, faces=(), jobs=()) if item.faces else item)

    def flush(self) -> Iterable[Any]:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def late_stats(self) -> dict[str, Any]:
        return {
            "max_latency_ms": round(self.max_latency_s * 1000, 1),
            "policy": self.policy,
            "late_passed": self.passed,
            "late_dropped": self.dropped,
            "faces_skipped": self.faces_skipped,
            "expected_restore_ms": round(self.expected_s * 1000, 1),
        }

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()
