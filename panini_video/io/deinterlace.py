"""Interlaced and telecined input: detect it, decide what to do, and run FFmpeg's filters on it.

Restoration models were trained on progressive pictures; a combed frame (two fields taken a
field period apart, woven into one picture) would have its combing sharpened into the face. So
the decoded frames pass through FFmpeg filters (PyAV's ``av.filter.Graph``) before anything
else sees them: ``bwdif`` (one frame per frame, or one per field at twice the rate), or, for
film telecined to 29.97i, ``fieldmatch`` + ``decimate`` back to the film's 23.976 frames.

Detection: the stream's own field order (codec parameters) and FFmpeg's ``idet`` over the
opening frames. ``auto`` deinterlaces when idet's multi-frame counts say interlaced, except
when the stream is flagged progressive: a progressive flag is trusted (synthetic or finely
patterned progressive pictures can fool idet, and deinterlacing progressive footage would
soften every pixel), with a warning naming ``--deinterlace bwdif`` when idet disagrees.

The frame rate and time base change with the filter (``bwdif`` halves the time base;
``bwdif-field`` doubles the rate; IVTC gives 4/5 of it), so ``output_info`` is what the sink
must be told, and ``FieldFilter`` stamps its frames in that time base.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.filter

from panini_video.config import DEINTERLACE_MODES, FIELD_ORDERS
from panini_video.errors import UsageError
from panini_video.io.probe import VideoInfo, open_input

log = logging.getLogger(__name__)

IDET_FRAMES = 60  # opening frames idet looks at: about 2 s, enough for its multi-frame verdict to settle
# AVFieldOrder codes: 1 progressive, 2 top coded and shown first, 3 bottom/bottom, 4 top coded first
# shown second (tb), 5 (bt)
_TOP_FIRST = frozenset({"tt", "bt"})  # the field shown first is the top one
_BOTTOM_FIRST = frozenset({"bb", "tb"})


@dataclass(frozen=True, slots=True)
class FieldDetection:
    """What the stream says about its fields, and what idet counted over its opening frames.

    stream_field_order: the codec's flag (progressive, tt, bb, tb, bt, unknown). tff, bff,
    progressive, undetermined: idet's multi-frame counts; repeated_top/_bottom: frames idet saw
    repeat a field of the previous one (telecine's pulldown repeats two fields in five frames).
    """

    stream_field_order: str
    frames: int = 0
    tff: int = 0
    bff: int = 0
    progressive: int = 0
    undetermined: int = 0
    repeated_top: int = 0
    repeated_bottom: int = 0

    @property
    def idet_interlaced(self) -> bool:
        """idet's verdict: more frames looked interlaced than progressive."""
        return self.tff + self.bff > self.progressive

    @property
    def interlaced(self) -> bool:
        """The verdict ``auto`` acts on: idet's, unless the stream is flagged progressive."""
        return self.stream_field_order != "progressive" and self.idet_interlaced

    @property
    def telecine_suspected(self) -> bool:
        """Repeated fields in about 2 of 5 frames: 3:2 pulldown; ``--ivtc`` is the better cure."""
        return self.frames >= 10 and (self.repeated_top + self.repeated_bottom) * 5 >= self.frames

    @property
    def field_order(self) -> str | None:
        """tff or bff: idet's majority when it saw interlacing, else the stream's flag; None: neither says."""
        if self.idet_interlaced and self.tff != self.bff:
            return "tff" if self.tff > self.bff else "bff"
        if self.stream_field_order in _TOP_FIRST:
            return "tff"
        if self.stream_field_order in _BOTTOM_FIRST:
            return "bff"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream_field_order": self.stream_field_order,
            "idet": {
                "frames": self.frames,
                "tff": self.tff,
                "bff": self.bff,
                "progressive": self.progressive,
                "undetermined": self.undetermined,
                "repeated_top": self.repeated_top,
                "repeated_bottom": self.repeated_bottom,
            },
            "interlaced": self.interlaced,
            "telecine_suspected": self.telecine_suspected,
        }


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """What is done to the fields: the filter chain, and how it changes the rate and time base.

    filters: (name, arguments) in order, empty when the frames pass unchanged. rate_factor:
    output frames per input frame (2 for bwdif-field, 4/5 for IVTC). field_order: the parity the
    filters were told. reason: why this was chosen, for the log and the stats.
    """

    mode: str
    filters: tuple[tuple[str, str], ...] = ()
    rate_factor: Fraction = Fraction(1)
    field_order: str | None = None
    ivtc: bool = False
    reason: str = ""

    @property
    def active(self) -> bool:
        return bool(self.filters)

    @property
    def description(self) -> str | None:
        """The chain as FFmpeg's -vf would write it; None when nothing is done."""
        if not self.filters:
            return None
        return ",".join(f"{name}={args}" if args else name for name, args in self.filters)


class IdetCounter:
    """FFmpeg's idet over frames as they are decoded: ``push`` each, then ``result``.

    The pre-pass (``detect``) feeds it the opening frames of its own decode; the reader feeds it
    the frames it decodes anyway when the decision does not wait for it (a stream flagged
    progressive, which ``auto`` trusts: idet then only checks the flag, for a warning).
    """

    def __init__(self, stream: Any, frames: int = IDET_FRAMES) -> None:
        self.frames = frames
        self.seen = 0
        self._graph = av.filter.Graph()
        self._src = self._graph.add_buffer(template=stream)
        idet = self._graph.add("idet")
        self._sink = self._graph.add("buffersink")
        self._src.link_to(idet)
        idet.link_to(self._sink)
        self._graph.configure()
        self._last: av.VideoFrame | None = None
        self._closed = False

    @property
    def done(self) -> bool:
        return self.seen >= self.frames

    def push(self, vf: av.VideoFrame) -> None:
        """One decoded frame (ignored once ``frames`` were seen)."""
        if self.done or self._closed:
            return
        self._src.push(vf)
        self._last = _pull_all(self._sink, self._last)
        self.seen += 1

    def result(self, stream_field_order: str) -> FieldDetection:
        """idet's counts over the frames pushed (the graph is flushed once)."""
        if not self._closed:
            self._closed = True
            self._src.push(None)
            self._last = _pull_all(self._sink, self._last)
        meta = dict(self._last.metadata) if self._last is not None else {}

        def count(key: str) -> int:
            return int(float(meta.get(f"lavfi.idet.{key}", 0)))

        return FieldDetection(
            stream_field_order=stream_field_order,
            frames=self.seen,
            tff=count("multiple.tff"),
            bff=count("multiple.bff"),
            progressive=count("multiple.progressive"),
            undetermined=count("multiple.undetermined"),
            repeated_top=count("repeated.top"),
            repeated_bottom=count("repeated.bottom"),
        )


def detect(info: VideoInfo, frames: int = IDET_FRAMES) -> FieldDetection:
    """Run idet over the first ``frames`` decoded frames of the file ``info`` describes."""
    with open_input(info.path) as container:
        stream = container.streams[info.video_index]
        stream.codec_context.thread_type = "AUTO"
        counter = IdetCounter(stream, frames)
        decoded = container.decode(stream)
        try:
            for vf in decoded:
                counter.push(vf)
                if counter.done:
                    break
        except av.FFmpegError as e:  # the reader says what is wrong with the file; detection works on what it got
            log.debug("%s: idet stopped after %d frames: %s", info.path, counter.seen, e)
        finally:
            getattr(decoded, "close", lambda: None)()
        return counter.result(info.field_order)


def _pull_all(sink: Any, last: av.VideoFrame | None) -> av.VideoFrame | None:
    while True:
        try:
            last = sink.pull()
        except (av.BlockingIOError, av.EOFError):
            return last


def plan(detection: FieldDetection | None, deinterlace: str, field_order: str, ivtc: bool) -> FieldPlan:
    """The filters for these settings and what detection found (None: not detected, e.g. ``off``)."""
    if deinterlace not in DEINTERLACE_MODES:
        raise UsageError(f"--deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, got {deinterlace!r}")
    if field_order not in FIELD_ORDERS:
        raise UsageError(f"--field-order must be one of {', '.join(FIELD_ORDERS)}, got {field_order!r}")
    if ivtc and deinterlace == "bwdif-field":
        raise UsageError(
            "--ivtc gives the film's own frames back; --deinterlace bwdif-field makes one frame per field: "
            "give one of the two"
        )
    order = field_order if field_order != "auto" else (detection.field_order if detection else None)
    parity = order or "tff"  # FFmpeg's own guess when nothing says: top field first
    if ivtc:
        chain: list[tuple[str, str]] = [("fieldmatch", f"order={parity}:combmatch=full")]
        if deinterlace != "off":  # what fieldmatch could not match stays combed: bwdif those frames only
            chain.append(("bwdif", f"mode=send_frame:parity={parity}:deint=interlaced"))
        chain.append(("decimate", ""))
        return FieldPlan("ivtc", tuple(chain), Fraction(4, 5), parity, True, "--ivtc: fieldmatch + decimate")
    if deinterlace == "off":
        return FieldPlan("off", reason="--deinterlace off")
    if deinterlace == "auto":
        if detection is None or not detection.interlaced:
            why = "progressive" if detection is None else _progressive_reason(detection)
            return FieldPlan("off", field_order=order, reason=f"auto: {why}")
        reason = f"auto: idet found {detection.tff + detection.bff} of {detection.frames} frames interlaced"
        mode = "bwdif"
    else:
        mode = deinterlace
        reason = f"--deinterlace {deinterlace}"
    send = "send_field" if mode == "bwdif-field" else "send_frame"
    factor = Fraction(2) if mode == "bwdif-field" else Fraction(1)
    return FieldPlan(mode, (("bwdif", f"mode={send}:parity={parity}:deint=all"),), factor, parity, False, reason)


def _progressive_reason(d: FieldDetection) -> str:
    if d.stream_field_order == "progressive" and d.idet_interlaced:
        return "the stream is flagged progressive (idet disagrees)"
    return f"idet found {d.progressive} of {d.frames} frames progressive"


def output_info(info: VideoInfo, field_plan: FieldPlan) -> VideoInfo:
    """The VideoInfo of the filtered frames: what the sink must encode (rate, time base, count)."""
    if not field_plan.active:
        return info
    rate = info.frame_rate * field_plan.rate_factor
    base = info.base_rate * field_plan.rate_factor if info.base_rate else None
    count = round(info.frame_count * field_plan.rate_factor) if info.frame_count is not None else None
    return dataclasses.replace(
        info, frame_rate=rate, base_rate=base, time_base=output_time_base(info, field_plan), frame_count=count
    )


def output_time_base(info: VideoInfo, field_plan: FieldPlan) -> Fraction:
    """bwdif halves the time base (a field's pts lies halfway); IVTC counts in film frames (1/23.976)."""
    if field_plan.ivtc:
        rate = info.frame_rate * field_plan.rate_factor
        return 1 / rate if rate > 0 else info.time_base
    if field_plan.active:
        return info.time_base / 2
    return info.time_base


class FieldFilter:
    """The plan's filter chain over decoded frames; ``push`` a frame, take the frames out.

    Frames come out stamped in ``time_base`` (the plan's output time base): when FFmpeg's own
    output time base differs, pts are rescaled to it, so the sink and the frames agree.
    """

    def __init__(self, stream: av.VideoStream, info: VideoInfo, field_plan: FieldPlan) -> None:
        ctx = stream.codec_context
        tb = Fraction(stream.time_base) if stream.time_base else info.time_base
        sar = info.sample_aspect_ratio or Fraction(1)
        self.time_base = output_time_base(info, field_plan)
        self.frames_in = 0
        self.frames_out = 0
        self._graph = av.filter.Graph()
        self._src = self._graph.add(
            "buffer",
            video_size=f"{ctx.width}x{ctx.height}",
            pix_fmt=str(int(av.VideoFormat(ctx.pix_fmt or "yuv420p"))),
            time_base=str(tb),
            frame_rate=str(info.frame_rate if info.frame_rate > 0 else Fraction(25)),
            pixel_aspect=f"{sar.numerator}/{sar.denominator}",
        )
        nodes = [self._src]
        for name, args in field_plan.filters:
            nodes.append(self._graph.add(name, args or None))
        self._sink = self._graph.add("buffersink")
        nodes.append(self._sink)
        for a, b in zip(nodes, nodes[1:], strict=False):
            a.link_to(b)
        self._graph.configure()
        self._ended = False

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Feed one decoded frame (None: the end) and return what the filters give out now."""
        if frame is not None:
            self.frames_in += 1
        elif self._ended:
            return []
        else:
            self._ended = True
        self._src.push(frame)
        out: list[av.VideoFrame] = []
        while True:
            try:
                vf = self._sink.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            if vf.pts is not None and vf.time_base is not None and Fraction(vf.time_base) != self.time_base:
                vf.pts = round(vf.pts * Fraction(vf.time_base) / self.time_base)
            out.append(vf)
        self.frames_out += len(out)
        return out
