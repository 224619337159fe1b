"""A live input as a ``Source``: a camera or stream URL, a V4L2 device or standard input.

Each connection demuxes and decodes in a thread of its own; the consumer (the ``frames``
generator) never touches PyAV. It waits on a small queue with timeouts and keeps its own
watchdog on the time since the connection's last packet, because PyAV's reads cannot be
interrupted (PyAV #351), a dead RTMP feed never ends (#700) and a UDP read can block forever
(#325). A connection found dead (stalled, failed, ended) is abandoned, never joined without a
bound: its thread is told to stop and leaves when its read returns. Then, as ``live.reconnect``
allows, a new connection is made after an exponential, jittered backoff that ``stop``/``close``
interrupt.

What the run sees stays continuous across connections: ``index`` counts the frames yielded (a
frame dropped inside the source leaves no gap); ``pts`` are in one fixed time base, follow the
input's timestamps within a connection and restart one frame after the last frame out at a
reconnection, so they only ever increase; ``epoch`` goes up by one at each reconnection
(trackers and the degradation cache start afresh); images keep the first connection's size.
The queue never blocks the demuxer: when it is full the oldest frame goes, and is counted.

Credentials: ``name``, logs, messages and stats all show the URL masked.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
import av.container
import numpy as np

from panini_video.config import FOREVER, LiveConfig
from panini_video.errors import (
    InputError,
    NoVideoStreamError,
    PaniniError,
    SourceLostError,
    StallError,
    UnsupportedInputError,
)
from panini_video.io import StreamInfo, VideoInfo
from panini_video.io.live import LiveTarget, live_target, open_live, open_live_pipe, reason_of
from panini_video.io.srt import SrtInputRelay
from panini_video.io.urls import mask
from panini_video.records import AudioPacket, Frame

log = logging.getLogger(__name__)
_T = TypeVar("_T")

POLL_S = 0.05  # how often the consumer looks at the watchdog while it waits for a frame
HEALTHY_S = 10.0  # a connection that delivered frames this long resets the backoff
JOIN_S = 1.0  # how long close() waits for a connection thread before leaving it to its read timeout
RATE_WINDOW_S = 2.0  # input_fps is measured over this much recent time
DEFAULT_RATE = Fraction(25)  # when a stream does not say its rate
AUDIO_DEPTH = 1024  # packets a subscription holds (about 24 s of 44.1 kHz AAC) before dropping the oldest
JITTER = 0.25  # +-25 % on each backoff delay, so cameras that fell together do not return together
MIN_DELAY_S = 0.01  # the shortest wait between attempts, whatever backoff_initial says
KEEP_TIMES = 100  # figures kept in the stats' lists
LOSSLESS_START = 8  # frames standard input's reader holds before frames() is called


@dataclass(frozen=True, slots=True)
class _Loss:
    """Why a connection was given up: ``kind`` is end, stall (nothing for a while) or error."""

    kind: str
    reason: str
    error: BaseException | None = None


class _Connection:
    """One attempt at the input: its thread, its state and its timestamps' anchor."""

    def __init__(self, number: int) -> None:
        self.number = number  # 0 for the first connection, then one per reconnection attempt
        self.started_at = time.monotonic()
        self.opened_at: float | None = None
        self.last_packet = self.started_at
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None
        self.state = "opening"  # opening, open, ended, failed
        self.error: BaseException | None = None
        self.abandoned = threading.Event()
        self.thread: threading.Thread | None = None
        self.facts: dict[str, Any] = {}
        self.epoch: int | None = None  # given at its first frame
        self.offset = 0  # output pts of the anchor
        self.anchor_s: Fraction | None = None  # input time (seconds) that maps to ``offset``
        self.last_out: int | None = None
        self.frames = 0
        self.frames_out = 0
        self.audio_ok = False
        self.warned_size = False
        self.relay: SrtInputRelay | None = None  # an SRT input's srt-live-transmit


class LiveAudioFeed:
    """A live source's audio, fanned out to each subscriber's bounded buffer (oldest dropped)."""

    def __init__(
        self,
        codec: str,
        sample_rate: int,
        channels: int,
        layout: str,
        time_base: Fraction,
        extradata: bytes | None,
        depth: int = AUDIO_DEPTH,
    ) -> None:
        self.codec = codec
        self.sample_rate = sample_rate
        self.channels = channels
        self.layout = layout
        self.time_base = time_base
        self.extradata = extradata
        self._depth = depth
        self._subs: list[_AudioSubscription] = []
        self._lock = threading.Lock()
        self.packets = 0

    def subscribe(self) -> _AudioSubscription:
        sub = _AudioSubscription(self, self._depth)
        with self._lock:
            self._subs.append(sub)
        return sub

    def publish(self, packet: AudioPacket) -> None:
        """Hand one packet to every subscription; never blocks (a full buffer drops its oldest)."""
        with self._lock:
            subs = list(self._subs)
            self.packets += 1
        for sub in subs:
            sub.put(packet)

    def _unsubscribe(self, sub: _AudioSubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def matches(self, stream: av.AudioStream) -> bool:
        """Whether a reconnected stream's audio can go on in the same feed (same codec and format)."""
        ctx = stream.codec_context
        return (ctx.name, ctx.sample_rate, ctx.channels) == (self.codec, self.sample_rate, self.channels)


class _AudioSubscription:
    """One sink's buffer of a live source's audio packets."""

    def __init__(self, feed: LiveAudioFeed, depth: int) -> None:
        self._feed = feed
        self._packets: collections.deque[AudioPacket] = collections.deque()
        self._depth = depth
        self._lock = threading.Lock()
        self.dropped = 0
        self.closed = False

    def put(self, packet: AudioPacket) -> None:
        with self._lock:
            if self.closed:
                return
            if len(self._packets) >= self._depth:
                self._packets.popleft()
                self.dropped += 1
            self._packets.append(packet)

    def take(self, until: float | None = None) -> list[AudioPacket]:
        with self._lock:
            if until is None:
                out = list(self._packets)
                self._packets.clear()
                return out
            out = []
            while self._packets and self._packets[0].time <= until:
                out.append(self._packets.popleft())
            return out

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._packets.clear()
        self._feed._unsubscribe(self)


@dataclass(frozen=True, slots=True)
class _Decoded:
    pts: int
    image: np.ndarray
    arrival: float
    epoch: int
    conn: _Connection


class LiveSource:
    """A live URL (rtsp, rtmp, srt, udp, http(s) HLS), a V4L2 device or ``-`` (standard input).

    Connected and probed when made (bounded by ``config.open_timeout``; a failure follows the
    reconnect policy, then is a SourceLostError naming the masked URL and why). ``options`` are
    the user's ``--input-option`` pairs, over the low-latency defaults of ``io.live``.
    """

    live = True

    def __init__(
        self,
        name: str,
        config: LiveConfig,
        *,
        options: dict[str, str] | None = None,
        decode_threads: int = 0,
    ) -> None:
        self._shown = mask(name)
        self.config = config
        self._target: LiveTarget = live_target(name, config, options)
        self._budget = config.reconnect if self._target.can_reconnect else 0
        self._threads = decode_threads
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._queue: collections.deque[_Decoded] = collections.deque()
        # standard input is a pipe whose writer waits for us: nothing is dropped, the reader waits
        # when the queue is full (a camera's frames are dropped instead: it cannot wait)
        self._lossless = self._target.kind == "stdin"
        self._capacity = LOSSLESS_START if self._lossless else 1  # before frames(): the newest only
        self._started = False
        self._closed = False
        self._conn: _Connection | None = None
        self._connections = 0
        self._info: VideoInfo | None = None
        self._audio: LiveAudioFeed | None = None
        self._step = 1  # one frame's duration in the output time base
        self._last_out: int | None = None  # pts of the last frame decoded, over every connection
        self._epochs = 0
        self._last_audio: int | None = None
        # the reconnect loop
        self._attempts = 0  # reconnection attempts in the current outage
        self._backoff_step = 0
        self._outage: _Loss | None = None
        # figures
        self._born = time.monotonic()
        self._yielded = 0
        self._decoded = 0
        self._packets = 0
        self._dropped = 0
        self._skipped = 0  # frames replaced by newer ones before frames() was called
        self._decode_errors = 0
        self._pts_fixed = 0
        self._audio_dropped = 0
        self._reconnects = 0
        self._reconnect_attempts = 0
        self._stalls = 0
        self._to_frame: list[float] = []
        self._stall_detect: list[float] = []
        self._arrivals: collections.deque[float] = collections.deque()
        self._probe()

    # ---- the Source protocol

    @property
    def name(self) -> str:
        return self._shown

    @property
    def info(self) -> VideoInfo:
        assert self._info is not None  # set by _probe, or the constructor raised
        return self._info

    @property
    def audio_path(self) -> Path | None:
        return None

    @property
    def audio(self) -> LiveAudioFeed | None:
        return self._audio

    def frames(self, queue_size: int) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError(f"{self._shown}: frames() was already called; make a new LiveSource")
        self._started = True
        with self._cond:
            self._capacity = max(1, queue_size)
            self._cond.notify_all()
        return self._frames()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        self.stop()
        if self._closed:
            return
        self._closed = True
        with self._cond:
            conn, self._conn = self._conn, None
            self._queue.clear()
        if conn is not None:
            self._abandon(conn, join=True)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            now = time.monotonic()
            conn = self._conn
            return {
                "input": self._shown,
                "kind": self._target.kind,
                "frames": self._yielded,
                "decoded": self._decoded,
                "packets": self._packets,
                "dropped": self._dropped,
                "skipped_before_start": self._skipped,
                "decode_errors": self._decode_errors,
                "pts_fixed": self._pts_fixed,
                "audio_packets": 0 if self._audio is None else self._audio.packets,
                "audio_dropped": self._audio_dropped,
                "reconnects": self._reconnects,
                "reconnect_attempts": self._reconnect_attempts,
                "stalls": self._stalls,
                "epoch": max(0, self._epochs - 1),
                "uptime_s": round(now - self._born, 3),
                "connected_s": round(now - conn.opened_at, 3) if conn is not None and conn.opened_at else 0.0,
                "input_fps": round(self._rate(), 3),
                "last_reconnect_to_frame_s": list(self._to_frame),
                "stall_detect_s": list(self._stall_detect),
            }

    # ---- the consumer side

    def _frames(self) -> Iterator[Frame]:
        try:
            while True:
                item = self._next()
                if item is None:
                    return
                frame = Frame(
                    index=self._yielded,
                    pts=item.pts,
                    time_base=self.info.time_base,
                    image=item.image,
                    arrival=item.arrival,
                    epoch=item.epoch,
                )
                self._yielded += 1
                yield frame
        finally:
            self.close()

    def _next(self) -> _Decoded | None:
        """The next decoded frame; None at a normal end or stop; raises when the input is lost."""
        return self._watch(self._pop)

    def _pop(self) -> _Decoded | None:
        """The oldest decoded frame, under the lock (None: none yet); notes a reconnection's first."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        self._cond.notify_all()  # a lossless reader waits for the room
        if item.conn.frames_out == 0:
            item.conn.frames_out = 1
            if item.conn.number > 0 and item.conn.opened_at is not None:
                self._to_frame.append(round(time.monotonic() - item.conn.opened_at, 4))
                del self._to_frame[:-KEEP_TIMES]
        return item

    def _watch(self, ready: Callable[[], _T | None]) -> _T | None:
        """Wait for ``ready()`` (called under the lock) to give something, with the watchdog on the
        connection meanwhile: a dead one is given up and another made (``_lost``). None when
        stopped or at a normal end; raises when the reconnect budget is spent."""
        while True:
            with self._cond:
                if self._stop.is_set():
                    return None
                got = ready()
                if got is not None:
                    return got
                conn = self._conn
                loss = None if conn is None else self._check(conn)
                if loss is None:
                    self._cond.wait(POLL_S)
                    continue
            assert conn is not None
            if not self._lost(conn, loss):
                return None

    def _check(self, conn: _Connection) -> _Loss | None:
        """The watchdog, under the lock: why ``conn`` is dead, or None while it is alive."""
        now = time.monotonic()
        cfg = self.config
        if conn.state == "failed":
            err = conn.error
            kind = "stall" if isinstance(err, TimeoutError) else "error"  # FFmpeg's read timeout: a silent peer
            if kind == "stall":
                self._stalls += 1
            return _Loss(kind, str(err) if isinstance(err, PaniniError) else f"{self._shown}: {err!r}", err)
        if conn.state == "ended":
            return _Loss("end", f"{self._shown}: the stream ended")
        if conn.state == "opening":
            if now - conn.started_at > cfg.open_timeout:
                return _Loss("stall", f"{self._shown}: no answer within {cfg.open_timeout:g} s (open timeout)")
            return None
        if conn.first_frame_at is None and conn.opened_at is not None and now - conn.opened_at > cfg.open_timeout:
            return _Loss(
                "stall",
                f"{self._shown}: opened, but no video frame within {cfg.open_timeout:g} s"
                " (a keyframe interval longer than that needs a longer --open-timeout)",
            )
        silent = now - conn.last_packet
        if silent > cfg.stall_timeout:
            self._stalls += 1
            self._stall_detect.append(round(silent, 4))
            del self._stall_detect[:-KEEP_TIMES]
            return _Loss("stall", f"{self._shown}: no packet for {cfg.stall_timeout:g} s (stall timeout)")
        return None

    def _lost(self, conn: _Connection, loss: _Loss) -> bool:
        """Give ``conn`` up; True when a new connection was started, False at a normal end.

        Raises SourceLostError (StallError for a stall) when the reconnect budget is spent.
        """
        with self._cond:
            if self._conn is conn:
                self._conn = None
        self._abandon(conn, join=False)
        delivered = conn.first_frame_at is not None
        if delivered:  # the outage starts now: a fresh budget
            self._attempts = 0
            self._outage = loss
            if conn.last_frame_at is not None and conn.last_frame_at - conn.first_frame_at >= HEALTHY_S:
                self._backoff_step = 0
        elif self._outage is None:
            self._outage = loss
        first = self._outage or loss
        if self._stop.is_set():
            return False
        if isinstance(loss.error, (UnsupportedInputError, NoVideoStreamError)):
            raise loss.error  # no reconnection can bring a missing protocol or a video stream
        if loss.kind == "end" and self._budget == 0 and delivered:
            log.info("%s: the stream ended", self._shown)
            return False
        if self._budget != FOREVER and self._attempts >= self._budget:
            raise self._give_up(first, loss)
        log.warning("%s; reconnecting (%s)", _text(loss.reason), self._attempt_text())
        delay = self._delay()
        if self._stop.wait(delay):
            return False
        self._attempts += 1
        self._reconnect_attempts += 1
        self._connect()
        return True

    def _give_up(self, first: _Loss, last: _Loss) -> SourceLostError:
        if self._budget == 0:
            tail = "reconnect is off" if self._target.can_reconnect else "standard input cannot be reopened"
        else:
            tail = f"gave up after {self._attempts} reconnection attempt{'s' if self._attempts != 1 else ''}"
            if last is not first:
                tail += f" (the last: {_text(last.reason).removeprefix(self._shown + ': ')})"
        if first.kind == "end" and self._info is None:
            text = f"{self._shown}: ended before its first video frame; {tail}"
        else:
            text = f"{_text(first.reason)}; {tail}"
        cls = StallError if first.kind == "stall" else SourceLostError
        log.debug("%s", text)  # the caller says it (the CLI's error line); logged twice it reads as two faults
        return cls(text)

    def _attempt_text(self) -> str:
        n = self._attempts + 1
        return f"attempt {n}" + ("" if self._budget == FOREVER else f" of {self._budget}")

    def _delay(self) -> float:
        """Exponential backoff with jitter: initial, doubling up to the maximum."""
        cfg = self.config
        initial = max(cfg.backoff_initial, MIN_DELAY_S)  # a refused connect returns at once: never a hot loop
        base = min(max(cfg.backoff_max, MIN_DELAY_S), initial * (2.0**self._backoff_step))
        self._backoff_step = min(self._backoff_step + 1, 60)
        return max(MIN_DELAY_S, min(cfg.backoff_max, base * random.uniform(1.0 - JITTER, 1.0 + JITTER)))

    def _probe(self) -> None:
        """Connect until the first video frame gives the stream's facts (or the budget is spent)."""
        self._connect()
        try:
            if self._watch(lambda: self._info) is None:
                raise InputError(f"{self._shown}: closed before its first video frame")
        except BaseException:
            self.close()
            raise

    # ---- connections

    def _connect(self) -> None:
        conn = _Connection(self._connections)
        self._connections += 1
        thread = threading.Thread(target=self._run, args=(conn,), name=f"live:{conn.number}", daemon=True)
        conn.thread = thread
        with self._cond:
            self._conn = conn
        thread.start()

    def _abandon(self, conn: _Connection, *, join: bool) -> None:
        """Tell a connection's thread to stop; it closes its container when its read returns."""
        conn.abandoned.set()
        if conn.relay is not None:  # its pipe ends, so a read blocked on it returns
            conn.relay.kill()
        if join and conn.thread is not None and conn.thread is not threading.current_thread():
            conn.thread.join(timeout=JOIN_S)
            if conn.thread.is_alive():
                log.debug("%s: connection %d still in a read; left to its timeout", self._shown, conn.number)

    def _run(self, conn: _Connection) -> None:
        """The connection's thread: open, then demux and decode until the end, an error or abandon."""
        cfg = self.config
        timeouts = {"open_timeout": cfg.open_timeout + 1.0, "read_timeout": cfg.stall_timeout * 1.5 + 1.0}
        try:
            if self._target.kind == "srt":  # through srt-live-transmit: PyAV's FFmpeg has no SRT
                conn.relay = SrtInputRelay(self._target.url)
                if conn.abandoned.is_set():
                    conn.relay.kill()
                container = open_live_pipe(conn.relay.stdout, self._target, self._shown, **timeouts)
            else:
                container = open_live(self._target, self._shown, **timeouts)
        except BaseException as e:  # noqa: BLE001 - every failure reaches the consumer
            if conn.relay is not None:
                conn.relay.kill()
                if isinstance(e, InputError) and not isinstance(e, UnsupportedInputError):
                    e = InputError(f"{e} (srt-live-transmit: {conn.relay.said()})")
            self._finish(conn, e)
            return
        try:
            with container:
                self._demux(conn, container)
        except av.FFmpegError as e:
            self._finish(conn, InputError(f"{self._shown}: {reason_of(e)}"))
        except BaseException as e:  # noqa: BLE001
            self._finish(conn, e)
        else:
            self._finish(conn, None)
        finally:
            if conn.relay is not None:
                conn.relay.kill()

    def _demux(self, conn: _Connection, container: av.container.InputContainer) -> None:
        videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not videos:
            raise NoVideoStreamError(f"{self._shown}: has no video stream")
        vs = videos[0]
        audios = list(container.streams.audio)
        ast = audios[0] if audios else None
        ctx = vs.codec_context
        ctx.thread_type = "SLICE"  # frame threads would hold one frame back per thread: latency
        ctx.thread_count = self._threads
        tb = Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        conn.facts = {"format": container.format.name, "time_base": tb, "rate": rate, "stream": vs, "audio": ast}
        with self._cond:
            if conn.abandoned.is_set():
                return
            conn.state = "open"
            conn.opened_at = conn.last_packet = time.monotonic()
            if ast is not None:
                conn.audio_ok = self._audio is None or self._audio.matches(ast)
                if not conn.audio_ok:
                    log.warning("%s: the audio changed at a reconnection; it is left out until the next", self._shown)
            self._cond.notify_all()
        for s in container.streams:
            if s is not vs and s is not ast:
                s.discard = av.stream.Discard.all
        streams = [vs] if ast is None else [vs, ast]
        packets = container.demux(streams)
        try:
            for packet in packets:
                now = time.monotonic()
                conn.last_packet = now
                if conn.abandoned.is_set():
                    return
                self._packets += 1
                if packet.stream is vs or packet.stream.index == vs.index:
                    try:
                        decoded = packet.decode()
                    except av.InvalidDataError:
                        self._decode_errors += 1
                        continue
                    for vf in decoded:
                        self._video(conn, vf)
                elif packet.size and conn.audio_ok:
                    self._audio_packet(conn, packet)
        finally:
            getattr(packets, "close", lambda: None)()

    def _finish(self, conn: _Connection, error: BaseException | None) -> None:
        with self._cond:
            conn.error = error
            conn.state = "ended" if error is None else "failed"
            self._cond.notify_all()

    def _video(self, conn: _Connection, vf: av.VideoFrame) -> None:
        """Convert, timestamp and queue one decoded frame (oldest dropped when full)."""
        arrival = time.monotonic()
        info = self._info
        if info is not None and (vf.width, vf.height) != (info.width, info.height):
            if not conn.warned_size:
                conn.warned_size = True
                log.warning(
                    "%s: the stream is now %dx%d; scaled to %dx%d as it started",
                    self._shown,
                    vf.width,
                    vf.height,
                    info.width,
                    info.height,
                )
            image = vf.reformat(width=info.width, height=info.height, format="rgb24").to_ndarray()
        else:
            image = vf.to_ndarray(format="rgb24")
        with self._cond:
            if conn.abandoned.is_set():
                return
            if self._info is None:
                self._info = self._make_info(conn, vf)
            pts = self._timestamp(conn, vf)
            if conn.first_frame_at is None:
                conn.first_frame_at = arrival
                assert conn.epoch is not None
                if conn.epoch > 0:
                    self._reconnects += 1
                    log.info("%s: back (reconnection %d, epoch %d)", self._shown, self._reconnects, conn.epoch)
            conn.last_frame_at = arrival
            conn.frames += 1
            self._decoded += 1
            self._arrivals.append(arrival)
            while self._arrivals and arrival - self._arrivals[0] > RATE_WINDOW_S:
                self._arrivals.popleft()
            while self._lossless and len(self._queue) >= self._capacity:
                if self._stop.is_set() or conn.abandoned.is_set():
                    return
                conn.last_packet = time.monotonic()  # waiting on the consumer, not on the input: no stall
                self._cond.wait(POLL_S)
            while len(self._queue) >= self._capacity:
                self._queue.popleft()
                if self._started:
                    self._dropped += 1
                else:
                    self._skipped += 1
            self._queue.append(_Decoded(pts, image, arrival, conn.epoch, conn))  # type: ignore[arg-type]
            self._cond.notify_all()

    def _timestamp(self, conn: _Connection, vf: av.VideoFrame) -> int:
        """The frame's pts in the output time base (under the lock); strictly increasing.

        A connection's first frame starts its epoch one frame after the last frame out; within
        it, pts follow the input's, rebased. A frame without pts gets the previous one plus a
        frame; a jump back of more than a second (a timestamp reset) re-anchors the epoch.
        """
        out_tb = self.info.time_base
        if conn.epoch is None:
            conn.epoch = self._epochs
            self._epochs += 1
            conn.offset = 0 if self._last_out is None else self._last_out + self._step
        in_tb = Fraction(vf.time_base) if vf.time_base else conn.facts["time_base"]
        if vf.pts is None:
            pts = conn.offset if conn.last_out is None else conn.last_out + self._step
        else:
            t = vf.pts * in_tb
            if conn.anchor_s is None:  # first timestamp of the epoch (after any frames without one)
                nxt = conn.offset if conn.last_out is None else conn.last_out + self._step
                conn.anchor_s = t - (nxt - conn.offset) * out_tb
            pts = conn.offset + round((t - conn.anchor_s) / out_tb)
            if conn.last_out is not None and pts <= conn.last_out:
                back = (conn.last_out - pts) * out_tb
                nxt = conn.last_out + self._step
                if back > 1:
                    log.warning("%s: timestamps went back %.3f s; re-anchored", self._shown, float(back))
                    conn.anchor_s = t - (nxt - conn.offset) * out_tb
                    pts = nxt
                else:
                    self._pts_fixed += 1
                    pts = conn.last_out + 1
        conn.last_out = pts
        self._last_out = pts
        return pts

    def _audio_packet(self, conn: _Connection, packet: av.Packet) -> None:
        """Copy one audio packet onto the video's clock and hand it to the feed; never blocks."""
        feed = self._audio
        if feed is None or packet.pts is None or packet.time_base is None:
            self._audio_dropped += 1
            return
        with self._cond:
            if conn.abandoned.is_set():
                return
            if conn.anchor_s is None:  # before the epoch's first timed video frame: no clock yet
                self._audio_dropped += 1
                return
            t = packet.pts * Fraction(packet.time_base)
            video_tb = self.info.time_base
            pts = round((conn.offset * video_tb + t - conn.anchor_s) / feed.time_base)
            if pts < 0 or (self._last_audio is not None and pts <= self._last_audio):
                self._audio_dropped += 1
                return
            self._last_audio = pts
        duration = None
        if packet.duration:
            duration = round(packet.duration * Fraction(packet.time_base) / feed.time_base)
        feed.publish(AudioPacket(pts=pts, time_base=feed.time_base, data=bytes(packet), duration=duration))

    def _make_info(self, conn: _Connection, vf: av.VideoFrame) -> VideoInfo:
        """The stream's facts from its first connection and first frame (under the lock)."""
        facts = conn.facts
        vs: av.VideoStream = facts["stream"]
        rate = facts["rate"]
        if not rate:
            log.warning("%s: the stream does not say its frame rate; taking %s fps", self._shown, DEFAULT_RATE)
            rate = DEFAULT_RATE
        tb: Fraction = facts["time_base"]
        self._step = max(1, round(1 / (Fraction(rate) * tb)))
        extra = {"width": vf.width, "height": vf.height, "pix_fmt": vs.codec_context.pix_fmt}
        streams = [StreamInfo(index=vs.index, kind="video", codec=vs.codec_context.name, time_base=tb, extra=extra)]
        ast: av.AudioStream | None = facts["audio"]
        if ast is not None:
            actx = ast.codec_context
            atb = Fraction(ast.time_base) if ast.time_base else Fraction(1, actx.sample_rate or 48000)
            layout = actx.layout.name if actx.layout is not None else ""
            extradata = bytes(actx.extradata) if actx.extradata else None
            self._audio = LiveAudioFeed(actx.name, actx.sample_rate, actx.channels, layout, atb, extradata)
            aextra = {"sample_rate": actx.sample_rate, "channels": actx.channels, "layout": layout}
            streams.append(StreamInfo(index=ast.index, kind="audio", codec=actx.name, time_base=atb, extra=aextra))
        info = VideoInfo(
            path=Path(self._shown),
            format=facts["format"],
            width=vf.width,
            height=vf.height,
            frame_rate=Fraction(rate),
            time_base=tb,
            streams=tuple(streams),
            base_rate=Fraction(vs.base_rate) if vs.base_rate else None,
            codec=vs.codec_context.name,
            pix_fmt=vs.codec_context.pix_fmt,
            video_index=vs.index,
            color_space=int(vf.colorspace),
            color_range=int(vf.color_range),
        )
        log.info(
            "%s: %s %dx%d at %.3f fps%s",
            self._shown,
            info.codec,
            info.width,
            info.height,
            float(rate),
            "" if self._audio is None else f", audio {self._audio.codec} {self._audio.sample_rate} Hz",
        )
        return info

    def _rate(self) -> float:
        a = self._arrivals
        while a and time.monotonic() - a[0] > RATE_WINDOW_S:
            a.popleft()
        if len(a) < 2 or a[-1] <= a[0]:
            return 0.0
        return (len(a) - 1) / (a[-1] - a[0])


def _text(reason: str) -> str:
    return mask(reason)
