"""Where a run's frames go: a ``Sink`` (a file, several at once; live publishers next).

A sink is planned before any stage is built (``plan``: its encoder opened once with the real
size and options, so bad settings are refused before any work), opened when the run starts,
written frame by frame from the graph's last thread, and then either closed (a file is renamed
into place only then) or aborted (nothing that looks finished is left).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from panini_video.config import IOConfig
from panini_video.io import VideoInfo, VideoWriter
from panini_video.io.encoder import EncoderPlan, plan_encoder, with_lookahead
from panini_video.records import Frame
from panini_video.run.sources import AudioFeed

Audio = Path | AudioFeed | None  # a file to copy the audio from, a live source's packets, or none


class Sink(Protocol):
    """What a run writes to."""

    @property
    def name(self) -> str: ...

    @property
    def frames_written(self) -> int: ...

    def plan(self, size: tuple[int, int], source_pix_fmt: str | None = None) -> list[EncoderPlan]:
        """The encoders it will run for frames of ``size`` (checked now; the memory plan counts them).

        source_pix_fmt: the input's pixel format, which a file keeps by default.
        """
        ...

    def open(self, info: VideoInfo, size: tuple[int, int], audio: Audio, lookahead: int | None) -> None:
        """Start writing frames of ``size``; ``lookahead`` shortens x264's look-ahead (memory).

        ``audio``: a file to copy the audio from (a file run), a live source's ``AudioFeed``, or
        None. A sink whose container cannot take it says so in one warning and goes on without.
        """
        ...

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None:
        """Finish: flush the encoders, and put the result in place."""
        ...

    def abort(self) -> None:
        """Stop and leave nothing that looks finished; safe after close and twice."""
        ...


class FileSink:
    """A video file written by ``VideoWriter`` under a temporary name, renamed when complete."""

    def __init__(self, path: str | os.PathLike[str], config: IOConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or IOConfig()
        self._plan: EncoderPlan | None = None
        self._writer: VideoWriter | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def frames_written(self) -> int:
        return 0 if self._writer is None else self._writer.frames_written

    def plan(self, size: tuple[int, int], source_pix_fmt: str | None = None) -> list[EncoderPlan]:
        self._plan = plan_encoder(self.path, self.config, size, source_pix_fmt)
        return [self._plan]

    def open(self, info: VideoInfo, size: tuple[int, int], audio: Audio, lookahead: int | None) -> None:
        if audio is not None and not isinstance(audio, Path):
            raise TypeError("FileSink copies audio from a file; a live source's audio needs a LiveSink")
        audio_from = audio
        plan = self._plan if self._plan is not None and self._plan.size == size else None
        self._writer = VideoWriter(
            self.path,
            info,
            self.config,
            audio_from=audio_from,
            size=None if size == info.size else size,
            plan=with_lookahead(plan or plan_encoder(self.path, self.config, size, info.pix_fmt), lookahead),
        )

    def write(self, frame: Frame) -> None:
        assert self._writer is not None, "open() first"
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class MultiSink:
    """Several sinks fed the same frames (record a file while publishing, or two encodings)."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        if not sinks:
            raise ValueError("MultiSink needs at least one sink")
        self.sinks = list(sinks)

    @property
    def name(self) -> str:
        return ", ".join(s.name for s in self.sinks)

    @property
    def frames_written(self) -> int:
        return min(s.frames_written for s in self.sinks)

    def plan(self, size: tuple[int, int], source_pix_fmt: str | None = None) -> list[EncoderPlan]:
        return [p for s in self.sinks for p in s.plan(size, source_pix_fmt)]

    def open(self, info: VideoInfo, size: tuple[int, int], audio: Audio, lookahead: int | None) -> None:
        opened: list[Sink] = []
        try:
            for s in self.sinks:
                s.open(info, size, audio, lookahead)
                opened.append(s)
        except BaseException:
            for s in opened:
                s.abort()
            raise

    def write(self, frame: Frame) -> None:
        for s in self.sinks:
            s.write(frame)

    def close(self) -> None:
        """Close each; if one fails, the ones not yet closed are aborted (closed ones stay complete)."""
        for i, s in enumerate(self.sinks):
            try:
                s.close()
            except BaseException:
                for rest in self.sinks[i:]:
                    rest.abort()
                raise

    def abort(self) -> None:
        for s in self.sinks:
            s.abort()
