"""Where a run's frames come from: a ``Source`` (a file; a live URL, device or standard input).

A source is probed when it is made (``info``: size, rate, time base, rotation, audio), so the
run can plan its stages, memory and encoder before anything is decoded; ``frames`` then starts
decoding, in a thread of its own, into a queue of the depth the memory plan chose.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from panini_video.io import VideoInfo, VideoReader
from panini_video.io.probe import probe
from panini_video.records import AudioPacket, Frame


class AudioSubscription(Protocol):
    """One sink's view of a live source's audio: every packet, once, in order."""

    def take(self, until: float | None = None) -> list[AudioPacket]:
        """The packets waiting with ``time <= until`` seconds (None: all waiting); never blocks."""
        ...

    def close(self) -> None: ...


class AudioFeed(Protocol):
    """A live source's audio: what its stream is, and packets for each sink that subscribes.

    The packets' pts are on the video frames' clock (rebased alike across reconnections). A
    subscription's buffer is bounded (the oldest packets go when a sink falls far behind).
    """

    codec: str  # FFmpeg codec name (aac, opus, mp3, pcm_s16le, ...)
    sample_rate: int
    channels: int
    layout: str  # FFmpeg layout name (stereo, mono, ...)
    time_base: Fraction
    extradata: bytes | None  # the codec's global header (AAC AudioSpecificConfig), when it has one

    def subscribe(self) -> AudioSubscription: ...


class Source(Protocol):
    """What a run reads: its facts up front, then its frames once."""

    @property
    def name(self) -> str:
        """How logs and the report name it (a path; a URL with its credentials masked)."""
        ...

    @property
    def info(self) -> VideoInfo: ...

    @property
    def live(self) -> bool:
        """A live source may drop frames under backpressure; a file never does."""
        ...

    @property
    def audio_path(self) -> Path | None:
        """Where a file sink copies the audio from (None: no file to copy it from)."""
        ...

    @property
    def audio(self) -> AudioFeed | None:
        """A live source's audio packets (None: none, or a file: see ``audio_path``)."""
        ...

    def frames(self, queue_size: int) -> Iterator[Frame]:
        """Start decoding; the frames in presentation order. Called once."""
        ...

    def stop(self) -> None:
        """Ask ``frames`` to end soon, as at the end of the input (a live run's graceful stop)."""
        ...

    def stats(self) -> dict[str, Any]:
        """The source's own figures (a live one: reconnects, stalls, dropped, uptime)."""
        ...

    def close(self) -> None:
        """Stop decoding and release the input; safe to call twice."""
        ...


class FileSource:
    """A video file, decoded by ``VideoReader``; a file that changes while read is an InputError."""

    live = False

    def __init__(self, path: str | os.PathLike[str], *, decode_threads: int = 0) -> None:
        self._info = probe(path)
        self._threads = decode_threads
        self._reader: VideoReader | None = None

    @property
    def name(self) -> str:
        return str(self._info.path)

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def audio_path(self) -> Path | None:
        return self._info.path

    @property
    def audio(self) -> AudioFeed | None:
        return None

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def stats(self) -> dict[str, Any]:
        if self._reader is None:
            return {}
        return {"corrupt_frames": self._reader.corrupt_frames, "synthesised_pts": self._reader.synthesised_pts}

    def frames(self, queue_size: int) -> Iterator[Frame]:
        if self._reader is not None:
            raise RuntimeError(f"{self.name}: frames() was already called; make a new FileSource")
        self._reader = VideoReader(self._info.path, threads=self._threads, queue_size=queue_size, info=self._info)
        return iter(self._reader)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
