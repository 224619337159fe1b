"""A live run's health: one line every few seconds for the operator, the totals for the report.

The line (``--stats-every S``) reads, for the last interval: frames in and out per second, then
the run's totals of frames dropped (by the source, the graph's drop-oldest queue, the latency
gate and the sinks), frames late (past ``--max-latency`` at the restorer), the latency p95 of the
last few hundred frames, the source's reconnects and the uptime. ``totals()`` is what
``--stats-json`` keeps under ``live``. Every name in it is masked (no credentials).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from panini_video.run.late import LateGate
from panini_video.runtime.graph import Graph
from panini_video.runtime.latency import LatencyMeter


class LiveMonitor:
    """Collects a live run's figures from its source, graph, latency gate and sinks."""

    def __init__(self, source: Any, sinks: Sequence[Any], latency: LatencyMeter, gate: LateGate | None = None) -> None:
        self.source = source
        self.sinks = list(sinks)
        self.latency = latency
        self.gate = gate
        self.graph: Graph | None = None
        self.t0 = time.monotonic()
        self._last = (self.t0, 0, 0)  # time, frames in, frames out at the last line
        self.stopped_by: str | None = None

    def _counts(self) -> tuple[int, int, int]:
        """(frames into the graph, frames out of it, dropped by the graph's first queue)."""
        if self.graph is None:
            return 0, 0, 0
        stats = self.graph.stats()
        return stats.stages[0].items_out, stats.stages[-1].items_in, stats.dropped

    def dropped(self) -> dict[str, int]:
        source = int(self.source.stats().get("dropped", 0) or 0)
        graph = self._counts()[2]
        gate = self.gate.dropped if self.gate is not None else 0
        sinks = sum(int(_sink_stats(s).get("dropped", 0) or 0) for s in self.sinks)
        return {"source": source, "queue": graph, "late": gate, "sinks": sinks, "total": source + graph + gate + sinks}

    def line(self) -> str:
        now = time.monotonic()
        frames_in, frames_out, _ = self._counts()
        t, last_in, last_out = self._last
        dt = max(now - t, 1e-9)
        self._last = (now, frames_in, frames_out)
        p95 = self.latency.recent(95)
        source = self.source.stats()
        return (
            f"live: in {(frames_in - last_in) / dt:.1f} fps, out {(frames_out - last_out) / dt:.1f} fps, "
            f"dropped {self.dropped()['total']}, late {self.gate.late if self.gate is not None else 0}, "
            f"p95 {'-' if p95 is None else f'{p95 * 1000:.0f} ms'}, "
            f"reconnects {int(source.get('reconnects', 0) or 0)}, up {_duration(now - self.t0)}"
        )

    def totals(self) -> dict[str, Any]:
        frames_in, frames_out, _ = self._counts()
        return {
            "uptime_s": round(time.monotonic() - self.t0, 3),
            "frames_in": frames_in,
            "frames_out": frames_out,
            "dropped": self.dropped(),
            "late": None if self.gate is None else self.gate.late_stats(),
            "latency": self.latency.to_dict(),
            "source": self.source.stats(),
            "sinks": [{"name": s.name, **_sink_stats(s)} for s in self.sinks],
            "stopped_by": self.stopped_by,
        }


def _sink_stats(sink: Any) -> dict[str, Any]:
    stats = getattr(sink, "stats", None)
    return dict(stats()) if callable(stats) else {"frames": sink.frames_written}


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
