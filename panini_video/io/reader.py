"""Decode a video file into ``Frame`` records on a thread of its own.

PyAV demuxes and decodes (the codec's own frame/slice threads on top); each frame is handed on
as a ``Picture``, its planes as decoded (no colour conversion; packed formats are unpacked to
their planar twin, ``io.picture``), with the stream's resolved ``Colour``. Frames wait in a
bounded queue, so memory stays flat when the consumer is slower. The first error in the thread
is re-raised to the consumer; ``close`` stops the thread within a fraction of a second even when
the consumer stopped early.

Damage in the input: a frame the decoder could only conceal (FFmpeg marks it corrupt) is kept,
so the frame count and timing stay whole, and counted in ``corrupt_frames`` with a warning; a
packet the decoder refuses outright raises CorruptInputError naming the file and the time,
rather than leaving a silently missing frame.

Interlaced or telecined input: with a ``FieldPlan`` (see ``io.deinterlace``) the decoded frames
pass through its filters (bwdif, or fieldmatch + decimate), so the
consumer only sees progressive frames, counted and stamped as the filters give them out; the
check against the index's frame count is on the decoded frames, which the filters do not change.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from types import TracebackType
from typing import Any

import av

from panini_video.errors import CorruptInputError, InputError, PaniniError
from panini_video.io.colour import Colour, stream_colour
from panini_video.io.deinterlace import FieldFilter, FieldPlan, IdetCounter
from panini_video.io.picture import Picture
from panini_video.io.probe import VideoInfo, _ffmpeg_reason, open_input, probe
from panini_video.records import Frame

log = logging.getLogger(__name__)

_END = object()  # end-of-stream sentinel in the queue
_POLL_S = 0.1  # how often a blocked put/get looks at the stop event


class VideoReader:
    """Iterate the frames of a video file in presentation order.

    threads: the decoder's thread count (0: FFmpeg picks); queue_size: decoded frames held
    ahead of the consumer (more smooths bursts, costs a picture's bytes each). info: the probed
    facts of the file as it is (not as filtered). field_plan: deinterlace/IVTC filters to run
    (None or inactive: frames as decoded); ``filter_stats`` then says frames in and out.
    colour: what the samples mean (None: resolved from the stream's tags, ``stream_colour``).
    on_idet: when given, idet also runs over the opening decoded frames, and this is called with
    its counter once it has seen them (or at the end of a shorter file), in the reader's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int = 0,
        queue_size: int = 8,
        info: VideoInfo | None = None,
        field_plan: FieldPlan | None = None,
        colour: Colour | None = None,
        on_idet: Callable[[IdetCounter], None] | None = None,
    ) -> None:
        self.info: VideoInfo = info if info is not None else probe(path)
        self.colour: Colour = colour if colour is not None else stream_colour(self.info)
        self.path = self.info.path
        self._identity = _file_state(self.path)  # a file that changes while read is refused
        self._threads = threads
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._iterated = False
        self.frames_read = 0  # frames handed to the consumer
        self.synthesised_pts = 0  # frames that came without a pts and got one made up
        self.corrupt_frames = 0  # frames the decoder concealed damage in
        self._decoded = 0
        self._discarded = 0  # packets the container marks as outside its edit list (not shown)
        self._at: float | None = None  # time of the packet being decoded, for error messages
        self._plan = field_plan if field_plan is not None and field_plan.active else None
        self._filter: FieldFilter | None = None
        self._on_idet = on_idet
        self._idet: IdetCounter | None = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated once; open a new one to read again")
        self._iterated = True
        self._thread = threading.Thread(target=self._run, name=f"reader:{self.path.name}", daemon=True)
        self._thread.start()
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._thread is not None and not self._thread.is_alive() and self._queue.empty():
                        raise CorruptInputError(f"{self.path}: the reader thread ended without a word") from None
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.frames_read += 1
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the decoding thread and release the file; safe to call twice."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("reader thread for %s did not stop within 5 s", self.path)

    def _put(self, item: Any) -> bool:
        """Put into the queue, waiting while full; False when asked to stop."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._decode()
        except PaniniError as e:
            self._put(e)
        except av.FFmpegError as e:
            try:
                self._check_unchanged_file()  # cut short while read: say so, not "damaged"
            except InputError as changed:
                self._put(changed)
                return
            self._put(
                CorruptInputError(
                    f"{self.path}: decoding failed after {self._decoded} frames"
                    f"{'' if self._at is None else f' (at {self._at:.3f} s)'}: the file is damaged"
                    f" ({_ffmpeg_reason(e)})"
                )
            )
        except BaseException as e:  # noqa: BLE001 - any failure must reach the consumer
            self._put(e)
        else:
            self._put(_END)

    def _decode(self) -> None:
        info = self.info
        with open_input(self.path) as container:
            stream = container.streams[info.video_index]
            for s in container.streams:  # skip the audio/data packets' work; the writer reads them itself
                if s.index != stream.index:
                    s.discard = av.stream.Discard.all
            ctx = stream.codec_context
            ctx.thread_type = "AUTO"
            ctx.thread_count = self._threads
            tb = Fraction(stream.time_base) if stream.time_base else info.time_base
            if self._plan is not None:
                self._filter = FieldFilter(stream, info, self._plan)
            if self._on_idet is not None:
                self._idet = IdetCounter(stream)
            packets = container.demux(stream)
            try:
                finished = self._decode_packets(packets, tb)
            finally:  # closed while the container is still open, not whenever the GC gets to it
                getattr(packets, "close", lambda: None)()
        if finished:
            self._check_unchanged()
        if self.synthesised_pts:
            log.warning("%s: synthesised pts for %d frames", self.path, self.synthesised_pts)
        if self.corrupt_frames:
            log.warning("%s: %d damaged frame(s) kept as concealed by the decoder", self.path, self.corrupt_frames)

    @property
    def filter_stats(self) -> dict[str, int] | None:
        """Frames into and out of the field filters (None: no filter)."""
        if self._filter is None:
            return None
        return {"frames_in": self._filter.frames_in, "frames_out": self._filter.frames_out}

    def _check_unchanged(self) -> None:
        """The whole file was read: it must be the file that was probed, with every frame its index lists."""
        self._check_unchanged_file()
        expected = self.info.frame_count
        if expected is not None and self._decoded + self._discarded < expected:
            raise InputError(
                f"{self.path}: ended after {self._decoded} of the {expected} frames its index lists; "
                "the output would be short, so none was written"
            )

    def _check_unchanged_file(self) -> None:
        now = _file_state(self.path)
        if now != self._identity:
            raise InputError(
                f"{self.path}: changed while it was read (size {self._identity[0]} -> {now[0]} bytes); "
                "the output would not match it, so none was written. Run again on a file nothing writes to"
            )

    def _decode_packets(self, packets: Iterator[av.Packet], tb: Fraction) -> bool:
        """Decode every packet; False when stopped early."""
        step = _pts_step(self.info.frame_rate, tb)
        last_pts: int | None = None
        index = 0
        out = 0  # frames handed on (after the field filters, when there are any)
        for packet in packets:
            if self._stop.is_set():
                return False
            if packet.is_discard and packet.size:
                self._discarded += 1
            if packet.pts is not None and packet.time_base is not None:
                self._at = float(packet.pts * packet.time_base)
            for vf in packet.decode():
                pts = vf.pts
                if pts is None:
                    pts = (last_pts + step) if last_pts is not None else 0
                    if self.synthesised_pts == 0:
                        log.warning("%s: frame %d has no pts; synthesising monotonic pts", self.path, index)
                    self.synthesised_pts += 1
                if vf.is_corrupt:
                    if self.corrupt_frames == 0:
                        log.warning("%s: frame %d is damaged; kept as the decoder concealed it", self.path, index)
                    self.corrupt_frames += 1
                last_pts = pts
                index += 1
                self._decoded = index
                if self._idet is not None:
                    self._feed_idet(vf)
                if self._filter is None:
                    if not self._put(Frame(index=out, pts=pts, time_base=tb, image=Picture.of(vf, self.colour))):
                        return False
                    out += 1
                    continue
                vf.pts = pts
                for ff in self._filter.push(vf):
                    if not self._put(self._filtered(ff, out)):
                        return False
                    out += 1
        if self._idet is not None:  # a file shorter than idet's look
            self._finish_idet()
        if self._filter is not None:
            for ff in self._filter.push(None):
                if not self._put(self._filtered(ff, out)):
                    return False
                out += 1
        return True

    def _feed_idet(self, vf: av.VideoFrame) -> None:
        assert self._idet is not None
        self._idet.push(vf)
        if self._idet.done:
            self._finish_idet()

    def _finish_idet(self) -> None:
        counter, self._idet = self._idet, None
        if counter is not None and self._on_idet is not None:
            self._on_idet(counter)

    def _filtered(self, vf: av.VideoFrame, index: int) -> Frame:
        assert self._filter is not None
        return Frame(index=index, pts=vf.pts, time_base=self._filter.time_base, image=Picture.of(vf, self.colour))


def _file_state(path: os.PathLike[str] | str) -> tuple[int, int, int, int]:
    """(size, mtime in ns, device, inode): what changes when a file is rewritten, cut or grown."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{path}: cannot be read any more ({e.strerror or e})") from e
    return (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


def _pts_step(rate: Fraction, time_base: Fraction) -> int:
    """One frame's duration in time-base units (at least 1)."""
    if rate <= 0 or time_base <= 0:
        return 1
    return max(1, round(1 / (rate * time_base)))
