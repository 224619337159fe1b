"""Opening a live input with PyAV: the FFmpeg URL, demuxer and options each kind of input needs.

A live input is opened for low latency (a small probe, corrupt packets dropped, timestamps
generated where missing) and with FFmpeg's own I/O timeouts set, but those
are only a backstop: a blocked ``demux()`` cannot be interrupted from Python (PyAV #351), a dead
RTMP feed never reaches end of stream (#700) and a UDP read can block forever (#325), so the
caller's watchdog on the time since the last packet decides when a connection is dead.
``--input-option KEY=VALUE`` pairs override every default here.

Every message names the input masked (``rtsp://user:***@host/...``): FFmpeg's own error text
quotes the URL, credentials included, so only its reason is kept.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from typing import IO

import av
import av.container

from panini_video.config import LiveConfig
from panini_video.errors import InputError, StallError, UnsupportedInputError
from panini_video.io.urls import LiveInputKind, live_input_kind, mask

log = logging.getLogger(__name__)

PROBE_BYTES = 500_000  # enough for the SPS/PPS and a keyframe of a 1080p stream, far under FFmpeg's 5 MB
PROBE_US = 1_000_000  # one second of analysis instead of FFmpeg's five
# Not ``nobuffer``: with it the packets read while probing are thrown away, and a session starts
# at its keyframe, so the first picture waits a whole GOP (measured over RTSP: 2.9 s instead of
# 0.9 s on a 2 s GOP, and never on a clip with one keyframe). Without it those few packets are
# decoded at once, a burst the drop-oldest queue absorbs. RTSP says its codecs in the SDP, so it
# probes next to nothing.
RTSP_PROBE = {"probesize": "32", "analyzeduration": "0"}


@dataclass(frozen=True, slots=True)
class LiveTarget:
    """What ``av.open`` is given for one live input."""

    url: str  # what FFmpeg opens (``pipe:0`` for standard input); may hold credentials: never log it
    format: str | None  # the demuxer, when it cannot be guessed (v4l2); None: FFmpeg probes
    options: dict[str, str]
    kind: LiveInputKind

    @property
    def can_reconnect(self) -> bool:
        """Standard input is read once: when it ends, or breaks, there is nothing to go back to."""
        return self.kind != "stdin"


def live_target(name: str, config: LiveConfig, options: dict[str, str] | None = None) -> LiveTarget:
    """The URL, demuxer and options for ``name`` (a live URL, ``/dev/videoN`` or ``-``).

    ``options`` (the user's ``--input-option`` pairs) override the defaults key by key.
    """
    kind = live_input_kind(name)
    if kind is None:
        raise InputError(f"{mask(name)}: not a live input (a URL rtsp/rtmp/srt/udp/http(s), /dev/videoN or -)")
    opts = default_options(kind, config)
    opts.update(options or {})
    url, fmt = name, None
    if kind == "stdin":
        url = "pipe:0"
    elif kind == "v4l2":
        fmt = "v4l2"
    return LiveTarget(url=url, format=fmt, options=opts, kind=kind)


def default_options(kind: LiveInputKind, config: LiveConfig) -> dict[str, str]:
    """Low-latency demuxer options, and the FFmpeg timeouts each protocol understands."""
    opts = {
        "fflags": "+genpts+discardcorrupt",
        "probesize": str(PROBE_BYTES),
        "analyzeduration": str(PROBE_US),
    }
    read_us = str(int(config.stall_timeout * 1e6))  # FFmpeg 5+: ``timeout`` in microseconds (was ``stimeout``)
    if kind == "rtsp":
        opts.update(RTSP_PROBE)
        opts["rtsp_transport"] = config.rtsp_transport
        opts["timeout"] = read_us
    elif kind == "rtmp":
        opts["rw_timeout"] = read_us  # the generic AVIO read/write timeout; rtmp has none of its own for reads
    elif kind == "srt":
        opts["timeout"] = read_us
        opts["connect_timeout"] = str(int(config.open_timeout * 1000))  # milliseconds
    elif kind == "udp":
        opts["timeout"] = read_us  # only in read mode; without it a silent socket blocks for ever (PyAV #325)
        opts["overrun_nonfatal"] = "1"  # a burst that overruns the socket buffer drops packets, not the input
        opts["fifo_size"] = "1000000"  # in 188-byte packets: about 1.5 s of a 1 Gbit/s burst
    elif kind == "hls":
        opts["rw_timeout"] = read_us
        opts["reconnect"] = "1"  # the http protocol retries a segment fetch that breaks
        opts["live_start_index"] = "-1"  # start at the newest segment, not three back
    elif kind == "v4l2":
        if config.input_format:
            opts["input_format"] = config.input_format
        if config.input_size:
            opts["video_size"] = config.input_size
        if config.input_fps:
            opts["framerate"] = f"{config.input_fps:g}"
    return opts


def open_live(
    target: LiveTarget, shown: str, *, open_timeout: float, read_timeout: float
) -> av.container.InputContainer:
    """Open the input; every failure is an InputError naming ``shown`` (the masked name) and why."""
    if target.format is not None and target.format not in av.formats_available:
        hint = (
            "; capture with Debian's ffmpeg and pipe it in: ffmpeg -f v4l2 -i /dev/videoN -c:v libx264 "
            "-preset ultrafast -tune zerolatency -f mpegts - | panini-video - OUT"
            if target.format == "v4l2"
            else ""
        )
        raise UnsupportedInputError(
            f"{shown}: this FFmpeg (PyAV {av.__version__}'s) has no {target.format} input "
            f"(PyAV built on a system FFmpeg with libavdevice has it){hint}"
        )
    started = time.monotonic()
    try:
        return av.open(
            target.url,
            mode="r",
            format=target.format,
            options=dict(target.options),
            timeout=(open_timeout, read_timeout),
        )
    except av.ProtocolNotFoundError as e:
        raise UnsupportedInputError(f"{shown}: cannot open: {reason_of(e)}") from None
    except av.FFmpegError as e:
        waited = time.monotonic() - started
        stall = _read_timeout_s(target)
        if stall is not None and waited >= 0.9 * stall:  # FFmpeg's read timeout ended a silent answer
            raise StallError(
                f"{shown}: connected, but no answer within {stall:g} s (stall timeout; FFmpeg: {reason_of(e)})"
            ) from None
        raise InputError(f"{shown}: cannot open: {reason_of(e, open_timeout)}") from None
    except OSError as e:
        raise InputError(f"{shown}: cannot open: {mask(e.strerror or str(e))}") from None


def _read_timeout_s(target: LiveTarget) -> float | None:
    """The FFmpeg read timeout set on ``target`` (``timeout`` / ``rw_timeout``, microseconds), in seconds."""
    value = target.options.get("timeout") if target.kind in ("rtsp", "udp") else target.options.get("rw_timeout")
    try:
        return None if value is None else int(value) / 1e6
    except ValueError:
        return None


def open_live_pipe(
    pipe: IO[bytes], target: LiveTarget, shown: str, *, open_timeout: float, read_timeout: float
) -> av.container.InputContainer:
    """Open MPEG-TS read from ``pipe`` (an SRT relay's output); failures as ``open_live``'s."""
    generic = {k: v for k, v in target.options.items() if k in ("fflags", "probesize", "analyzeduration")}
    try:
        return av.open(pipe, mode="r", format="mpegts", options=generic, timeout=(open_timeout, read_timeout))
    except av.FFmpegError as e:
        raise InputError(f"{shown}: cannot open: {reason_of(e, open_timeout)}") from None
    except OSError as e:
        raise InputError(f"{shown}: cannot open: {mask(e.strerror or str(e))}") from None


def reason_of(e: BaseException, timeout: float | None = None) -> str:
    """Why FFmpeg failed, in words, without the URL FFmpeg quotes (it may hold credentials)."""
    if isinstance(e, av.ProtocolNotFoundError):
        return f"this FFmpeg (PyAV {av.__version__}) has no such protocol (srt needs an FFmpeg built with libsrt)"
    if isinstance(e, av.ExitError):  # PyAV's interrupt callback ran out of time
        return "timed out" + ("" if timeout is None else f" (no answer within {timeout:g} s)")
    code = getattr(e, "errno", None)
    if code == errno.ECONNREFUSED:
        return "connection refused (nothing listening there?)"
    if code in (errno.ETIMEDOUT, errno.EAGAIN):
        return "timed out"
    if isinstance(e, av.HTTPNotFoundError):
        return "not found (404: check the path)"
    if isinstance(e, av.HTTPUnauthorizedError):
        return "unauthorized (401: check the user and password)"
    if isinstance(e, av.HTTPForbiddenError):
        return "forbidden (403)"
    text = getattr(e, "strerror", None) or type(e).__name__
    line = getattr(e, "log", None)  # (level, name, message) of FFmpeg's last log line, if any
    if line and len(line) == 3 and line[2]:
        text = f"{text}: {str(line[2]).strip()}"
    return mask(str(text))
