"""Progress bars on stderr, only on a terminal: frames of ``panini-video IN OUT``, bytes of a download."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

from panini_video.download import ProgressCallback
from panini_video.io import VideoInfo


class ProgressBar:
    """Frames done, frames per second and ETA (from the header's frame count, when it has one)."""

    def __init__(self, stream: TextIO | None = None, description: str = "restoring") -> None:
        self.stream = stream or sys.stderr
        self.description = description
        self._bar: tqdm | None = None
        self._done = 0

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
        """A bar only for a person watching: stderr is a terminal and -q was not given."""
        stream = stream or sys.stderr
        return not quiet and bool(getattr(stream, "isatty", lambda: False)())

    def start(self, info: VideoInfo) -> None:
        # a terminal that reports no size (0x0, some CI runners and ptys) would get an empty bar
        sized = min(_terminal_size(self.stream)) > 0
        self._bar = tqdm(
            total=info.frame_count,
            desc=self.description,
            unit="frame",
            file=self.stream,
            dynamic_ncols=sized,
            ncols=None if sized else 80,
            nrows=None if sized else 24,
            smoothing=0.1,
        )

    def update(self, frames_done: int) -> None:
        if self._bar is not None and frames_done > self._done:
            self._bar.update(frames_done - self._done)
            self._done = frames_done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return (0, 0)
    return (size.columns, size.lines)


@contextmanager
def download_progress(label: str, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A byte-count bar for a download on stderr when stderr is a terminal; otherwise no callback."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar = tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
