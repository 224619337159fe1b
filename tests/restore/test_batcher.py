"""Batcher (size and max wait) and FrameWindow (arrival order, bounded)."""

from __future__ import annotations

import pytest

from panini_video.restore.batcher import Batcher, FrameWindow


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_full_batches_leave_at_once_partial_after_max_wait() -> None:
    clock = Clock()
    b: Batcher[int] = Batcher(3, 0.05, clock)
    for i in range(7):
        b.add(i)
    assert list(b.take()) == [[0, 1, 2], [3, 4, 5]]
    assert list(b.take()) == []  # 6 has not waited yet
    clock.t = 0.049
    assert list(b.take()) == []
    clock.t = 0.05
    assert list(b.take()) == [[6]]
    assert (b.batches, b.items, b.mean_size) == (3, 7, pytest.approx(7 / 3))


def test_force_takes_the_partial_batch() -> None:
    b: Batcher[str] = Batcher(4, 10.0, Clock())
    b.add("a")
    b.add("b")
    assert list(b.take()) == []
    assert list(b.take(force=True)) == [["a", "b"]]
    assert len(b) == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(0, 0.1)
    with pytest.raises(ValueError):
        Batcher(1, -1.0)


def test_window_keeps_arrival_order() -> None:
    done: set[int] = set()
    waited: list[int] = []

    def wait(e: int) -> None:
        waited.append(e)
        done.add(e)

    w: FrameWindow[int] = FrameWindow(3, lambda e: e in done, wait)
    for e in range(5):
        w.add(e)
    done.update({1, 2})  # 0 still waits: nothing may leave before it
    assert w.release() == []
    done.add(0)
    assert w.release() == [0, 1, 2]
    assert not w.full
    for e in range(5, 9):
        w.add(e)
    assert w.full  # 6 entries over a capacity of 3
    assert w.release_over_capacity() == [3, 4, 5]
    assert waited == [3, 4, 5]
    assert w.release(block=True) == [6, 7, 8]
