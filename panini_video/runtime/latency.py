"""Latency percentiles over a run of any length, in constant memory.

A live run measures each frame's latency (arrival at the source to the end of its encode) and
reports p50, p95 and p99 over the whole run and over the last few seconds. The whole-run figures
come from a histogram with logarithmic buckets (1 % wide, from 0.1 ms to about 3 hours: a run of
days costs the same few kilobytes as a run of seconds, and a percentile is within 1 % of the
exact one); the recent ones from a short window of exact values.
"""

from __future__ import annotations

import math
import threading
from collections import deque

_LO = 1e-4  # seconds: the first bucket's upper edge
_GROWTH = 1.01  # each bucket 1 % wider than the one before
_BUCKETS = int(math.log(1e4 / _LO) / math.log(_GROWTH)) + 2  # up to 10,000 s


class LatencyMeter:
    """Adds latencies (seconds) from one thread and reads percentiles from any."""

    def __init__(self, window: int = 300) -> None:
        self._counts = [0] * _BUCKETS
        self._recent: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0
        self.max = 0.0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        i = 0 if seconds <= _LO else min(_BUCKETS - 1, int(math.log(seconds / _LO) / math.log(_GROWTH)) + 1)
        with self._lock:
            self._counts[i] += 1
            self._recent.append(seconds)
            self.count += 1
            self.total += seconds
            self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) over the whole run, in seconds; None before any value."""
        with self._lock:
            if self.count == 0:
                return None
            rank = max(1, math.ceil(q / 100 * self.count))
            seen = 0
            for i, n in enumerate(self._counts):
                seen += n
                if seen >= rank:
                    return min(self.max, _upper_edge(i))
        return self.max

    def recent(self, q: float) -> float | None:
        """The ``q``-th percentile of the last ``window`` values, exactly; None before any value."""
        with self._lock:
            values = sorted(self._recent)
        if not values:
            return None
        return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]

    def to_dict(self) -> dict[str, float | int | None]:
        """Milliseconds, rounded to 0.1: p50, p95, p99, mean and max over the whole run."""

        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1000, 1)

        mean = self.total / self.count if self.count else None
        return {
            "frames": self.count,
            "p50_ms": ms(self.percentile(50)),
            "p95_ms": ms(self.percentile(95)),
            "p99_ms": ms(self.percentile(99)),
            "mean_ms": ms(mean),
            "max_ms": ms(self.max if self.count else None),
        }


def _upper_edge(i: int) -> float:
    return _LO * _GROWTH ** (i)
