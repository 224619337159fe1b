"""Where a run's frames come from: a ``Source`` (a file; a live URL, device or standard input).

A source is probed when it is made (``info``: size, rate, time base, rotation, audio), so the
run can plan its stages, memory and encoder before anything is decoded; ``frames`` then starts
decoding, in a thread of its own, into a queue of the depth the memory plan chose.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from panini_video.config import IOConfig
from panini_video.io import VideoInfo, VideoReader
from panini_video.io import deinterlace as fields
from panini_video.io.colour import Colour, stream_colour
from panini_video.io.hdr import HdrMetadata
from panini_video.io.probe import probe
from panini_video.records import AudioPacket, Frame

log = logging.getLogger(__name__)


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
    """A video file, decoded by ``VideoReader``; a file that changes while read is an InputError.

    deinterlace, field_order, ivtc: what to do with interlaced or telecined footage (see
    ``io.deinterlace``; the defaults leave the frames as decoded). The decision is made here,
    before any frame is read (idet over the opening frames when it is needed), so ``info``
    already says the rate, time base and frame count of the frames ``frames`` gives out, and
    ``stats`` says what was detected and done. Its colour properties are the resolved ones
    (``io.colour``: untagged ones assumed, ``--assume-*`` applied), which the output is tagged with.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        decode_threads: int = 0,
        deinterlace: str = "off",
        field_order: str = "auto",
        ivtc: bool = False,
        assume_colorspace: str = "auto",
        assume_range: str = "auto",
    ) -> None:
        self._probed = probe(path)
        self.colour: Colour = stream_colour(self._probed, assume_colorspace, assume_range)
        self._threads = decode_threads
        self._reader: VideoReader | None = None
        self._detection: fields.FieldDetection | None = None
        # auto trusts a stream flagged progressive: idet then only checks the flag (for a warning),
        # on the frames the reader decodes anyway, rather than in a decoding pass of its own first
        self._flagged_progressive = deinterlace == "auto" and not ivtc and self._probed.field_order == "progressive"
        if self._flagged_progressive:
            pass
        elif deinterlace == "auto" or ivtc or (deinterlace != "off" and field_order == "auto"):
            self._detection = fields.detect(self._probed)
        self._plan = fields.plan(self._detection, deinterlace, field_order, ivtc)
        if self._flagged_progressive:
            self._plan = dataclasses.replace(self._plan, reason="auto: the stream is flagged progressive")
        # the info says what the frames are: their rate after the field filters, their resolved colour
        c = self.colour
        self._info = dataclasses.replace(
            fields.output_info(self._probed, self._plan),
            color_space=c.matrix,
            color_range=c.range,
            color_primaries=c.primaries,
            color_trc=c.transfer,
        )
        self._log_plan()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], io: IOConfig) -> FileSource:
        """A file source with the run's decoding settings (threads, deinterlace, field order, IVTC)."""
        return cls(
            path,
            decode_threads=io.decode_threads,
            deinterlace=io.deinterlace,
            field_order=io.field_order,
            ivtc=io.ivtc,
            assume_colorspace=io.assume_colorspace,
            assume_range=io.assume_range,
        )

    def _log_plan(self) -> None:
        d, p = self._detection, self._plan
        if p.active:
            log.info(
                "%s: %s (%s); %s fps -> %s fps",
                self.name,
                p.description,
                p.reason,
                self._probed.frame_rate,
                self._info.frame_rate,
            )
        if d is None:
            return
        if not p.active and d.stream_field_order == "progressive" and d.idet_interlaced:
            log.warning(
                "%s: flagged progressive but idet found %d of %d frames interlaced; kept as is "
                "(give --deinterlace bwdif if the picture is combed)",
                self.name,
                d.tff + d.bff,
                d.frames,
            )
        if d.telecine_suspected and not p.ivtc:
            log.warning(
                "%s: idet found repeated fields in %d of %d frames, the mark of telecined film; "
                "--ivtc gives the film frames back",
                self.name,
                d.repeated_top + d.repeated_bottom,
                d.frames,
            )

    @property
    def name(self) -> str:
        return str(self._info.path)

    @property
    def hdr(self) -> HdrMetadata | None:
        """The input's HDR10 static metadata (its first frame's), None when it has none."""
        return self._probed.hdr

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

    @property
    def field_plan(self) -> fields.FieldPlan:
        """What is done to the fields (an inactive plan: nothing)."""
        return self._plan

    def fields_stats(self) -> dict[str, Any]:
        """What was detected and done about interlacing, for the stats and the report."""
        p = self._plan
        out: dict[str, Any] = {
            "mode": p.mode,
            "filter": p.description,
            "field_order": p.field_order,
            "reason": p.reason,
            "frame_rate_in": str(self._probed.frame_rate),
            "frame_rate_out": str(self._info.frame_rate),
        }
        if self._detection is not None:
            out.update(self._detection.as_dict())
        if self._reader is not None and self._reader.filter_stats is not None:
            out.update(self._reader.filter_stats)
        return out

    def colour_stats(self) -> dict[str, Any]:
        """The input's pixel format and the colour its samples were read with (and what was assumed)."""
        c = self.colour
        return {
            "pix_fmt": self._probed.pix_fmt,
            "matrix": c.matrix,
            "range": c.range,
            "primaries": c.primaries,
            "transfer": c.transfer,
            "assumed": list(c.assumed),
            "hdr": None if self.hdr is None else self.hdr.as_dict(),
        }

    def stats(self) -> dict[str, Any]:
        if self._reader is None:
            return {"deinterlace": self.fields_stats(), "colour": self.colour_stats()}
        return {
            "corrupt_frames": self._reader.corrupt_frames,
            "synthesised_pts": self._reader.synthesised_pts,
            "deinterlace": self.fields_stats(),
            "colour": self.colour_stats(),
        }

    def frames(self, queue_size: int) -> Iterator[Frame]:
        if self._reader is not None:
            raise RuntimeError(f"{self.name}: frames() was already called; make a new FileSource")
        self._reader = VideoReader(
            self._probed.path,
            threads=self._threads,
            queue_size=queue_size,
            info=self._probed,
            field_plan=self._plan,
            colour=self.colour,
            on_idet=self._idet_seen if self._flagged_progressive else None,
        )
        return iter(self._reader)

    def _idet_seen(self, counter: fields.IdetCounter) -> None:
        """idet's counts over the opening frames of a stream flagged progressive: warn if it disagrees."""
        self._detection = counter.result("progressive")
        self._log_plan()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class PacedSource(FileSource):
    """A file played at its own rate as a live source (ffmpeg's ``-re``), looped if asked.

    Each frame is released when its time comes (its pts from the first frame's, on the wall
    clock), stamped with its ``arrival``, so the run behaves as with a camera: the graph's
    drop-oldest queue and the latency gate apply, and latency is measured. ``loop`` plays the
    file again and again (pts carry on, one frame duration after the last), for long live tests
    and ``bench live``; ``stop()`` ends the stream at the next frame.
    """

    live = True

    def __init__(
        self, path: str | os.PathLike[str], *, decode_threads: int = 0, loop: bool = False, speed: float = 1.0
    ) -> None:
        super().__init__(path, decode_threads=decode_threads)
        self.loop = loop
        self.speed = speed
        self._stopped = threading.Event()
        self._t0: float | None = None
        self._frames = 0
        self._late = 0

    def frames(self, queue_size: int) -> Iterator[Frame]:
        if self._reader is not None:
            raise RuntimeError(f"{self.name}: frames() was already called; make a new PacedSource")
        return self._paced(queue_size)

    def _paced(self, queue_size: int) -> Iterator[Frame]:
        tb = self._info.time_base
        step = 1 / self._info.frame_rate if self._info.frame_rate > 0 else Fraction(1, 25)
        offset = 0  # pts added to this pass of the file
        index = 0
        self._t0 = time.monotonic()
        while not self._stopped.is_set():
            self._reader = VideoReader(
                self._info.path, threads=self._threads, queue_size=queue_size, info=self._info, colour=self.colour
            )
            first: int | None = None
            last = 0
            for frame in self._reader:
                if first is None:
                    first = frame.pts or 0
                pts = (frame.pts or 0) - first + offset
                due = self._t0 + float(pts * tb) / self.speed
                wait = due - time.monotonic()
                if wait > 0 and self._stopped.wait(wait):
                    break
                if wait < -0.5:
                    self._late += 1
                yield dataclasses.replace(frame, index=index, pts=pts, arrival=time.monotonic())
                self._frames = index = index + 1
                last = pts
                if self._stopped.is_set():
                    break
            self._reader.close()
            if not self.loop or first is None:
                break
            offset = last + max(1, round(step / tb))
        return

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self._stopped.set()
        super().close()

    def stats(self) -> dict[str, Any]:
        up = 0.0 if self._t0 is None else time.monotonic() - self._t0
        return {
            "frames": self._frames,
            "dropped": 0,
            "reconnects": 0,
            "behind_real_time": self._late,
            "uptime_s": round(up, 3),
        }
