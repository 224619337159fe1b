"""A live publisher: frames encoded as low-latency H.264 and sent to a server, or recorded while live.

``LiveSink(target, io, live)`` takes ``rtsp://``/``rtsps://`` (the RTSP muxer, publishing over
TCP), ``rtmp://`` (FLV), ``udp://`` and ``srt://`` (MPEG-TS), or a file path (a recording).

Connecting: ``open`` connects before the run starts, so a server that is not there is an
``OutputError`` at once, naming the masked URL and the reason. PyAV passes no I/O timeout to an
output's connection (its ``timeout`` applies to inputs only), so each connection attempt runs in
the sink's own thread and ``open`` waits for it at most ``live.open_timeout`` seconds. UDP is
connectionless: nothing can be checked, and a log line says so. PyAV's FFmpeg has no SRT, so SRT
goes through Debian's ``srt-live-transmit`` (srt-tools), fed MPEG-TS on a pipe; its "connected"
line is the check.

Sending: ``write`` hands the frame to the sink's thread, which encodes and muxes it (a slow
network never holds the graph: a hand-over that waits longer than ``open_timeout`` counts the
connection as stuck). When the server drops (a mux error, the relay gone), the run goes on: the
thread closes the broken connection and reconnects with exponential backoff and jitter
(``live.backoff_initial`` doubling to ``live.backoff_max``, ``live.reconnect`` attempts, -1 for
ever); frames arriving meanwhile are dropped and counted; the first frame after a reconnection
is a keyframe and timestamps go on from where they were. When the attempts are spent, ``write``
raises ``OutputError``.

Recording: the file is written under the project's temporary name (``outputs.temp_path``) and
renamed into place by ``close``. Its format survives a killed process: ``.mp4``/``.m4v``/``.mov``
are fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``: every keyframe starts a
fragment that players read without an index), ``.mkv`` is Matroska (clusters written as they
come), ``.ts`` is MPEG-TS. ``abort`` keeps what was recorded (a live recording is never
"complete": hours of it are worth more than a rule that it looks unfinished): it finishes the
file and renames it into place with a warning, and removes it only when no frame was written.
A recording left by a SIGKILL keeps its temporary name (note: the next run's stale-temp sweep in
that folder removes such files).

Timestamps: output pts are the frames' pts (on their time base) less the first frame's, so every
output starts at 0; a pts that does not increase is bumped by one tick and counted. Latency:
``time.monotonic() - frame.arrival`` once the frame's packet is muxed, kept in a ``LatencyMeter``
(and in the run's, when ``measure_latency`` hands one over: frames are encoded in the sink's own
thread, so the time ``write`` returns is not when a frame was sent).
Credentials never leave the sink: ``name``, logs, errors and ``stats`` show ``urls.mask(target)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import random
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import numpy as np

from panini_video.config import FOREVER, IOConfig, LiveConfig
from panini_video.errors import OutputError, UsageError
from panini_video.io.encoder import X264_PRESETS, EncoderPlan, try_encoder
from panini_video.io.picture import Picture, sws_args
from panini_video.io.probe import VideoInfo
from panini_video.io.srt import SrtOutputRelay
from panini_video.io.urls import live_output_kind, mask
from panini_video.outputs import Output, check_outputs, commit, temp_path
from panini_video.records import Frame
from panini_video.run.sinks import Audio
from panini_video.run.sources import AudioFeed, AudioSubscription
from panini_video.runtime.latency import LatencyMeter

log = logging.getLogger(__name__)

# live kind -> FFmpeg muxer
MUXERS = {"rtsp": "rtsp", "rtmp": "flv", "udp": "mpegts", "srt": "mpegts"}
# recording extension -> (muxer, its options); every one is readable after a kill
RECORDINGS: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": ("mp4", {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}),
    ".m4v": ("mp4", {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}),
    ".mov": ("mov", {"movflags": "+frag_keyframe+empty_moov+default_base_moof"}),
    ".mkv": ("matroska", {}),
    ".ts": ("mpegts", {}),
}
# audio each muxer takes copied; limited to codecs whose encoder's global header fits any stream of
# the same rate and layout (PyAV can only add an audio stream through an encoder; see _add_audio)
AUDIO_CODECS = {
    "flv": {"aac", "mp3"},
    "mpegts": {"aac", "mp3", "opus"},
    "rtsp": {"aac", "opus"},
    "mp4": {"aac", "mp3", "opus"},
    "mov": {"aac", "mp3"},
    "matroska": {"aac", "mp3", "opus"},
}
_ENCODER_OF = {"aac": "aac", "mp3": "libmp3lame", "opus": "libopus"}
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 23
HANDOVER_DEPTH = 8  # frames waiting for the sink's thread (a few: latency, not throughput)
CLOSE_GRACE = 2.0  # seconds beyond open_timeout that close() waits for the last packets


def plan_live_encoder(io: IOConfig, live: LiveConfig, size: tuple[int, int], fps: float = 25.0) -> EncoderPlan:
    """The low-latency H.264 plan of a live output, opened once to check it (UsageError if refused).

    zerolatency (no look-ahead, sliced threads: a frame's packet comes out of its own encode
    call), no B-frames, a keyframe every ``live.keyint`` seconds and only there (scenecut off; an
    IDR, so a viewer joining late starts there), SPS/PPS repeated in band for the same reason.
    Rate: ``live.bitrate`` with a one-second VBV when given, else constant quality (``io.crf``).
    4:2:0 always (what every player and browser decodes); an odd size is padded by one edge row
    or column.
    """
    if io.codec not in (None, "libx264"):
        log.warning("live outputs are H.264 (libx264); --codec %s applies to file outputs only", io.codec)
    if io.pix_fmt not in (None, "yuv420p"):
        log.warning("live outputs are yuv420p; --pix-fmt %s applies to file outputs only", io.pix_fmt)
    preset = io.preset or DEFAULT_PRESET
    if preset not in X264_PRESETS:
        raise UsageError(f"--preset {preset}: libx264 knows {', '.join(X264_PRESETS)}")
    if io.crf is not None and not 0 <= io.crf <= 51:
        raise UsageError(f"--crf {io.crf}: libx264 takes a crf from 0 to 51")
    gop = max(1, round(live.keyint * fps))
    options = {
        "preset": preset,
        "tune": "zerolatency",
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        "bf": "0",
        "rc-lookahead": "0",
        "forced-idr": "1",
        "x264-params": "repeat-headers=1",
    }
    if live.bitrate is not None:
        options.update({"b": str(live.bitrate), "maxrate": str(live.bitrate), "bufsize": str(live.bitrate)})
    else:
        options["crf"] = str(io.crf if io.crf is not None else DEFAULT_CRF)
    w, h = size
    plan = EncoderPlan(
        codec="libx264",
        pix_fmt="yuv420p",
        size=(w, h),
        coded_size=(w + w % 2, h + h % 2),
        audio_codec="aac",
        options=options,
    )
    try_encoder(plan)
    return plan


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


@dataclasses.dataclass
class _Connection:
    """One connected container: its video stream (and encoder), its audio stream, its relay."""

    container: av.container.OutputContainer
    video: av.VideoStream
    audio: av.AudioStream | None
    relay: SrtOutputRelay | None

    def close(self, flush: bool) -> None:
        try:
            if flush:
                for pkt in self.video.encode(None):
                    self.container.mux(pkt)
        finally:
            try:
                self.container.close()
            finally:
                if self.relay is not None:
                    self.relay.close()

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the connection is broken already; closing it is best effort
            log.debug("closing a broken connection failed", exc_info=True)
        if self.relay is not None:
            self.relay.kill()


class _Stop:
    """The hand-over's end marker."""


_STOP = _Stop()


class LiveSink:
    """Publish to a live server (or record to a file while live); see the module doc."""

    def __init__(self, target: str, io: IOConfig | None = None, live: LiveConfig | None = None) -> None:
        self.target = target
        self.io = io or IOConfig()
        self.live = live or LiveConfig()
        kind = live_output_kind(target)
        self.kind: str = kind or "file"
        self._masked = mask(target)
        self._path: Path | None = None
        self._temp: Path | None = None
        if kind is None:
            self._path = Path(target)
            ext = self._path.suffix.lower()
            if ext not in RECORDINGS:
                raise OutputError(
                    f"{target}: a live recording is .mp4 (fragmented), .mkv or .ts, so that it plays "
                    f"even if the run is killed; got {ext or 'no extension'}"
                )
            self._format, self._format_options = RECORDINGS[ext]
        else:
            self._format, self._format_options = MUXERS[kind], {}
        self._plan: EncoderPlan | None = None
        self._info: VideoInfo | None = None
        self._feed: AudioFeed | None = None
        self._subscription: AudioSubscription | None = None
        self._time_base = Fraction(1, 90000)
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._handover: queue.Queue[Any] = queue.Queue(HANDOVER_DEPTH)
        self._lock = threading.Lock()
        self._up = threading.Event()  # a connection is there to send to
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._generation = 0  # bumped when a stuck worker is abandoned
        self._failed: OutputError | None = None
        self._closed = False
        self._started = time.monotonic()
        self._latency = LatencyMeter()
        self._run_latency: LatencyMeter | None = None  # the run's meter, when it asked (measure_latency)
        self._counts = {"frames": 0, "dropped": 0, "reconnects": 0, "bytes": 0, "bumped_pts": 0, "audio_packets": 0}

    # --- the Sink protocol -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._masked

    @property
    def frames_written(self) -> int:
        return self._counts["frames"]

    def plan(self, size: tuple[int, int], source_pix_fmt: str | None = None) -> list[EncoderPlan]:
        self._plan = plan_live_encoder(self.io, self.live, size)
        return [self._plan]

    def open(self, info: VideoInfo, size: tuple[int, int], audio: Audio, lookahead: int | None) -> None:
        """Connect now (bounded by ``live.open_timeout``): a sink that cannot is an OutputError."""
        del lookahead  # zerolatency: x264 holds no look-ahead already
        self._info = info
        fps = float(info.frame_rate) if info.frame_rate and info.frame_rate > 0 else 25.0
        self._plan = plan_live_encoder(self.io, self.live, size, fps)
        self._time_base = info.time_base
        self._feed = self._usable_feed(audio)
        if self._path is not None:
            check_outputs([Output(str(self._path), "OUT")], [info.path], overwrite="overwrite")
            self._temp = temp_path(self._path)
        if self.kind == "udp":
            log.info("%s: UDP is connectionless; whether anything receives the stream cannot be checked", self.name)
        self._started = time.monotonic()
        ready = threading.Event()
        self._start_worker(ready)
        if not ready.wait(self.live.open_timeout + CLOSE_GRACE):
            self._stopping.set()
            raise OutputError(
                f"{self.name}: no connection within {self.live.open_timeout:g} s (--open-timeout); "
                "check that the server is running and the URL"
            )
        if self._failed is not None:
            err = self._failed
            self._stopping.set()
            raise err

    def write(self, frame: Frame) -> None:
        """Hand the frame to the sink's thread; dropped (and counted) while reconnecting."""
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise OutputError(f"{self.name}: write after close")
        pts = self._pts_of(frame)
        if not self._up.is_set():
            self._drop()
            return
        try:
            self._handover.put((frame, pts), timeout=self.live.open_timeout)
        except queue.Full:
            self._stuck()
            self._drop()

    def close(self) -> None:
        """Flush the encoder, write the trailer (bounded), and put a recording in place."""
        if self._closed:
            return
        self._closed = True
        worker = self._worker
        if not self._up.is_set():
            self._stopping.set()  # reconnecting: nothing to flush, stop the attempts
        if worker is not None and worker.is_alive():
            try:
                self._handover.put(_STOP, timeout=self.live.open_timeout)
            except queue.Full:
                self._stuck()
            worker.join(self.live.open_timeout + CLOSE_GRACE)
            if worker.is_alive():
                self._stopping.set()
                log.warning("%s: the last packets could not be sent within %g s", self.name, self.live.open_timeout)
        self._stopping.set()
        self._close_feed()
        if self._failed is not None and self._path is None:
            raise self._failed
        self._keep_recording(finished=True)
        log.info("%s: %s", self.name, self._summary())

    def abort(self) -> None:
        """Stop at once; a recording keeps what was recorded (see the module doc)."""
        already = self._closed
        self._closed = True
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._handover.put_nowait(_STOP)
        if self._worker is not None:
            self._worker.join(self.live.open_timeout + CLOSE_GRACE)
        self._close_feed()
        if not already:
            self._keep_recording(finished=False)

    # --- figures -----------------------------------------------------------------------------

    def latencies(self) -> LatencyMeter:
        return self._latency

    def measure_latency(self, meter: LatencyMeter) -> None:
        """Add each frame's latency, taken once its packet is muxed, to ``meter`` too (the run's)."""
        self._run_latency = meter

    def stats(self) -> dict[str, Any]:
        """Frames sent, dropped, reconnects, bytes, bit rate (bits per second of stream), latency percentiles (ms)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, **self._counts}
        media = float((self._last_pts or 0) * self._time_base)  # seconds of stream sent so far
        out["bitrate"] = round(8 * self._counts["bytes"] / media) if media > 0 else None
        out["uptime"] = round(time.monotonic() - self._started, 3)
        out["latency_ms"] = {f"p{q}": _ms(self._latency.percentile(q)) for q in (50, 95, 99)}
        out["connected"] = self._up.is_set()
        return out

    def _summary(self) -> str:
        s = self.stats()
        return (
            f"{s['frames']} frames, {s['dropped']} dropped, {s['reconnects']} reconnects, "
            f"{s['bytes']} bytes, latency p95 {s['latency_ms']['p95']} ms"
        )

    # --- timestamps and audio ----------------------------------------------------------------

    def _pts_of(self, frame: Frame) -> int:
        """The frame's pts on the output clock (starting at 0); bumped by a tick if it does not increase."""
        tb = self._time_base
        if frame.pts is None or frame.time_base is None:
            step = 1 / (self._info.frame_rate * tb) if self._info and self._info.frame_rate else 1
            pts = 0 if self._last_pts is None else self._last_pts + max(1, round(step))
            if self._first_pts is None:
                self._first_pts = 0
        else:
            raw = frame.pts if frame.time_base == tb else round(frame.pts * frame.time_base / tb)
            if self._first_pts is None:
                self._first_pts = raw
            pts = raw - self._first_pts
        if self._last_pts is not None and pts <= self._last_pts:
            self._counts["bumped_pts"] += 1
            log.debug("%s: frame %d pts %d not after %d; using %d", self.name, frame.index, pts, self._last_pts, pts)
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def _usable_feed(self, audio: Audio) -> AudioFeed | None:
        if audio is None:
            return None
        if isinstance(audio, Path):
            log.warning("%s: a live sink carries a live source's audio; the audio of %s is not sent", self.name, audio)
            return None
        takes = AUDIO_CODECS.get(self._format, set())
        if audio.codec not in takes:
            log.warning(
                "%s: %s cannot carry %s audio (it takes %s); sending video only",
                self.name,
                self._format,
                audio.codec,
                ", ".join(sorted(takes)) or "none we can copy",
            )
            return None
        if audio.codec == "aac" and audio.extradata and (audio.extradata[0] >> 3) not in (1, 2):
            log.warning("%s: the AAC audio is not AAC-LC; sending video only", self.name)
            return None
        return audio

    def _close_feed(self) -> None:
        sub = self._subscription
        if sub is not None:
            self._subscription = None
            sub.close()

    # --- the sink's thread -------------------------------------------------------------------

    def _start_worker(self, ready: threading.Event | None) -> None:
        self._generation += 1
        self._worker = threading.Thread(
            target=self._work, args=(self._generation, ready), name=f"live-sink {self.kind}", daemon=True
        )
        self._worker.start()

    def _stuck(self) -> None:
        """The thread has not taken a frame for open_timeout seconds: leave it and reconnect afresh."""
        with self._lock:
            if not self._up.is_set():
                return
            self._up.clear()
            log.warning("%s: the connection took nothing for %g s; reconnecting", self.name, self.live.open_timeout)
            self._drain()
            self._start_worker(None)

    def _drop(self) -> None:
        self._counts["dropped"] += 1

    def _drain(self) -> None:
        while True:
            try:
                item = self._handover.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self._handover.put_nowait(_STOP)
                return
            self._drop()

    def _work(self, generation: int, ready: threading.Event | None) -> None:
        conn: _Connection | None = None
        try:
            if ready is not None:  # the first connection: open() reports its error
                try:
                    conn = self._connect()
                    self._up.set()
                except OutputError as e:
                    self._failed = e
                    return
                finally:
                    ready.set()
            else:
                conn = self._reconnect(generation)
                if conn is None:
                    return
                self._up.set()
            conn = self._send(conn, generation)
        finally:
            if generation == self._generation:
                self._up.clear()
            if conn is not None:
                conn.discard()

    def _send(self, conn: _Connection, generation: int) -> _Connection | None:
        """Encode and mux until the end marker; on a lost connection, reconnect and go on."""
        force_key = False
        while generation == self._generation:
            try:
                item = self._handover.get(timeout=0.5)
            except queue.Empty:
                if self._stopping.is_set():
                    return conn
                continue
            if generation != self._generation:
                return conn
            if item is _STOP:
                if self._stopping.is_set():  # abort: no flush
                    return conn
                self._finish(conn)
                return None
            frame, pts = item
            try:
                self._encode(conn, frame, pts, force_key)
                force_key = False
            except (av.FFmpegError, OSError) as e:
                self._drop()
                log.warning("%s: the connection was lost (%s); reconnecting", self.name, mask(str(e)))
                self._up.clear()
                conn.discard()
                self._drain()
                new = self._reconnect(generation)
                if new is None:
                    return None
                conn, force_key = new, True
                self._up.set()
        return conn

    def _finish(self, conn: _Connection) -> None:
        try:
            for pkt in conn.video.encode(None):
                self._mux_video(conn, pkt, {})
            conn.close(flush=False)
        except (av.FFmpegError, OSError) as e:
            log.warning("%s: finishing the stream failed (%s)", self.name, mask(str(e)))
            conn.discard()

    def _encode(self, conn: _Connection, frame: Frame, pts: int, force_key: bool) -> None:
        assert self._plan is not None
        w, h = frame.size
        if (w, h) != self._plan.size:
            pw, ph = self._plan.size
            raise ValueError(f"frame {frame.index} is {w}x{h}, the sink expects {pw}x{ph}")
        pic = frame.image
        if isinstance(pic, Picture) and not self._plan.padded:  # a file played live: one swscale call
            vf = pic.frame.reformat(format="yuv420p", **sws_args(pic.colour, pic.colour))
        else:
            image = frame.rgb()
            if self._plan.padded:
                cw, ch = self._plan.coded_size
                image = np.pad(image, ((0, ch - h), (0, cw - w), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
        vf.pts = pts
        vf.time_base = self._time_base
        # a decoded picture keeps the decoder's I/P/B, which the encoder would obey: only ours counts
        vf.pict_type = av.video.frame.PictureType.I if force_key else av.video.frame.PictureType.NONE
        arrivals = {pts: frame.arrival}
        for pkt in conn.video.encode(vf):
            self._mux_video(conn, pkt, arrivals)
        if conn.audio is not None and self._subscription is not None:
            self._mux_audio(conn, float(pts * self._time_base))

    def _mux_video(self, conn: _Connection, pkt: av.Packet, arrivals: dict[int, float | None]) -> None:
        pts, size = pkt.pts, pkt.size
        conn.container.mux(pkt)
        self._counts["bytes"] += size
        self._counts["frames"] += 1
        arrival = arrivals.get(pts) if pts is not None else None
        if arrival is not None:
            took = time.monotonic() - arrival
            self._latency.add(took)
            if self._run_latency is not None:
                self._run_latency.add(took)

    def _mux_audio(self, conn: _Connection, until: float) -> None:
        """The feed's packets up to the video frame's time, on the same (rebased) clock."""
        assert conn.audio is not None and self._subscription is not None and self._feed is not None
        offset = float((self._first_pts or 0) * self._time_base)
        for ap in self._subscription.take(until + offset):
            t = ap.time - offset
            if t < 0:
                continue
            pkt = av.Packet(ap.data)
            tb = ap.time_base
            pkt.pts = pkt.dts = ap.pts - round(offset / tb)
            if ap.duration is not None:
                pkt.duration = ap.duration
            pkt.time_base = tb
            pkt.stream = conn.audio
            conn.container.mux(pkt)
            self._counts["bytes"] += len(ap.data)
            self._counts["audio_packets"] += 1

    def _reconnect(self, generation: int) -> _Connection | None:
        """Backoff, jitter and attempts as ``live`` says; None when stopped or the attempts are spent."""
        attempt = 0
        delay = self.live.backoff_initial
        while generation == self._generation and not self._stopping.is_set():
            if self.live.reconnect != FOREVER and attempt >= self.live.reconnect:
                self._failed = OutputError(
                    f"{self.name}: the connection was lost and {attempt} reconnection attempt(s) failed "
                    "(--reconnect); check the server"
                )
                log.error("%s", self._failed)
                return None
            attempt += 1
            wait = min(self.live.backoff_max, delay) * random.uniform(0.5, 1.0)
            if self._stopping.wait(wait):
                return None
            delay = min(self.live.backoff_max, max(delay * 2, 0.05))
            try:
                conn = self._connect()
            except OutputError as e:
                log.info("%s: reconnection attempt %d failed (%s)", self.name, attempt, e)
                continue
            with self._lock:
                self._counts["reconnects"] += 1
            log.info("%s: reconnected (attempt %d)", self.name, attempt)
            return conn
        return None

    def _connect(self) -> _Connection:
        """Open the container and write its header, which makes the connection; OutputError if not."""
        assert self._plan is not None and self._info is not None
        relay: SrtOutputRelay | None = None
        url = self.target
        options: dict[str, str] = {}
        try:
            if self.kind == "srt":
                relay = SrtOutputRelay(url, self.live.open_timeout)
                relay.wait_connected()
                container = av.open(relay, "w", format="mpegts", container_options={"flush_packets": "1"})  # type: ignore[call-overload]
            else:
                if self.kind == "rtsp":
                    options = {"rtsp_transport": "tcp"}
                elif self.kind == "udp" and "pkt_size=" not in url:
                    url += ("&" if "?" in url else "?") + "pkt_size=1316"  # 7 TS packets a datagram
                elif self._temp is not None:
                    url = str(self._temp)
                # flush_packets: each packet reaches the socket or the disk at once (latency; a
                # fragment of a recording is on disk when it ends, not in a 32 KiB buffer)
                options["flush_packets"] = "1"
                container = av.open(
                    url, "w", format=self._format, container_options={**self._format_options, **options}
                )
            video = self._add_video(container)
            audio = self._add_audio(container)
            container.start_encoding()
        except OutputError:
            if relay is not None:
                relay.kill()
            raise
        except (av.FFmpegError, OSError, ValueError) as e:
            if relay is not None:
                relay.kill()
            reason = getattr(e, "strerror", None) or str(e)
            raise OutputError(f"{self.name}: cannot connect ({mask(str(reason))}); check the server and the URL") from e
        return _Connection(container, video, audio, relay)

    def _add_video(self, container: av.container.OutputContainer) -> av.VideoStream:
        assert self._plan is not None and self._info is not None
        rate = self._info.frame_rate if self._info.frame_rate and self._info.frame_rate > 0 else Fraction(25)
        stream = container.add_stream(self._plan.codec, rate=rate, options=dict(self._plan.options))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = self._plan.coded_size
        stream.pix_fmt = self._plan.pix_fmt
        stream.codec_context.time_base = self._time_base
        stream.time_base = self._time_base
        return stream

    def _add_audio(self, container: av.container.OutputContainer) -> av.AudioStream | None:
        """An audio stream for copied packets of the feed.

        PyAV adds an audio stream with parameters only through an encoder (a stream without one
        cannot take a layout or extradata), so the stream is the encoder of the feed's codec at
        the feed's rate and layout: its global header (AAC-LC's AudioSpecificConfig, Opus's head)
        describes the copied packets as well. No frame is ever encoded with it.
        """
        feed = self._feed
        if feed is None:
            return None
        stream = container.add_stream(_ENCODER_OF[feed.codec], rate=feed.sample_rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = feed.layout or ("mono" if feed.channels == 1 else "stereo")
        stream.time_base = feed.time_base
        if self._subscription is None:
            self._subscription = feed.subscribe()
        return stream

    def _keep_recording(self, finished: bool) -> None:
        """Rename a recording into place (close, or abort with frames); remove an empty one."""
        if self._temp is None or self._path is None:
            return
        temp, self._temp = self._temp, None
        if not temp.exists():
            return
        if not finished and self._counts["frames"] == 0:
            temp.unlink(missing_ok=True)
            return
        commit(temp, self._path)
        if not finished:
            log.warning("%s: the run stopped; the recording is kept up to frame %d", self.name, self._counts["frames"])
