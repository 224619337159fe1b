"""The stage graph: one thread per stage, bounded queues between, one stop event, one error slot.

``Source -> stage -> ... -> stage -> Sink``: the source is any iterable (iterated in its own
thread), every stage a ``Stage``, the sink a ``Stage`` or a callable taking one item. Each queue
holds at most ``RuntimeConfig.queue_size`` items, so memory stays flat whatever the input's
length. End of stream is a sentinel each stage passes on after its ``flush()``.

Failure: the first exception in any thread is kept, the stop event is set, every blocked ``put``
or ``get`` wakes up within ``POLL_S`` (queue operations use timeouts) and its thread leaves, and
``run()`` re-raises the exception in the caller: a ``PaniniError`` as it is (an ``InputError``
from the reader stays one), anything else wrapped in ``ProcessingError`` with the original as
``__cause__``. A stage stuck inside its own ``process`` cannot be interrupted; ``run()`` waits at
most ``JOIN_GRACE_S`` for it and raises anyway (threads are daemons). The habit of re-raising a
worker's exception in the consumer follows pypeln's thread workers; here the exception object
itself is kept and the stop is an event.

Backpressure: ``block`` waits for room (files: nothing is ever dropped); ``drop-oldest`` applies
to the first queue only (a live source must never wait): when it is full the oldest frame is
dropped, counted and reported to ``on_drop``. Dropping the oldest keeps the frames that remain in
order, so output timestamps stay monotonic.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from panini_video.config import RuntimeConfig
from panini_video.errors import Interrupted, PaniniError, ProcessingError
from panini_video.runtime.stage import Stage
from panini_video.runtime.stats import GraphStats, StageMeter

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a blocked queue operation looks at the stop event
JOIN_GRACE_S = 0.75  # how long run() waits for the threads after a failure


class _EndOfStream:
    def __repr__(self) -> str:
        return "<end of stream>"


END = _EndOfStream()


class _Stopped(Exception):
    """Raised inside a thread when the stop event is seen; the thread leaves quietly."""


class _CallableSink(Stage):
    def __init__(self, fn: Callable[[Any], Any], name: str) -> None:
        self.fn = fn
        self.name = name

    def process(self, item: Any) -> Iterable[Any]:
        self.fn(item)
        return ()


def _stage_name(stage: Any, fallback: str) -> str:
    name = getattr(stage, "name", None)
    return name if isinstance(name, str) and name and name != "stage" else fallback


class Graph:
    """Runs ``source -> stages -> sink`` with a thread each; ``run()`` returns the stats or raises.

    Args:
        source: the items (``Frame``/``FrameItem``); iterated in the source thread.
        stages: the processing stages, in order; each is used by one thread only.
        sink: the last stage (its outputs are discarded) or a callable taking one item.
        config: queue size and backpressure policy.
        on_drop: called in the source thread with each item ``drop-oldest`` drops.
    """

    def __init__(
        self,
        source: Iterable[Any],
        stages: Sequence[Stage],
        sink: Stage | Callable[[Any], Any],
        config: RuntimeConfig | None = None,
        *,
        on_drop: Callable[[Any], None] | None = None,
    ) -> None:
        self.config = config or RuntimeConfig()
        if self.config.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.config.queue_size}")
        if self.config.backpressure not in ("block", "drop-oldest"):
            raise ValueError(f"backpressure must be 'block' or 'drop-oldest', got {self.config.backpressure!r}")
        self.source = source
        self.stages = list(stages)
        self.sink: Stage = sink if isinstance(sink, Stage) else _CallableSink(sink, "sink")
        self.on_drop = on_drop
        self.dropped = 0

        size = self.config.queue_size
        # queues[i] feeds stages[i]; the last one feeds the sink.
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=size) for _ in range(len(self.stages) + 1)]
        names = self._unique_names()
        self._meters = [StageMeter(names[0], "source", 0)]
        self._meters += [StageMeter(n, "stage", size) for n in names[1:-1]]
        self._meters.append(StageMeter(names[-1], "sink", size))

        self._stop = threading.Event()
        self._finished = threading.Event()  # the sink saw end of stream, or something failed
        self._error_lock = threading.Lock()
        self._error: BaseException | None = None
        self._error_stage: str | None = None
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0
        self._t1: float | None = None
        self._completed = False
        self._ran = False
        self.interruption: BaseException | None = None  # the signal a drained run stopped on

    # -- public -------------------------------------------------------------------------------

    def run(
        self,
        progress: Callable[[int], None] | None = None,
        poll_s: float = 0.1,
        *,
        drain: Callable[[], None] | None = None,
        drain_s: float = 10.0,
    ) -> GraphStats:
        """Run to the end; ``progress(items the sink has taken)`` is called from this thread every ``poll_s``.

        Raises the first failure of any stage (see the module docstring); on KeyboardInterrupt
        stops every stage and raises ``Interrupted``. With ``drain`` (a live run), the first
        KeyboardInterrupt instead calls ``drain()`` (the source ends its stream) and waits at
        most ``drain_s`` for the frames in flight to reach the sink, then returns as at the end
        of the input, with the interruption kept in ``interruption``; past ``drain_s`` it stops
        and raises as without ``drain``.
        """
        if self._ran:
            raise RuntimeError("a Graph runs once; build a new one")
        self._ran = True
        self._t0 = time.perf_counter()
        self._start_threads()
        deadline: float | None = None
        while True:
            try:
                while not self._finished.wait(poll_s):
                    if progress is not None:
                        progress(self._meters[-1].items_in)
                    if deadline is not None and time.monotonic() > deadline:
                        log.warning("the frames in flight did not reach the output within %.1f s", drain_s)
                        assert self.interruption is not None
                        raise self.interruption
                    if not any(t.is_alive() for t in self._threads):
                        break  # defensive: every thread left without finishing or failing
                break
            except BaseException as exc:  # KeyboardInterrupt (or SIGTERM turned into one) lands here
                if drain is not None and deadline is None and isinstance(exc, KeyboardInterrupt):
                    self.interruption = exc
                    deadline = time.monotonic() + drain_s
                    log.warning("%s: finishing the frames in flight (at most %.1f s)", exc or "interrupted", drain_s)
                    drain()
                    continue
                self._record(exc, "main")
                self.stop()
                self._join(JOIN_GRACE_S)
                self._t1 = time.perf_counter()
                if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                    raise Interrupted("interrupted; every stage stopped") from exc
                raise
        if self._error is not None:
            self.stop()
        self._join(JOIN_GRACE_S if self._error is not None or deadline is not None else None)
        self._t1 = time.perf_counter()
        if progress is not None:
            progress(self._meters[-1].items_in)
        if self._error is not None:
            raise self._wrapped_error()
        if not self._finished.is_set():
            raise ProcessingError("the stage graph stopped without reaching end of stream")
        self._completed = True
        return self.stats()

    def stop(self) -> None:
        """Ask every thread to leave (safe from any thread)."""
        self._stop.set()
        self._finished.set()

    def stats(self) -> GraphStats:
        """The figures so far (final after ``run()`` returned or raised)."""
        end = self._t1 if self._t1 is not None else time.perf_counter()
        wall = max(end - self._t0, 0.0) if self._t0 else 0.0
        return GraphStats(
            wall_s=wall,
            dropped=self.dropped,
            backpressure=self.config.backpressure,
            completed=self._completed,
            stages=tuple(m.snapshot(wall) for m in self._meters),
        )

    def alive_threads(self) -> list[str]:
        """Names of this graph's threads still running (none once ``run()`` returned, barring a stuck stage)."""
        return [t.name for t in self._threads if t.is_alive()]

    @property
    def error_stage(self) -> str | None:
        """Name of the thread whose exception stopped the graph, if any."""
        return self._error_stage

    # -- threads ------------------------------------------------------------------------------

    def _unique_names(self) -> list[str]:
        raw = ["source"] + [_stage_name(s, f"stage{i}") for i, s in enumerate(self.stages)]
        raw.append(_stage_name(self.sink, "sink"))
        seen: dict[str, int] = {}
        names = []
        for n in raw:
            seen[n] = seen.get(n, 0) + 1
            names.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
        return names

    def _start_threads(self) -> None:
        meters = self._meters
        self._threads.append(
            threading.Thread(target=self._source_loop, args=(meters[0],), name=f"panini-{meters[0].name}", daemon=True)
        )
        for i, stage in enumerate([*self.stages, self.sink]):
            out = self._queues[i + 1] if i < len(self.stages) else None
            t = threading.Thread(
                target=self._stage_loop,
                args=(stage, self._queues[i], out, meters[i + 1]),
                name=f"panini-{meters[i + 1].name}",
                daemon=True,
            )
            self._threads.append(t)
        for t in self._threads:
            t.start()

    def _join(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("thread(s) still busy after stop, left behind: %s", ", ".join(stuck))

    def _record(self, exc: BaseException, where: str) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
                self._error_stage = where
                log.debug("stage %s failed", where, exc_info=exc)
        self.stop()

    def _wrapped_error(self) -> BaseException:
        exc = self._error
        assert exc is not None
        if isinstance(exc, PaniniError):
            return exc
        wrapped = ProcessingError(f"stage '{self._error_stage}' failed: {type(exc).__name__}: {exc}")
        wrapped.__cause__ = exc
        return wrapped

    def _source_loop(self, meter: StageMeter) -> None:
        it = None
        try:
            it = iter(self.source)
            while True:
                if self._stop.is_set():
                    raise _Stopped
                t = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                finally:
                    meter.busy_s += time.perf_counter() - t
                meter.items_out += 1
                self._put_first(item)
            self._put(self._queues[0], END)
        except _Stopped:
            pass
        except BaseException as exc:
            self._record(exc, meter.name)
        finally:
            close = getattr(it, "close", None)  # a generator's cleanup runs in its own thread
            if callable(close):
                try:
                    close()
                except BaseException as exc:
                    self._record(exc, meter.name)

    def _stage_loop(
        self, stage: Stage, inq: queue.Queue[Any], outq: queue.Queue[Any] | None, meter: StageMeter
    ) -> None:
        started = False
        try:
            stage.start()
            started = True
            while True:
                item = self._get(inq, meter)
                if item is END:
                    t = time.perf_counter()
                    outs = list(stage.flush())
                    meter.busy_s += time.perf_counter() - t
                    self._emit(outs, outq, meter)
                    if outq is None:
                        self._finished.set()
                    else:
                        self._put(outq, END)
                    return
                meter.items_in += 1
                t = time.perf_counter()
                outs = list(stage.process(item))
                meter.busy_s += time.perf_counter() - t
                self._emit(outs, outq, meter)
        except _Stopped:
            pass
        except BaseException as exc:
            self._record(exc, meter.name)
        finally:
            if started:
                try:
                    stage.close()
                except BaseException as exc:
                    self._record(exc, meter.name)

    def _emit(self, outs: list[Any], outq: queue.Queue[Any] | None, meter: StageMeter) -> None:
        meter.items_out += len(outs)
        if outq is not None:
            for out in outs:
                self._put(outq, out)

    # -- queue operations that wake up on stop ---------------------------------------------------

    def _get(self, q: queue.Queue[Any], meter: StageMeter) -> Any:
        meter.sample_depth(q.qsize())
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        raise _Stopped

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _put_first(self, item: Any) -> None:
        if self.config.backpressure == "block":
            self._put(self._queues[0], item)
            return
        q = self._queues[0]
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                pass
            try:
                old = q.get_nowait()
            except queue.Empty:
                continue
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(old)
