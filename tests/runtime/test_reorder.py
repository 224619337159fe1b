"""The reorder buffer: index order out, drops skipped, gaps and duplicates refused."""

from __future__ import annotations

import random

import pytest

from panini_video.errors import ProcessingError
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer


class Item:
    def __init__(self, index: int) -> None:
        self.index = index


def feed(buffer: ReorderBuffer, order: list[int]) -> list[int]:
    out: list[int] = []
    for i in order:
        out += [it.index for it in buffer.process(Item(i))]
    out += [it.index for it in buffer.flush()]
    return out


def test_any_arrival_order_leaves_in_index_order() -> None:
    order = list(range(200))
    random.Random(7).shuffle(order)
    buffer = ReorderBuffer(capacity=200)
    assert feed(buffer, order) == list(range(200))
    assert buffer.held == 0


def test_items_leave_as_soon_as_the_gap_fills() -> None:
    buffer = ReorderBuffer()
    assert list(buffer.process(Item(1))) == []
    assert list(buffer.process(Item(2))) == []
    assert [it.index for it in buffer.process(Item(0))] == [0, 1, 2]
    assert [it.index for it in buffer.process(Item(3))] == [3]


def test_dropped_indices_are_skipped_even_when_recorded_late() -> None:
    dropped = DroppedIndices()
    buffer = ReorderBuffer(dropped=dropped)
    dropped.add(0)
    assert [it.index for it in buffer.process(Item(1))] == [1]
    assert list(buffer.process(Item(3))) == []  # 2 not known as dropped yet: wait
    dropped.add(2)
    dropped.add(4)
    assert [it.index for it in buffer.process(Item(5))] == [3, 5]
    assert buffer.skipped == 3 and dropped.total == 3 and 2 not in dropped  # taken, forgotten


def test_a_gap_that_never_fills_is_an_error_at_end_of_stream() -> None:
    buffer = ReorderBuffer()
    with pytest.raises(ProcessingError, match=r"frame\(s\) 2, 4 never arrived"):
        feed(buffer, [0, 1, 3, 5])


def test_the_buffer_is_bounded() -> None:
    buffer = ReorderBuffer(capacity=4)
    for i in range(1, 5):
        assert list(buffer.process(Item(i))) == []
    with pytest.raises(ProcessingError, match="frame 0 has not arrived"):
        buffer.process(Item(5))


@pytest.mark.parametrize("order", [[0, 0], [0, 1, 0], [2, 2]])
def test_duplicates_and_late_items_are_refused(order: list[int]) -> None:
    with pytest.raises(ProcessingError, match="twice or too late"):
        feed(ReorderBuffer(), order)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReorderBuffer(capacity=0)
