"""The stage protocol: what the graph runs, one thread per stage.

A stage never touches threads or queues: the graph calls ``process`` for each item, then
``flush`` once at end of stream, and passes on whatever they return.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Stage:
    """Base of every stage; subclasses override ``process`` and, if they hold items, ``flush``."""

    name: str = "stage"

    def start(self) -> None:
        """Called once in the stage's own thread before the first item (open devices here)."""

    def process(self, item: Any) -> Iterable[Any]:
        """Return the items to pass on for ``item`` (none, one or several)."""
        raise NotImplementedError

    def flush(self) -> Iterable[Any]:
        """Return the items still held at end of stream."""
        return ()

    def close(self) -> None:
        """Called once when the graph stops, whether it finished or failed."""

    def stats(self) -> dict[str, Any]:
        """The stage's own figures for ``--stats-json`` (none by default)."""
        return {}


def drive(stage: Stage, items: Iterable[Any]) -> list[Any]:
    """Every item through ``stage`` in this thread, as the graph would (start, process, flush, close).

    For code that needs one stage's output as a whole (benches, tools, tests), not for streaming.
    """
    out: list[Any] = []
    stage.start()
    try:
        for item in items:
            out.extend(stage.process(item))
        out.extend(stage.flush())
    finally:
        stage.close()
    return out
