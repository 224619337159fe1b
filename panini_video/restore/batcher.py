"""Batching faces across frames and tracks, and the window of frames waiting for their faces.

A restorer that runs one face per forward pass leaves the GPU idle most of the time. Here faces
from consecutive frames (and every track in them) queue in a ``Batcher`` until a batch is full
or its oldest face has waited ``max_wait_ms``; their frames wait in a ``FrameWindow`` until every
face is back, and leave in arrival order (which is index order), so no reorder buffer is needed
behind the restorer. A frame without faces does not skip ahead of an earlier frame that still
waits: it waits behind it, which the max wait bounds.

The stage only acts when an item arrives or at end of stream, so a partial batch waits at most
``max_wait_ms`` plus one frame interval; with a file input the queue is never empty for long.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E")


class Batcher(Generic[T]):
    """A FIFO of items cut into batches of at most ``max_size``.

    Full batches are taken as soon as they exist; the last, partial one once its oldest item has
    waited ``max_wait_s`` or when forced (end of stream, or the frame window is full). Raising
    ``max_size`` keeps a GPU busier and costs memory and latency; raising ``max_wait_s`` fills
    more batches when faces are sparse and costs latency.
    """

    def __init__(self, max_size: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError(f"batch size must be at least 1, got {max_size}")
        if max_wait_s < 0:
            raise ValueError(f"max wait must not be negative, got {max_wait_s}")
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._items: deque[tuple[float, T]] = deque()
        self.batches = 0
        self.items = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        self._items.append((self.clock(), item))

    def oldest_wait(self) -> float:
        """Seconds the oldest queued item has waited (0 when empty)."""
        return self.clock() - self._items[0][0] if self._items else 0.0

    def take(self, force: bool = False) -> Iterator[list[T]]:
        """Yield the batches due now, oldest items first."""
        while len(self._items) >= self.max_size:
            yield self._cut(self.max_size)
        if self._items and (force or self.oldest_wait() >= self.max_wait_s):
            yield self._cut(len(self._items))

    def _cut(self, n: int) -> list[T]:
        batch = [self._items.popleft()[1] for _ in range(n)]
        self.batches += 1
        self.items += n
        return batch

    @property
    def mean_size(self) -> float:
        """Mean batch size so far."""
        return self.items / self.batches if self.batches else 0.0


class FrameWindow(Generic[E]):
    """Frames in flight, released in arrival order once each is done.

    ``is_done(entry)`` says whether an entry may leave; ``wait(entry)`` blocks until it may (used
    when the window is over ``capacity``, to keep memory flat).
    """

    def __init__(self, capacity: int, is_done: Callable[[E], bool], wait: Callable[[E], None]) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.is_done = is_done
        self.wait = wait
        self._entries: deque[E] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) > self.capacity

    def add(self, entry: E) -> None:
        self._entries.append(entry)

    def release(self, block: bool = False) -> list[E]:
        """Entries that may leave now, in order; with ``block``, wait for all of them."""
        out: list[E] = []
        while self._entries:
            head = self._entries[0]
            if not self.is_done(head):
                if not block:
                    break
                self.wait(head)
            out.append(self._entries.popleft())
        return out

    def release_over_capacity(self) -> list[E]:
        """Wait for the oldest entries until the window is back within its capacity."""
        out: list[E] = []
        while len(self._entries) > self.capacity:
            head = self._entries[0]
            if not self.is_done(head):
                self.wait(head)
            out.append(self._entries.popleft())
        return out
