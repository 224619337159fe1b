"""The reorder buffer: frames leave in index order whatever order they arrive in.

Several restorers (one per device) may finish frames out of order; the encoder needs them in
order. The buffer holds early frames until the missing ones arrive.

Decisions:
- A frame index dropped by ``drop-oldest`` backpressure is skipped: the graph records each
  dropped index in a shared ``DroppedIndices`` that the buffer reads. With one source, the drop
  is recorded before any later frame leaves the first queue, so a skip is never missed; at worst
  it is noticed one item later.
- A gap that is not a recorded drop means a stage lost a frame. Emitting past it would silently
  shorten the video and move every later frame against the audio, so it is an error: at end of
  stream (``flush``) when frames are still held, and as soon as more than ``capacity`` frames wait
  behind the gap (the buffer is bounded, like every queue of the graph).
- An index that arrives twice, or after the buffer has moved past it, is an error too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from panini_video.errors import ProcessingError
from panini_video.runtime.stage import Stage

log = logging.getLogger(__name__)


def _index_of(item: Any) -> int:
    return int(item.index)


class DroppedIndices:
    """Thread-safe set of the frame indices that backpressure dropped (written by the source side)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indices: set[int] = set()
        self._total = 0

    def add(self, index: int) -> None:
        with self._lock:
            self._indices.add(index)
            self._total += 1

    def take(self, index: int) -> bool:
        """True (and forget it, so a long live stream does not grow the set) if ``index`` was dropped."""
        with self._lock:
            if index in self._indices:
                self._indices.remove(index)
                return True
            return False

    def __contains__(self, index: object) -> bool:
        with self._lock:
            return index in self._indices

    @property
    def total(self) -> int:
        """Every drop recorded so far, taken or not."""
        with self._lock:
            return self._total


class ReorderBuffer(Stage):
    """Releases items in increasing index order, skipping dropped indices.

    Args:
        capacity: most items held behind a gap before the buffer gives up (memory bound);
            raise it when many restorers run in parallel.
        dropped: indices the graph dropped (``drop-oldest``); None for ``block``.
        key: the index of an item (default: ``item.index``, which Frame and FrameItem have).
        start: the first index expected.
    """

    name = "reorder"

    def __init__(
        self,
        capacity: int = 256,
        dropped: DroppedIndices | None = None,
        key: Callable[[Any], int] = _index_of,
        start: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.dropped = dropped
        self.key = key
        self.next_index = start
        self.skipped = 0
        self._held: dict[int, Any] = {}

    @property
    def held(self) -> int:
        """Items waiting for an earlier index."""
        return len(self._held)

    def process(self, item: Any) -> Iterable[Any]:
        index = self.key(item)
        if index < self.next_index or index in self._held:
            raise ProcessingError(
                f"reorder buffer: frame {index} arrived twice or too late (next expected: {self.next_index})"
            )
        self._held[index] = item
        out = self._release()
        if len(self._held) > self.capacity:
            raise ProcessingError(
                f"reorder buffer: frame {self.next_index} has not arrived while {len(self._held)} later "
                f"frames wait (capacity {self.capacity}); a stage lost or held back a frame"
            )
        return out

    def flush(self) -> Iterable[Any]:
        out = self._release()
        if self._held:
            missing = [i for i in range(self.next_index, max(self._held)) if i not in self._held]
            shown = ", ".join(str(i) for i in missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise ProcessingError(
                f"reorder buffer: frame(s) {shown} never arrived; {len(self._held)} later frames were held "
                "at end of stream"
            )
        if self.skipped:
            log.info("reorder buffer skipped %d dropped frame(s)", self.skipped)
        return out

    def _release(self) -> list[Any]:
        out: list[Any] = []
        while True:
            if self.next_index in self._held:
                out.append(self._held.pop(self.next_index))
            elif self.dropped is not None and self.dropped.take(self.next_index):
                self.skipped += 1
            else:
                return out
            self.next_index += 1
