"""LiveSink against real servers on 127.0.0.1: ffmpeg listeners (RTSP, SRT), nginx-rtmp, a UDP recorder.

Frames are a real clip decoded by ``VideoReader`` with ``arrival`` set, written to the sink
directly (no model); what the servers received is read back with ffprobe or a separate ffmpeg
client. Every subprocess and wait is bounded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import pytest

from panini_video.config import FOREVER, IOConfig, LiveConfig
from panini_video.errors import OutputError
from panini_video.io import VideoInfo, VideoReader, probe
from panini_video.records import AudioPacket, Frame
from panini_video.run import MultiSink
from panini_video.run.live_sink import LiveSink
from tests.servers import nginx
from tests.servers.listeners import Listener, UdpRecorder, free_port

CLIP = "videos/hamilton_short.mp4"  # 640x360, 2997/100 fps, video from 0.852 s, AAC 44100 stereo
N = 60
FAST = IOConfig(preset="ultrafast")
KEYINT = 1.0  # seconds: a keyframe every 30 frames at 29.97 fps

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="the ffprobe CLI is not installed")


@pytest.fixture(scope="module")
def clip(testdata: Path) -> tuple[VideoInfo, list[Frame]]:
    info = probe(testdata / CLIP)
    with VideoReader(testdata / CLIP, info=info) as reader:
        frames = []
        for f in reader:
            frames.append(f)
            if len(frames) == N:
                break
    return info, frames


class ClipAudio:
    """An ``AudioFeed`` made of a real clip's AAC packets, on the clip's own clock."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path)) as c:
            s = c.streams.audio[0]
            cc = s.codec_context
            self.codec, self.sample_rate, self.channels = cc.name, cc.sample_rate, cc.channels
            self.layout, self.time_base, self.extradata = cc.layout.name, s.time_base, cc.extradata
            assert s.time_base is not None
            self.packets = [
                AudioPacket(p.pts, s.time_base, bytes(p), p.duration)
                for p in c.demux(s)
                if p.pts is not None and p.size
            ]
        self.subscriptions: list[ClipSubscription] = []

    def subscribe(self) -> ClipSubscription:
        sub = ClipSubscription(list(self.packets))
        self.subscriptions.append(sub)
        return sub


class ClipSubscription:
    def __init__(self, packets: list[AudioPacket]) -> None:
        self.packets, self.closed = packets, False

    def take(self, until: float | None = None) -> list[AudioPacket]:
        n = len(self.packets) if until is None else sum(1 for p in self.packets if p.time <= until)
        out, self.packets = self.packets[:n], self.packets[n:]
        return out

    def close(self) -> None:
        self.closed = True


def live(**kw: object) -> LiveConfig:
    return LiveConfig(keyint=KEYINT, **kw)  # type: ignore[arg-type]


def publish(sink: LiveSink | MultiSink, frames: Sequence[Frame], realtime: bool = False) -> None:
    """Write ``frames`` with ``arrival`` set; at the clip's own rate when ``realtime``."""
    start = time.monotonic()
    t0 = frames[0].time or 0.0
    for f in frames:
        if realtime and f.time is not None:
            time.sleep(max(0.0, start + (f.time - t0) - time.monotonic()))
        sink.write(dataclasses.replace(f, arrival=time.monotonic()))


def opened(sink: LiveSink | MultiSink, info: VideoInfo, audio: object = None) -> LiveSink | MultiSink:
    sink.plan(info.size)
    sink.open(info, info.size, audio, None)  # type: ignore[arg-type]
    return sink


def ffprobe(path: Path, stream: str, entries: str) -> dict[str, Any]:
    """ffprobe's JSON for ``entries`` (``frame=...``, ``packet=...``) of one stream (``v:0``, ``a:0``)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", entries, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(out.stdout))


def probe_frames(path: Path) -> list[dict[str, Any]]:
    """ffprobe's view of every video frame: pts_time, key_frame, pict_type."""
    return list(ffprobe(path, "v:0", "frame=pts_time,key_frame,pict_type").get("frames", []))


def audio_duration(path: Path) -> float:
    packets = ffprobe(path, "a:0", "packet=pts_time,duration_time").get("packets", [])
    assert packets, f"{path} has no audio"
    times = [float(p["pts_time"]) for p in packets]
    return max(times) - min(times) + float(packets[-1].get("duration_time", 0.0))


def check_stream(frames: list[dict[str, Any]], n: int, gop: int | None = None, rtp: bool = False) -> None:
    """``n`` frames, pts increasing, no B-frames, a keyframe every ``gop`` frames and only there.

    rtp: read back through ffmpeg's RTSP demuxer, which stamps the packets before the first
    RTCP sender report alike (the second frame reads at the first one's time).
    """
    times = [float(f["pts_time"]) for f in frames]
    assert len(frames) == n
    checked = times[1:] if rtp else times
    assert all(b > a for a, b in zip(checked, checked[1:], strict=False)), f"pts not increasing: {times[:5]}"
    assert {f["pict_type"] for f in frames} <= {"I", "P"}, "B-frames in a low-latency stream"
    if gop is not None:
        keys = [i for i, f in enumerate(frames) if int(f["key_frame"]) == 1]
        assert keys == list(range(0, n, gop))


def test_rtsp_publish_reads_back_whole(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, frames = clip
    with Listener("rtsp", tmp_path / "got.mkv") as server:
        sink = opened(LiveSink(server.publish_url, FAST, live()), info)
        publish(sink, frames)
        sink.close()
        assert server.wait(15) is not None, "the listener did not see the stream end"
    check_stream(probe_frames(tmp_path / "got.mkv"), N, gop=round(KEYINT * 29.97), rtp=True)
    s = sink.stats()  # type: ignore[union-attr]
    assert s["frames"] == N and s["dropped"] == 0 and s["reconnects"] == 0 and s["bytes"] > 0
    assert s["latency_ms"]["p50"] is not None and s["latency_ms"]["p50"] <= s["latency_ms"]["p99"]


@pytest.mark.skipif(nginx.missing() is not None, reason=str(nginx.missing()))
def test_rtmp_through_nginx_with_audio_read_by_a_player(
    clip: tuple[VideoInfo, list[Frame]], testdata: Path, tmp_path: Path
) -> None:
    info, frames = clip
    feed = ClipAudio(testdata / CLIP)
    with nginx.NginxRtmp(tmp_path / "nginx") as server:
        got = tmp_path / "played.flv"
        player = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "2000000"]
            + ["-i", server.url("cam"), "-c", "copy", "-y", str(got)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)  # the player waits at nginx for the stream
            sink = opened(LiveSink(server.url("cam"), FAST, live()), info, feed)
            publish(sink, frames, realtime=True)
            sink.close()
            player.wait(timeout=15)
        finally:
            if player.poll() is None:
                player.kill()
                player.wait(timeout=5)
    played = probe_frames(got)
    check_stream(played, N)
    video = float(played[-1]["pts_time"]) - float(played[0]["pts_time"])
    assert abs(audio_duration(got) - video) < 0.3
    assert feed.subscriptions and feed.subscriptions[0].closed


@pytest.mark.parametrize("kind", ["srt", "udp"])
def test_mpegts_over_srt_and_udp_with_audio(
    kind: str, clip: tuple[VideoInfo, list[Frame]], testdata: Path, tmp_path: Path
) -> None:
    if kind == "srt" and shutil.which("srt-live-transmit") is None:
        pytest.skip("srt-live-transmit is not installed (apt-get install srt-tools)")
    info, frames = clip
    feed = ClipAudio(testdata / CLIP)
    got = tmp_path / "got.ts"
    server: Listener | UdpRecorder = Listener("srt", got) if kind == "srt" else UdpRecorder(got)
    try:
        sink = opened(LiveSink(server.publish_url, FAST, live()), info, feed)
        publish(sink, frames, realtime=True)
        sink.close()
        server.wait(2)  # UDP never ends by itself; an SRT listener notices late
    finally:
        server.stop()
    received = probe_frames(got)
    check_stream(received, N, gop=30)
    video = float(received[-1]["pts_time"]) - float(received[0]["pts_time"])
    assert abs(audio_duration(got) - video) < 0.3


@pytest.mark.parametrize("scheme", ["rtsp", "rtmp", "srt"])
def test_nothing_listening_is_an_error_at_open(
    scheme: str, clip: tuple[VideoInfo, list[Frame]], caplog: pytest.LogCaptureFixture
) -> None:
    if scheme == "srt" and shutil.which("srt-live-transmit") is None:
        pytest.skip("srt-live-transmit is not installed (apt-get install srt-tools)")
    info, _ = clip
    port = free_port()
    url = {
        "rtsp": f"rtsp://user:secret@127.0.0.1:{port}/x",
        "rtmp": f"rtmp://user:secret@127.0.0.1:{port}/live/x",
        "srt": f"srt://127.0.0.1:{port}?mode=caller&passphrase=secretsecret",
    }[scheme]
    sink = LiveSink(url, FAST, live(open_timeout=2.0))
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(OutputError) as err:
        opened(sink, info)
    assert time.monotonic() - start < 6.0
    assert "127.0.0.1" in str(err.value) and "secret" not in str(err.value)
    assert "secret" not in caplog.text and "secret" not in sink.name
    sink.abort()


def test_udp_says_it_cannot_check(clip: tuple[VideoInfo, list[Frame]], caplog: pytest.LogCaptureFixture) -> None:
    info, frames = clip
    with caplog.at_level(logging.INFO, logger="panini_video.run.live_sink"):
        sink = opened(LiveSink(f"udp://127.0.0.1:{free_port()}", FAST, live()), info)
    publish(sink, frames[:5])
    sink.close()
    assert "cannot be checked" in caplog.text and sink.frames_written == 5


def test_server_dropped_and_restarted_the_sink_reconnects(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, frames = clip
    first = Listener("rtsp", tmp_path / "first.mkv")
    config = live(reconnect=FOREVER, backoff_initial=0.1, backoff_max=0.5, open_timeout=3.0)
    sink = opened(LiveSink(first.publish_url, FAST, config), info)
    assert isinstance(sink, LiveSink)
    publish(sink, frames[:20], realtime=True)
    first.kill()  # the server is gone mid-stream
    publish(sink, frames[20:30], realtime=True)  # written while it is down: dropped, never an error
    second = Listener("rtsp", tmp_path / "second.mkv", port=first.port)
    try:
        publish(sink, frames[30:], realtime=True)
        sink.close()
        assert second.wait(15) is not None
    finally:
        second.stop()
    s = sink.stats()
    assert s["reconnects"] >= 1 and s["dropped"] >= 1
    later = probe_frames(tmp_path / "second.mkv")
    assert later and int(later[0]["key_frame"]) == 1  # a viewer of the new connection starts at once
    check_stream(later, len(later), rtp=True)
    assert float(later[-1]["pts_time"]) > 0.5  # the clock went on: not restarted at 0 for the new server
    assert s["frames"] + s["dropped"] == N and len(later) >= 1


def test_a_recording_plays_to_its_last_frame(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, frames = clip
    out = tmp_path / "rec.mp4"
    sink = opened(LiveSink(str(out), FAST, live()), info)
    publish(sink, frames)
    sink.close()
    got = probe_frames(out)
    check_stream(got, N, gop=30)
    last = float(frames[-1].time or 0) - float(frames[0].time or 0)
    assert abs(float(got[-1]["pts_time"]) - last) < 0.02  # the last frame is there, at its time
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]


_RECORD_THEN_HANG = """
import dataclasses, sys, time
from pathlib import Path
from panini_video.config import IOConfig, LiveConfig
from panini_video.io import VideoReader, probe
from panini_video.run.live_sink import LiveSink
info = probe(sys.argv[1])
sink = LiveSink(sys.argv[2], IOConfig(preset="ultrafast"), LiveConfig(keyint=0.5))
sink.plan(info.size)
sink.open(info, info.size, None, None)
with VideoReader(info.path, info=info) as reader:
    for i, f in enumerate(reader):
        sink.write(dataclasses.replace(f, arrival=time.monotonic()))
        if i == 49:
            break
time.sleep(0.5)  # the sink's thread muxes what it was handed
print("written", flush=True)
time.sleep(60)
"""


def test_a_recording_of_a_killed_process_is_readable(testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORD_THEN_HANG, str(testdata / CLIP), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    left = list(tmp_path.glob(".rec.mp4.partial-*.mp4"))
    assert not out.exists() and len(left) == 1  # never renamed: it does not look finished
    got = probe_frames(left[0])
    # fragments end at keyframes (every 15 frames): all 45 frames before the last keyframe are there
    assert len(got) >= 45
    check_stream(got, len(got))


def test_credentials_never_appear(
    clip: tuple[VideoInfo, list[Frame]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if nginx.missing() is not None:
        pytest.skip(str(nginx.missing()))
    info, frames = clip
    with nginx.NginxRtmp(tmp_path / "nginx") as server, caplog.at_level(logging.DEBUG):
        url = server.url("cam", user="user:secret")
        sink = opened(LiveSink(url, FAST, live()), info)
        publish(sink, frames[:10])
        sink.close()
    text = caplog.text + json.dumps(sink.stats()) + sink.name  # type: ignore[union-attr]
    assert "secret" not in text and "user:***@" in sink.name
    assert sink.frames_written == 10


def test_multisink_publishes_and_records(clip: tuple[VideoInfo, list[Frame]], testdata: Path, tmp_path: Path) -> None:
    info, frames = clip
    feed = ClipAudio(testdata / CLIP)
    rec = tmp_path / "rec.mkv"
    with Listener("rtsp", tmp_path / "got.mkv") as server:
        both = opened(
            MultiSink([LiveSink(server.publish_url, FAST, live()), LiveSink(str(rec), FAST, live())]), info, feed
        )
        publish(both, frames)
        both.close()
        assert server.wait(15) is not None
    check_stream(probe_frames(tmp_path / "got.mkv"), N, gop=30, rtp=True)
    check_stream(probe_frames(rec), N, gop=30)
    assert len(feed.subscriptions) == 2  # each sink its own subscription
    assert audio_duration(rec) > 1.5


def test_a_sink_that_cannot_connect_aborts_the_others(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, _ = clip
    rec = tmp_path / "rec.mkv"
    bad = LiveSink(f"rtsp://127.0.0.1:{free_port()}/x", FAST, live(open_timeout=2.0))
    with pytest.raises(OutputError):
        opened(MultiSink([LiveSink(str(rec), FAST, live()), bad]), info)
    assert list(tmp_path.iterdir()) == []  # the recording had no frame: nothing is left


def test_a_pts_that_does_not_increase_is_bumped(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, frames = clip
    out = tmp_path / "rec.ts"
    sink = opened(LiveSink(str(out), FAST, live()), info)
    assert isinstance(sink, LiveSink)
    repeated = [frames[0], frames[1], dataclasses.replace(frames[2], pts=frames[1].pts), frames[3]]
    publish(sink, repeated)
    sink.close()
    assert sink.stats()["bumped_pts"] == 1
    check_stream(probe_frames(out), 4)


def test_attempts_spent_is_an_error_from_write(clip: tuple[VideoInfo, list[Frame]], tmp_path: Path) -> None:
    info, frames = clip
    server = Listener("rtsp", tmp_path / "got.mkv")
    config = live(reconnect=2, backoff_initial=0.05, backoff_max=0.1, open_timeout=2.0)
    sink = opened(LiveSink(server.publish_url.replace("rtsp://", "rtsp://user:secret@"), FAST, config), info)
    publish(sink, frames[:5])
    server.kill()
    with pytest.raises(OutputError, match=r"2 reconnection attempt\(s\) failed") as err:
        publish(sink, frames[5:] * 3, realtime=True)  # about 5 s at most: the attempts end well before
    assert "user:***@127.0.0.1" in str(err.value) and "secret" not in str(err.value)
    sink.abort()
