"""The stage graph with test doubles: order, flush, failures from every position, stop, drops."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from panini_video.config import RuntimeConfig
from panini_video.errors import InputError, Interrupted, ProcessingError
from panini_video.runtime.graph import Graph
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer
from panini_video.runtime.stage import Stage

STOP_BOUND_S = 2.0  # behaviour, not speed: a failure must not leave the caller waiting


class Item:
    """A frame stand-in: an index and a payload."""

    def __init__(self, index: int, value: int | None = None) -> None:
        self.index = index
        self.value = index if value is None else value

    def __repr__(self) -> str:
        return f"Item({self.index}, {self.value})"


class Add(Stage):
    """Adds a constant; records its lifecycle and the thread it ran in."""

    def __init__(self, amount: int, name: str = "add") -> None:
        self.amount = amount
        self.name = name
        self.calls: list[str] = []
        self.threads: set[str] = set()

    def start(self) -> None:
        self.calls.append("start")
        self.threads.add(threading.current_thread().name)

    def process(self, item: Item) -> Iterable[Item]:
        self.threads.add(threading.current_thread().name)
        return [Item(item.index, item.value + self.amount)]

    def flush(self) -> Iterable[Item]:
        self.calls.append("flush")
        return ()

    def close(self) -> None:
        self.calls.append("close")


class HoldAll(Stage):
    """Holds every item and releases them only at flush, plus one extra item."""

    name = "hold"

    def __init__(self) -> None:
        self.held: list[Item] = []

    def process(self, item: Item) -> Iterable[Item]:
        self.held.append(item)
        return ()

    def flush(self) -> Iterable[Item]:
        return [*self.held, Item(len(self.held), -1)]


class RaiseAt(Stage):
    """Raises on the item with index ``at`` (in process), or in flush/start when asked."""

    name = "boom"

    def __init__(self, at: int = -1, where: str = "process", exc: BaseException | None = None) -> None:
        self.at = at
        self.where = where
        self.exc = exc or ValueError("stage exploded")
        self.closed = False

    def start(self) -> None:
        if self.where == "start":
            raise self.exc

    def process(self, item: Item) -> Iterable[Item]:
        if self.where == "process" and item.index == self.at:
            raise self.exc
        return [item]

    def flush(self) -> Iterable[Item]:
        if self.where == "flush":
            raise self.exc
        return ()

    def close(self) -> None:
        self.closed = True


class Collect(Stage):
    """The sink double: keeps what it gets, can raise at an index, counts flush/close."""

    name = "collect"

    def __init__(self, raise_at: int = -1, delay_s: float = 0.0) -> None:
        self.items: list[Item] = []
        self.raise_at = raise_at
        self.delay_s = delay_s
        self.flushed = 0
        self.closed = 0

    def process(self, item: Item) -> Iterable[Any]:
        if item.index == self.raise_at:
            raise OSError("disk full")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.items.append(item)
        return ()

    def flush(self) -> Iterable[Any]:
        self.flushed += 1
        return ()

    def close(self) -> None:
        self.closed += 1


def items(n: int) -> list[Item]:
    return [Item(i) for i in range(n)]


def endless() -> Iterator[Item]:
    i = 0
    while True:
        yield Item(i)
        i += 1


def run_timed(graph: Graph) -> tuple[BaseException, float]:
    t = time.monotonic()
    with pytest.raises(BaseException) as info:
        graph.run()
    return info.value, time.monotonic() - t


def test_items_pass_in_order_through_every_stage() -> None:
    a, b, sink = Add(1, "a"), Add(10, "b"), Collect()
    stats = Graph(items(50), [a, b], sink, RuntimeConfig(queue_size=2)).run()
    assert [i.index for i in sink.items] == list(range(50))
    assert [i.value for i in sink.items] == [i + 11 for i in range(50)]
    assert a.calls == ["start", "flush", "close"] and b.calls == ["start", "flush", "close"]
    assert sink.flushed == 1 and sink.closed == 1
    assert [s.name for s in stats.stages] == ["source", "a", "b", "collect"]
    assert [(s.items_in, s.items_out) for s in stats.stages] == [(0, 50), (50, 50), (50, 50), (50, 0)]
    assert stats.items_in == stats.items_out == 50 and stats.completed and stats.dropped == 0
    # every stage runs in a thread of its own, none in the caller's
    assert len(a.threads) == 1 and a.threads != b.threads
    assert threading.current_thread().name not in a.threads | b.threads


def test_flush_output_is_passed_on_before_the_sentinel() -> None:
    sink = Collect()
    Graph(items(7), [HoldAll(), Add(0)], sink, RuntimeConfig(queue_size=1)).run()
    assert [i.index for i in sink.items] == list(range(8))
    assert sink.items[-1].value == -1  # the flush-only item went through the next stage too


def test_a_callable_sink_and_an_empty_source() -> None:
    got: list[Item] = []
    Graph(items(5), [], got.append).run()
    assert [i.index for i in got] == list(range(5))
    stats = Graph([], [Add(1)], got.append).run()
    assert stats.items_out == 0 and stats.completed


def test_queues_are_bounded_so_the_source_never_runs_ahead() -> None:
    produced = 0
    lead: list[int] = []

    def source() -> Iterator[Item]:
        nonlocal produced
        for i in range(120):
            produced += 1
            yield Item(i)

    class Watch(Stage):
        name = "watch"

        def process(self, item: Item) -> Iterable[Any]:
            time.sleep(0.001)
            lead.append(produced - item.index)
            return ()

    size = 3
    Graph(source(), [Add(0), Add(0)], Watch(), RuntimeConfig(queue_size=size)).run()
    # three queues of 3, one item in each of the two stages, one in the source's hand
    assert max(lead) <= 3 * size + 2 + 1 + 1


def test_a_stage_raising_mid_stream_stops_the_graph_and_reaches_the_caller() -> None:
    boom = RaiseAt(at=30)
    upstream, sink = Add(0, "up"), Collect(delay_s=0.001)
    graph = Graph(endless(), [upstream, boom, Add(0, "down")], sink, RuntimeConfig(queue_size=4))
    exc, elapsed = run_timed(graph)
    assert elapsed < STOP_BOUND_S
    assert isinstance(exc, ProcessingError)
    assert isinstance(exc.__cause__, ValueError) and "stage exploded" in str(exc.__cause__)
    assert "boom" in str(exc) and graph.error_stage == "boom"
    assert boom.closed and "close" in upstream.calls and sink.closed == 1
    assert all(i.index < 30 for i in sink.items)
    assert not graph.stats().completed


@pytest.mark.parametrize("where", ["start", "flush"])
def test_a_stage_failing_in_start_or_flush(where: str) -> None:
    sink = Collect()
    graph = Graph(items(20), [RaiseAt(where=where)], sink, RuntimeConfig(queue_size=2))
    exc, elapsed = run_timed(graph)
    assert elapsed < STOP_BOUND_S and isinstance(exc, ProcessingError) and sink.flushed == 0


def test_a_failing_source_reaches_the_caller() -> None:
    def source() -> Iterator[Item]:
        yield from items(5)
        raise RuntimeError("decoder died")

    sink = Collect()
    exc, elapsed = run_timed(Graph(source(), [Add(0)], sink))
    assert elapsed < STOP_BOUND_S
    assert isinstance(exc, ProcessingError) and isinstance(exc.__cause__, RuntimeError)
    assert "source" in str(exc) and sink.flushed == 0


def test_our_own_errors_are_raised_as_they_are() -> None:
    def source() -> Iterator[Item]:
        yield Item(0)
        raise InputError("corrupt packet at 3.2 s")

    exc, _ = run_timed(Graph(source(), [Add(0)], Collect()))
    assert type(exc) is InputError and "corrupt packet" in str(exc)


def test_a_failing_sink_stops_a_source_blocked_on_a_full_queue() -> None:
    sink = Collect(raise_at=10, delay_s=0.01)
    graph = Graph(endless(), [Add(0), Add(0)], sink, RuntimeConfig(queue_size=2))
    exc, elapsed = run_timed(graph)
    assert elapsed < STOP_BOUND_S
    assert isinstance(exc, ProcessingError) and isinstance(exc.__cause__, OSError)
    assert graph.error_stage == "collect"
    assert not graph.alive_threads()


def test_a_stage_blocked_on_a_full_queue_wakes_up_when_downstream_fails() -> None:
    release = threading.Event()

    class Stuck(Stage):
        """Takes one item, then fails once the upstream queues are certainly full."""

        name = "stuck"

        def process(self, item: Item) -> Iterable[Item]:
            release.wait(0.3)
            raise ValueError("gave up")

    up = Add(0, "up")
    graph = Graph(endless(), [up, Stuck()], Collect(), RuntimeConfig(queue_size=1))
    exc, elapsed = run_timed(graph)
    assert elapsed < STOP_BOUND_S and isinstance(exc.__cause__, ValueError)
    assert up.calls[-1] == "close"  # the blocked stage left its put and closed
    assert not graph.alive_threads()


def test_a_stage_stuck_inside_process_does_not_hang_the_caller() -> None:
    forever = threading.Event()

    class Hang(Stage):
        name = "hang"

        def process(self, item: Item) -> Iterable[Item]:
            forever.wait(10)
            return [item]

    def fail_soon() -> Iterator[Item]:
        yield Item(0)
        yield Item(1)
        raise RuntimeError("source failed while the stage hangs")

    graph = Graph(fail_soon(), [Hang()], Collect(), RuntimeConfig(queue_size=1))
    exc, elapsed = run_timed(graph)
    forever.set()
    assert elapsed < STOP_BOUND_S and isinstance(exc.__cause__, RuntimeError)


def test_keyboard_interrupt_stops_every_stage_and_is_raised() -> None:
    class CtrlC(Stage):
        name = "ctrl-c"

        def process(self, item: Item) -> Iterable[Item]:
            if item.index == 20:
                _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread
            return [item]

    stages = [Add(0, "a"), CtrlC(), Add(0, "b")]
    graph = Graph(endless(), stages, Collect(delay_s=0.001), RuntimeConfig(queue_size=2))
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as info:
        graph.run()
    assert time.monotonic() - t < 5.0
    assert isinstance(info.value, Interrupted)
    assert not graph.alive_threads()
    assert stages[0].calls[-1] == "close" and stages[2].calls[-1] == "close"


def test_drop_oldest_counts_drops_and_keeps_order() -> None:
    source_done, took_first = threading.Event(), threading.Event()
    n, size = 100, 4

    def source() -> Iterator[Item]:
        yield Item(0)
        took_first.wait(5)
        yield from items(n)[1:]
        source_done.set()

    class WaitForSource(Stage):
        """Holds its first item until the source has produced everything: the queue overflows."""

        name = "slow"

        def process(self, item: Item) -> Iterable[Item]:
            if item.index == 0:
                took_first.set()
                source_done.wait(5)
            return [item]

    dropped: list[int] = []
    sink = Collect()
    config = RuntimeConfig(queue_size=size, backpressure="drop-oldest")
    stats = Graph(source(), [WaitForSource()], sink, config, on_drop=lambda it: dropped.append(it.index)).run()
    got = [i.index for i in sink.items]
    # the stage held frame 0; the first queue kept the newest `size` frames
    assert got == [0, *range(n - size, n)]
    assert stats.dropped == len(dropped) == n - 1 - size
    assert sorted(dropped + got) == list(range(n))
    assert stats.items_in == n and stats.items_out == size + 1


def test_block_never_drops() -> None:
    sink = Collect(delay_s=0.002)
    stats = Graph(items(60), [Add(0)], sink, RuntimeConfig(queue_size=1, backpressure="block")).run()
    assert stats.dropped == 0 and [i.index for i in sink.items] == list(range(60))


def test_drops_are_skipped_by_a_reorder_buffer_behind_a_shuffling_stage() -> None:
    source_done = threading.Event()

    def source() -> Iterator[Item]:
        yield from items(60)
        source_done.set()

    class Shuffle(Stage):
        """Emits items in reversed groups of three, like parallel restorers finishing out of order."""

        name = "shuffle"

        def __init__(self) -> None:
            self.group: list[Item] = []

        def process(self, item: Item) -> Iterable[Item]:
            if item.index == 0:
                source_done.wait(5)
            self.group.append(item)
            if len(self.group) < 3:
                return ()
            out, self.group = self.group[::-1], []
            return out

        def flush(self) -> Iterable[Item]:
            return self.group[::-1]

    dropped = DroppedIndices()
    sink = Collect()
    config = RuntimeConfig(queue_size=5, backpressure="drop-oldest")
    stats = Graph(
        source(), [Shuffle(), ReorderBuffer(dropped=dropped)], sink, config, on_drop=lambda it: dropped.add(it.index)
    ).run()
    got = [i.index for i in sink.items]
    assert got == sorted(got) and len(got) == 60 - stats.dropped and stats.dropped > 0
    assert dropped.total == stats.dropped


def test_stats_record_busy_time_and_queue_depth() -> None:
    class Slow(Stage):
        name = "slow"

        def process(self, item: Item) -> Iterable[Item]:
            time.sleep(0.004)
            return [item]

    stats = Graph(items(40), [Add(0, "fast"), Slow()], Collect(), RuntimeConfig(queue_size=3)).run()
    slow = stats.stage("slow")
    assert slow.busy_s >= 40 * 0.004
    assert slow.busy_s > stats.stage("fast").busy_s
    # the queue in front of the bottleneck fills up; it never holds more than its capacity
    assert 0 < slow.queue_depth_max <= 3 and slow.queue_capacity == 3
    data = stats.to_dict()
    assert data["items_in"] == 40 and [s["name"] for s in data["stages"]] == ["source", "fast", "slow", "collect"]
    with pytest.raises(KeyError):
        stats.stage("nope")


def test_duplicate_stage_names_are_made_unique() -> None:
    stats = Graph(items(3), [Add(1), Add(1)], Collect()).run()
    assert [s.name for s in stats.stages] == ["source", "add", "add#2", "collect"]


def test_bad_runtime_config_is_refused() -> None:
    with pytest.raises(ValueError):
        Graph([], [], Collect(), RuntimeConfig(queue_size=0))
    with pytest.raises(ValueError):
        Graph([], [], Collect(), RuntimeConfig(backpressure="newest"))  # type: ignore[arg-type]
