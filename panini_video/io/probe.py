"""What a video file holds: streams, size, rate, timing, rotation and tags, read with PyAV.

``probe`` also decodes the first video frame, so a file that opens but cannot be decoded, or
whose index points past the end of the file (truncated), is refused before any work starts.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.container

from panini_video.errors import CorruptInputError, InputError, InputNotFoundError, NoVideoStreamError
from panini_video.io.hdr import HdrMetadata, frame_hdr
from panini_video.outputs import file_kind

log = logging.getLogger(__name__)

StreamKind = Literal["video", "audio", "subtitle", "data"]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream of the container.

    extra: per-kind facts (video: width, height, pix_fmt; audio: sample_rate, channels, layout);
    metadata: the stream's tags (language, handler_name, ...).
    """

    index: int
    kind: StreamKind
    codec: str
    time_base: Fraction | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """The facts of a video input that reading and writing need.

    frame_rate: the stream's average rate (FFmpeg ``avg_frame_rate``), else its base rate
    (``r_frame_rate``); for variable-rate video it is only an average, the real timing is each
    frame's pts. base_rate: ``r_frame_rate``. time_base: the video stream's time base.
    rotation: counterclockwise degrees from the display matrix (or the legacy ``rotate`` tag),
    not applied to pixels. duration: seconds of the video stream (else the container), None
    when unknown. frame_count: from the container's header, None when it does not say.
    video_index: index of the video stream used. color_*: FFmpeg's AVCOL_* codes of the video
    (matrix, range, primaries, transfer); 2/0/2/2 mean unspecified. sample_aspect_ratio: the
    pixels' shape (anamorphic video), None when unknown or square. profile: the codec profile
    (``High 4:2:2``, ``HQ``), None when it has none. field_order: the stream's flag
    (``FIELD_ORDER_NAMES``). hdr: the first frame's HDR10 metadata (``io.hdr``), None when none.
    """

    path: Path
    format: str
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    rotation: int = 0
    duration: float | None = None
    frame_count: int | None = None
    streams: tuple[StreamInfo, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    base_rate: Fraction | None = None
    start_time: float | None = None
    codec: str = ""
    pix_fmt: str | None = None
    video_index: int = 0
    color_space: int = 2
    color_range: int = 0
    color_primaries: int = 2
    color_trc: int = 2
    sample_aspect_ratio: Fraction | None = None
    profile: str | None = None
    field_order: str = "unknown"
    hdr: HdrMetadata | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "audio")

    @property
    def video_stream(self) -> StreamInfo:
        return next(s for s in self.streams if s.index == self.video_index)


# the codec's field-order flag (AVFieldOrder) by name: tt/bb top/bottom field first, coded and shown alike
FIELD_ORDER_NAMES = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}

# FFmpeg demuxers that turn text into pictures (its "tty" demuxer takes any .txt, .ans, .nfo, ...
# file and renders the characters): a text file given as the input is a mistake, not a video.
TEXT_FORMATS = frozenset({"tty"})
# elementary streams without a container: no timestamps, and FFmpeg's demuxer assumes 25 fps
# unless told; the rate is in the stream's own header (H.264/HEVC VUI timing), read by the decoder
RAW_FORMATS = frozenset({"h264", "hevc", "m4v", "mpegvideo", "vvc", "cavsvideo"})


def ffmpeg_url(path: str | os.PathLike[str]) -> str:
    """A local path as FFmpeg's file protocol: ``a:b.mp4`` is a file, not protocol ``a``."""
    return "file:" + str(Path(path).absolute())


def open_input(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open a media file with PyAV, turning every way it can fail into a typed input error."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a video file")
    try:
        st = p.stat()
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror or e})") from e
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: is {file_kind(st.st_mode) or 'not a regular file'}, not a video file")
    size = st.st_size
    if size == 0:
        raise CorruptInputError(f"{p}: is empty (0 bytes)")
    try:
        container = av.open(ffmpeg_url(p), mode="r")
    except PermissionError as e:
        raise InputError(f"{p}: cannot be read (permission denied)") from e
    except av.FFmpegError as e:
        raise CorruptInputError(
            f"{p}: not a media file FFmpeg can read, or truncated/corrupt ({_ffmpeg_reason(e)})"
        ) from e
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror or e})") from e
    if container.format.name in TEXT_FORMATS:
        container.close()
        raise CorruptInputError(f"{p}: a text file, not a video (FFmpeg would render its text as frames)")
    return container


def _ffmpeg_reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    log_line = getattr(e, "log", None)  # (level, name, message) of FFmpeg's last log line, if any
    if log_line and len(log_line) == 3 and log_line[2]:
        msg = f"{msg}: {str(log_line[2]).strip()}"
    return msg


def _kind(stream: av.stream.Stream) -> StreamKind:
    t = stream.type
    return t if t in ("video", "audio", "subtitle") else "data"  # type: ignore[return-value]


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    extra: dict[str, Any] = {}
    ctx = stream.codec_context
    if isinstance(stream, av.VideoStream) and ctx is not None:
        extra = {"width": stream.codec_context.width, "height": stream.codec_context.height}
        extra["pix_fmt"] = stream.codec_context.pix_fmt
    elif isinstance(stream, av.AudioStream) and ctx is not None:
        actx = stream.codec_context
        extra = {"sample_rate": actx.sample_rate, "channels": actx.channels, "layout": actx.layout.name}
    if stream.duration is not None and stream.time_base is not None:
        extra["duration"] = float(stream.duration * stream.time_base)
    codec = ctx.name if ctx is not None else (stream.codec.name if stream.codec is not None else "unknown")
    return StreamInfo(
        index=stream.index,
        kind=_kind(stream),
        codec=codec,
        time_base=stream.time_base,
        extra=extra,
        metadata=dict(stream.metadata),
    )


def _rotation_from_tag(tags: dict[str, str]) -> int | None:
    """The legacy ``rotate`` tag is clockwise degrees; we report counterclockwise."""
    raw = next((v for k, v in tags.items() if k.lower() == "rotate"), None)  # Matroska: ROTATE
    if raw is None:
        return None
    try:
        return int(round(-float(raw))) % 360
    except ValueError:
        return None


def _check_index_fits(path: Path, stream: av.video.stream.VideoStream) -> None:
    """A container whose index (mp4 moov) points past the end of the file was cut short."""
    entries = stream.index_entries
    n = len(entries) if entries is not None else 0
    if n == 0:
        return
    last = entries[n - 1]
    end = int(last.pos) + int(last.size)
    size = path.stat().st_size
    if last.pos >= 0 and end > size:
        raise CorruptInputError(
            f"{path}: truncated: its index expects {end} bytes of video data but the file has {size}"
        )


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the facts of a video file; typed errors say what is wrong with which file."""
    p = Path(path)
    with open_input(p) as container:
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        if not videos:
            kinds = ", ".join(sorted({_kind(s) for s in container.streams})) or "no streams"
            raise NoVideoStreamError(f"{p}: has no video stream ({kinds})")
        vs = videos[0]
        _check_index_fits(p, vs)
        order = FIELD_ORDER_NAMES.get(int(vs.codec_context.field_order or 0), "unknown")  # the flag, before decoding
        first = _first_frame(p, container, vs)
        rotation = int(round(first.rotation)) % 360 if first is not None else 0
        if rotation == 0:
            rotation = _rotation_from_tag(dict(vs.metadata)) or 0
        ctx = vs.codec_context
        width, height = ctx.width, ctx.height
        if first is not None:
            width, height = first.width, first.height
        tb = vs.time_base or Fraction(1, 90000)
        base = vs.base_rate or vs.guessed_rate
        rate = vs.average_rate or base or Fraction(25)
        if container.format.name in RAW_FORMATS and ctx.framerate:
            base = rate = Fraction(ctx.framerate)  # the stream header's rate, not the demuxer's 25
        duration: float | None = None
        if vs.duration is not None:
            duration = float(vs.duration * tb)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        start = float(vs.start_time * tb) if vs.start_time is not None else None
        return VideoInfo(
            path=p,
            format=container.format.name,
            width=width,
            height=height,
            frame_rate=Fraction(rate),
            time_base=Fraction(tb),
            rotation=rotation,
            duration=duration,
            frame_count=vs.frames or None,
            streams=tuple(_stream_info(s) for s in container.streams),
            metadata=dict(container.metadata),
            base_rate=Fraction(base) if base else None,
            start_time=start,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt,
            video_index=vs.index,
            color_space=int(first.colorspace if first is not None else ctx.colorspace),
            color_range=int(first.color_range if first is not None else ctx.color_range),
            color_primaries=int(ctx.color_primaries),
            color_trc=int(ctx.color_trc),
            sample_aspect_ratio=_sar(vs),
            profile=str(ctx.profile) if ctx.profile else None,
            field_order=order,
            hdr=frame_hdr(first) if first is not None else None,
        )


def _sar(stream: av.VideoStream) -> Fraction | None:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar != 1 else None


def _is_cover_art(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _first_frame(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    """Decode the first video frame; a file none of whose packets decode is corrupt."""
    frames = container.decode(stream)
    try:
        for frame in frames:
            return frame
    except av.FFmpegError as e:
        raise CorruptInputError(f"{path}: its video cannot be decoded ({_ffmpeg_reason(e)})") from e
    finally:  # closed while the container is still open, not whenever the GC gets to it
        getattr(frames, "close", lambda: None)()
    raise CorruptInputError(f"{path}: its video stream holds no decodable frame")
