"""LiveSource against real servers on 127.0.0.1: GStreamer's RTSP server, a silent peer, a pipe, HLS.

Every case is bounded: the source's own timeouts are short, each loop has a deadline, and each
subprocess has a timeout. Clips come from the shared test data and are served in real time.
"""

from __future__ import annotations

import functools
import http.server
import json
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest

from panini_video.config import LiveConfig
from panini_video.errors import InputError, SourceLostError, StallError, UnsupportedInputError
from panini_video.io.live import live_target
from panini_video.records import Frame
from panini_video.run.live_source import LiveSource
from tests.servers import free_port
from tests.servers.rtsp import RtspServer, rtsp_server, rtsp_unavailable
from tests.servers.silent import silent_server

PLAIN = "videos/lowq_real_388x512_noaudio.mp4"  # 388x512, 20 fps, 248 frames, video from 0 s
WITH_AUDIO = "videos/hamilton_short.mp4"  # 640x360, 29.97 fps, AAC 44.1 kHz; video starts 0.85 s in
REPO = Path(__file__).resolve().parents[2]
FAST = {"reconnect": 2, "backoff_initial": 0.1, "backoff_max": 0.4, "open_timeout": 3.0, "stall_timeout": 1.5}


@functools.cache
def _rtsp_missing() -> str | None:
    return rtsp_unavailable()


@pytest.fixture
def rtsp_ok() -> None:
    reason = _rtsp_missing()
    if reason:
        pytest.skip(reason)


def live(**overrides: object) -> LiveConfig:
    return LiveConfig(**{**FAST, **overrides})  # type: ignore[arg-type]


def take(frames: Iterator[Frame], *, seconds: float | None = None, count: int | None = None) -> list[Frame]:
    """Frames until ``count`` or ``seconds`` of wall time from the first one (bounded either way)."""
    out: list[Frame] = []
    deadline = time.monotonic() + 20.0
    for frame in frames:
        out.append(frame)
        now = time.monotonic()
        if count is not None and len(out) >= count:
            break
        if seconds is not None and now - (out[0].arrival or now) >= seconds:
            break
        assert now < deadline, "no end in sight"
    return out


def assert_continuous(frames: list[Frame], start: int = 0) -> None:
    assert [f.index for f in frames] == list(range(start, start + len(frames)))
    pts = [f.pts for f in frames]
    assert all(p is not None for p in pts)
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), "pts must strictly increase"  # type: ignore[operator]


# ---- options (no server)


def test_options_defaults_and_overrides() -> None:
    cfg = LiveConfig(rtsp_transport="udp", stall_timeout=2.5)
    t = live_target("rtsp://cam/x", cfg, {"probesize": "4096"})
    assert t.kind == "rtsp" and t.url == "rtsp://cam/x" and t.format is None
    assert t.options["rtsp_transport"] == "udp" and t.options["timeout"] == "2500000"  # microseconds
    assert t.options["probesize"] == "4096"  # the user's --input-option wins
    assert t.options["fflags"] == "+genpts+discardcorrupt" and t.options["analyzeduration"] == "0"
    assert live_target("rtsp://cam/x", cfg, {"rtsp_transport": "tcp"}).options["rtsp_transport"] == "tcp"
    stdin = live_target("-", cfg)
    assert stdin.url == "pipe:0" and not stdin.can_reconnect
    cam = live_target("/dev/video3", LiveConfig(input_format="mjpeg", input_size="1280x720", input_fps=30))
    assert cam.format == "v4l2"
    assert (cam.options["input_format"], cam.options["video_size"], cam.options["framerate"]) == (
        "mjpeg",
        "1280x720",
        "30",
    )
    assert live_target("udp://127.0.0.1:1234", cfg).options["timeout"] == "2500000"
    with pytest.raises(InputError, match="not a live input"):
        live_target("clip.mp4", cfg)


def test_missing_protocol_or_device_is_not_retried() -> None:
    """PyAV's wheels carry no libsrt and no libavdevice: said at once, even with reconnect forever."""
    t = time.monotonic()
    if "v4l2" not in av.formats_available:
        with pytest.raises(UnsupportedInputError, match="no v4l2 input"):
            LiveSource("/dev/video9", LiveConfig())
    assert time.monotonic() - t < 3.0


def test_srt_pulled_through_the_relay(testdata: Path) -> None:
    """SRT through srt-live-transmit (PyAV's FFmpeg has none): ffmpeg sends the clip in real time
    to a second srt-live-transmit listening on 127.0.0.1, which our source calls."""
    ffmpeg, relay = shutil.which("ffmpeg"), shutil.which("srt-live-transmit")
    if ffmpeg is None or relay is None:
        pytest.skip("needs Debian's ffmpeg and srt-tools (apt-get install ffmpeg srt-tools)")
    from tests.servers.listeners import free_port

    port = free_port(socket.SOCK_DGRAM)
    feed = subprocess.Popen(
        [ffmpeg, "-v", "error", "-re", "-i", str(testdata / PLAIN), "-c", "copy", "-f", "mpegts", "-"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    listener = subprocess.Popen(
        [relay, "-q", "file://con", f"srt://:{port}?mode=listener&passphrase=pw123456789x"],
        stdin=feed.stdout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        src = LiveSource(f"srt://127.0.0.1:{port}?mode=caller&passphrase=pw123456789x", live(open_timeout=5.0))
        try:
            assert (src.info.width, src.info.height) == (388, 512)
            frames = take(src.frames(8), count=30)
            stats = src.stats()
        finally:
            src.close()
    finally:
        for p in (listener, feed):
            p.kill()
            p.wait(timeout=5)
    assert len(frames) == 30
    assert_continuous(frames)
    assert "pw123456789x" not in str(stats) and "passphrase=***" in src.name


def test_srt_with_nothing_listening_is_an_input_error() -> None:
    if shutil.which("srt-live-transmit") is None:
        pytest.skip("needs Debian's srt-tools (apt-get install srt-tools)")
    t = time.monotonic()
    with pytest.raises(InputError) as caught:
        LiveSource("srt://127.0.0.1:9?mode=caller&passphrase=pw123456789x", LiveConfig(open_timeout=2.0, reconnect=0))
    assert "pw123456789x" not in str(caught.value) and "passphrase=***" in str(caught.value)
    assert time.monotonic() - t < 6.0


# ---- RTSP from GStreamer


def test_rtsp_pull_at_the_clip_rate(rtsp_ok: None, testdata: Path) -> None:
    with rtsp_server(testdata / PLAIN) as server:
        src = LiveSource(server.url, live())
        try:
            assert (src.info.width, src.info.height) == (388, 512)
            assert src.info.time_base == Fraction(1, 90000) and src.audio is None and src.live
            gen = src.frames(8)
            frames = take(gen, seconds=2.5)
            rate = (len(frames) - 1) / (frames[-1].arrival - frames[0].arrival)  # type: ignore[operator]
            assert 16.0 <= rate <= 24.0, f"{rate:.1f} fps from a 20 fps clip"
            assert_continuous(frames)
            assert {f.size for f in frames} == {(388, 512)} and {f.epoch for f in frames} == {0}
            steps = sorted(b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False))  # type: ignore[operator]
            assert steps[len(steps) // 2] == 4500  # one 20 fps frame in 1/90000
            stats = src.stats()
            assert stats["frames"] == len(frames) and stats["reconnects"] == 0 and stats["stalls"] == 0
            assert stats["packets"] >= len(frames) and 10.0 < stats["input_fps"] < 30.0
            t = time.monotonic()
            src.stop()
            assert list(gen) == []  # stop() ends frames() at once (a live run's graceful end)
            assert time.monotonic() - t < 0.5
        finally:
            src.close()
            src.close()


def test_server_killed_and_restarted(rtsp_ok: None, testdata: Path) -> None:
    server = RtspServer(testdata / PLAIN)
    server.start()
    returned: list[float] = []

    def restart() -> None:
        server.start()
        returned.append(time.monotonic())

    try:
        src = LiveSource(server.url, live(reconnect=20))
        frames = src.frames(8)
        before = take(frames, count=15)
        server.kill()
        timer = threading.Timer(0.8, restart)  # refused attempts meanwhile, under the backoff
        timer.start()
        after = take(frames, count=15)  # the consumer keeps pulling: its watchdog runs while it waits
        timer.join(timeout=15)
        src.close()
    finally:
        server.kill()
    back = returned[0]
    both = before + after
    assert_continuous(both)
    epochs = [f.epoch for f in both]
    assert epochs[0] == 0 and epochs[-1] == 1 and epochs == sorted(epochs)
    first_back = next(f for f in after if f.epoch == 1)
    last_before = max((f for f in both if f.epoch == 0), key=lambda f: f.index)
    assert first_back.pts == last_before.pts + 4500  # type: ignore[operator]  # one frame after the last out
    waited = first_back.arrival - back  # type: ignore[operator]
    assert waited < 0.4 * 1.25 + 2.0, f"{waited:.2f} s from the server's return to the first frame"
    stats = src.stats()
    assert stats["reconnects"] == 1 and stats["reconnect_attempts"] >= 2  # at least one refused meanwhile
    assert len(stats["last_reconnect_to_frame_s"]) == 1 and 0 < stats["last_reconnect_to_frame_s"][0] < 2.0


def test_slow_consumer_drops_the_oldest(rtsp_ok: None, testdata: Path) -> None:
    """The demuxer is never held back: a consumer at a third of the rate gets the newest frames."""
    with rtsp_server(testdata / PLAIN) as server:
        src = LiveSource(server.url, live())
        try:
            frames: list[Frame] = []
            ages: list[float] = []
            for frame in src.frames(2):
                ages.append(time.monotonic() - frame.arrival)  # type: ignore[operator]
                frames.append(frame)
                if len(frames) == 12:
                    break
                time.sleep(0.15)  # 6.7 fps against 20
            stats = src.stats()
        finally:
            src.close()
    assert_continuous(frames)  # indices without gaps, pts increasing (with gaps: frames were dropped)
    gaps = [b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False)]  # type: ignore[operator]
    assert max(gaps) >= 2 * 4500
    assert stats["dropped"] >= 12 and stats["decoded"] >= stats["frames"] + stats["dropped"]
    assert max(ages[1:]) < 0.35, ages  # about two frames old (the queue holds two), not the backlog of seconds


def test_reconnected_stream_of_another_size_is_scaled(
    rtsp_ok: None, testdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="panini_video")
    server = RtspServer(testdata / PLAIN)
    server.start()
    try:
        src = LiveSource(server.url, live(reconnect=20))
        frames = src.frames(8)
        before = take(frames, count=3)
        server.kill()
        server.clip = testdata / WITH_AUDIO  # 640x360 now, on the same port and path
        server.start()
        after = take(frames, count=5)
        src.close()
    finally:
        server.kill()
    assert {f.size for f in before + after} == {(388, 512)} and after[-1].epoch == 1
    assert "is now 640x360; scaled to 388x512" in caplog.text
    assert_continuous(before + after)


def test_frozen_server_is_a_stall(rtsp_ok: None, testdata: Path) -> None:
    """SIGSTOP: the TCP connection stays open and silent; our watchdog, not FFmpeg, notices."""
    with rtsp_server(testdata / PLAIN) as server:
        src = LiveSource(server.url, live(reconnect=0, stall_timeout=1.0))
        frames = src.frames(8)
        take(frames, count=5)
        server.freeze()
        frozen = time.monotonic()
        with pytest.raises(StallError) as caught:
            take(frames, count=10_000)
        took = time.monotonic() - frozen
        server.thaw()
    assert took < 1.0 + 0.6, f"stall noticed after {took:.2f} s (stall timeout 1 s)"
    assert str(caught.value).startswith(server.url) and "no packet for 1 s" in str(caught.value)
    assert "reconnect is off" in str(caught.value)
    stats = src.stats()
    assert stats["stalls"] == 1 and 1.0 <= stats["stall_detect_s"][0] < 1.5


def test_credentials_never_shown(rtsp_ok: None, testdata: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with rtsp_server(testdata / PLAIN, user="viewer", password="s3cret-pw") as server:
        assert "s3cret-pw" in server.url
        src = LiveSource(server.url, live(reconnect=0))
        try:
            frames = take(src.frames(8), count=5)
            assert len(frames) == 5
            assert src.name == server.url.replace("s3cret-pw", "***")
            stats_text = json.dumps(src.stats())
            info_text = repr(src.info)
        finally:
            src.close()
        wrong = server.url.replace("s3cret-pw", "wrong-pw")
        with pytest.raises(SourceLostError) as caught:
            LiveSource(wrong, live(reconnect=0))
    message = str(caught.value)
    assert "401" in message and "viewer:***@127.0.0.1" in message
    for text in (stats_text, info_text, message, caplog.text):
        assert "s3cret-pw" not in text and "wrong-pw" not in text
    assert "viewer:***@" in stats_text


def test_audio_on_the_video_clock(rtsp_ok: None, testdata: Path) -> None:
    with rtsp_server(testdata / WITH_AUDIO, audio=True) as server:
        src = LiveSource(server.url, live(reconnect=0))
        try:
            feed = src.audio
            assert feed is not None
            assert (feed.codec, feed.sample_rate, feed.channels, feed.layout) == ("aac", 44100, 2, "stereo")
            assert feed.extradata  # the AudioSpecificConfig a muxer needs
            sub = feed.subscribe()
            frames = take(src.frames(8), seconds=2.0)
            early = sub.take(until=frames[0].time)
            rest = sub.take()
            sub.close()
        finally:
            src.close()
    packets = early + rest
    assert len(packets) > 40  # 43 AAC packets a second at 44.1 kHz
    times = [p.time for p in packets]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert all(p.time <= frames[0].time for p in early)  # type: ignore[operator]
    assert abs(times[-1] - frames[-1].time) < 0.5, (times[-1], frames[-1].time)  # type: ignore[operator]
    assert times[0] >= 0 and all(p.data for p in packets)


# ---- no server, a silent one


def test_nothing_listening_is_an_input_error_at_once() -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    t = time.monotonic()
    with pytest.raises(SourceLostError, match="connection refused") as caught:
        LiveSource(url, live(reconnect=0))
    assert time.monotonic() - t < 1.0
    assert isinstance(caught.value, InputError) and "reconnect is off" in str(caught.value)
    t = time.monotonic()
    with pytest.raises(SourceLostError, match="gave up after 3 reconnection attempts"):
        LiveSource(url, live(reconnect=3, backoff_initial=0.2, backoff_max=0.4))
    waited = time.monotonic() - t  # 0.2 + 0.4 + 0.4 s of backoff, +-25 % jitter
    assert 0.7 < waited < 1.8, f"{waited:.2f} s of backoff"


def test_silent_server_times_out() -> None:
    with silent_server() as server:
        url = f"rtsp://cam:pw123@127.0.0.1:{server.port}/x"
        t = time.monotonic()
        with pytest.raises(StallError) as caught:
            LiveSource(url, live(reconnect=1, open_timeout=0.8, backoff_initial=0.05))
        took = time.monotonic() - t
        accepted = server.accepted
    message = str(caught.value)
    assert message.startswith(f"rtsp://cam:***@127.0.0.1:{server.port}/x: no answer within 0.8 s"), message
    assert "gave up after 1 reconnection attempt" in message and "pw123" not in message
    assert accepted == 2 and took < 2 * 0.8 + 0.8


def test_udp_mpegts_and_its_silence(testdata: Path) -> None:
    """UDP has no end of stream: frames arrive, and when the sender stops only our watchdog notices."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg CLI not installed (apt-get install ffmpeg)")
    port = free_port()
    sender = subprocess.Popen(
        [
            ffmpeg,
            "-v",
            "error",
            "-re",
            "-i",
            str(testdata / WITH_AUDIO),
            "-an",
            "-c",
            "copy",
            "-f",
            "mpegts",
            f"udp://127.0.0.1:{port}?pkt_size=1316",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        src = LiveSource(f"udp://127.0.0.1:{port}", live(reconnect=0, stall_timeout=1.0, open_timeout=5.0))
        frames = src.frames(8)
        got = take(frames, count=20)  # joined mid-stream: from the next keyframe (every 2 s)
        sender.kill()
        sender.wait(timeout=5)
        stopped = time.monotonic()
        with pytest.raises(StallError, match="no packet for 1 s"):
            take(frames, count=10_000)
        took = time.monotonic() - stopped
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=5)
    assert {f.size for f in got} == {(640, 360)}
    assert_continuous(got)
    assert took < 1.0 + 0.6, f"{took:.2f} s to notice the silence"


# ---- standard input, HLS


def test_stdin_mpegts_to_the_end(testdata: Path, tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg CLI not installed (apt-get install ffmpeg)")
    reader = (
        "import json, sys\n"
        "from panini_video.config import LiveConfig\n"
        "from panini_video.run.live_source import LiveSource\n"
        "src = LiveSource('-', LiveConfig(stall_timeout=5.0))\n"
        "pts = [f.pts for f in src.frames(128)]\n"
        "ok = all(b > a for a, b in zip(pts, pts[1:]))\n"
        "print(json.dumps({'n': len(pts), 'increasing': ok, 'size': list(src.info.size), 'stats': src.stats()}))\n"
    )
    producer = subprocess.Popen(
        [ffmpeg, "-v", "error", "-i", str(testdata / PLAIN), "-c", "copy", "-f", "mpegts", "-"],
        stdout=subprocess.PIPE,
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", reader], stdin=producer.stdout, capture_output=True, text=True, timeout=60, cwd=REPO
        )
    finally:
        assert producer.stdout is not None
        producer.stdout.close()
        producer.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["n"] == 248 and got["increasing"] and got["size"] == [388, 512]
    assert got["stats"]["dropped"] == 0 and got["stats"]["kind"] == "stdin"


def test_hls_playlist_over_http(testdata: Path, tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg CLI not installed (apt-get install ffmpeg)")
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(testdata / WITH_AUDIO),
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
            "-hls_playlist_type",
            "vod",
            str(tmp_path / "live.m3u8"),
        ],
        check=True,
        timeout=60,
    )
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()
    try:
        src = LiveSource(f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8", live(reconnect=0))
        frames = take(src.frames(64), count=10_000)
        stats = src.stats()
        src.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(frames) == 275 and stats["dropped"] == 0  # a playlist that ends is a normal end
    assert_continuous(frames)
    assert src.audio is not None and src.audio.codec == "aac"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass
