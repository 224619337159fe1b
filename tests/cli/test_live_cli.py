"""``panini-video`` on live streams, end to end, against real servers on 127.0.0.1.

Each case runs the command in a subprocess, as an operator would (signals included), with the
``tiny`` variant on the CPU: Debian's GStreamer RTSP server serves a real clip in real time,
ffmpeg listens for what is published (or nginx-rtmp relays it), and a separate client reads the
result back. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from panini_video.models import VARIANTS, PaniniNet, save_model
from tests.servers.listeners import FFMPEG, Listener
from tests.servers.nginx import NginxRtmp
from tests.servers.nginx import missing as nginx_missing
from tests.servers.rtsp import rtsp_server, rtsp_unavailable
from tests.servers.silent import silent_server

CLIP = "videos/hamilton_short.mp4"  # 640x360 at 29.97 fps, 10 s, faces, AAC audio
RATE = 30000 / 1001

_why = rtsp_unavailable() or (None if FFMPEG else "the ffmpeg CLI is not installed (apt-get install ffmpeg)")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(11)
    return save_model(PaniniNet(VARIANTS["tiny"]).eval(), tmp_path_factory.mktemp("w") / "tiny.safetensors")


class Cli:
    """The command in a subprocess; its stderr in a file, read as it goes."""

    def __init__(self, args: list[str], log: Path, stdin: int | None = None) -> None:
        self.log = log
        self._log = log.open("wb")
        self.t0 = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "panini_video", *args], stdin=stdin, stdout=self._log, stderr=self._log, env=env
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout} s (exit {self.proc.poll()}):\n{self.text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self._log.close()


def common(tiny: Path, *extra: str) -> list[str]:
    return ["--model", str(tiny), "--device", "cpu", "--max-latency", "1000", "--stats-every", "0.5", *extra]


def video_frames(path: Path) -> tuple[int, list[float]]:
    """(frames, presentation times) of the first video stream, decoded by PyAV."""
    times: list[float] = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
    return len(times), times


def increasing(times: list[float]) -> bool:
    return all(b > a for a, b in zip(times, times[1:], strict=False))


def _frames_at(path: Path, every: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]


def faces_changed(testdata: Path, out: Path) -> tuple[float, float]:
    """(mean change inside the faces, mean change outside them) of output frames against the input
    frame they came from (found as the input frame nearest to each output frame)."""
    from panini_video.config import DetectConfig
    from panini_video.faces.stages import load_face_detector

    source = _frames_at(testdata / CLIP, 2)
    produced = _frames_at(out)[5:-5:8][:6]
    detector = load_face_detector(DetectConfig(), "cpu")
    inside: list[float] = []
    outside: list[float] = []
    for frame in produced:
        diffs = [np.abs(frame.astype(np.int16) - s).mean() for s in source]
        match = source[int(np.argmin(diffs))]
        det = detector.detect([match])[0]
        mask = np.zeros(frame.shape[:2], bool)
        for box in det.boxes:
            x0, y0, x1, y1 = (int(v) for v in box[:4])
            mask[max(0, y0) : y1, max(0, x0) : x1] = True
        if not mask.any():
            continue
        change = np.abs(frame.astype(np.int16) - match).mean(axis=2)
        inside.append(float(change[mask].mean()))
        outside.append(float(change[~mask].mean()))
    assert inside, "no face found in the frames compared"
    return float(np.mean(inside)), float(np.mean(outside))


def test_rtsp_in_restored_published_and_recorded_then_sigterm(testdata: Path, tmp_path: Path, tiny_file: Path) -> None:
    """Pull RTSP (with credentials), restore with tiny, publish RTSP and record; SIGTERM ends it
    with exit 0, the recording playable to its last frame, and the password nowhere."""
    secret = "s3cr3t-pw"
    stats = tmp_path / "stats.json"
    rec = tmp_path / "rec.mkv"
    with (
        rtsp_server(testdata / CLIP, audio=True, user="admin", password=secret) as server,
        Listener("rtsp", tmp_path / "published.mkv") as listener,
    ):
        cli = Cli(
            [server.url, listener.publish_url, str(rec), *common(tiny_file), "--stats-json", str(stats), "-v"],
            tmp_path / "cli.log",
        )
        cli.wait_for(r"live: in [1-9]", 60)
        time.sleep(5.0)
        assert listener.proc.poll() is None  # the publication is still going
        code = cli.stop()
        listener.wait(10)
    log = cli.text()
    assert code == 0, log[-3000:]
    assert "stopped by SIGTERM" in log
    report = json.loads(stats.read_text())
    live = report["live"]
    for text in (log, stats.read_text()):
        assert secret not in text
    assert "admin:***@" in report["input"]
    # the recording: playable to its last frame, every frame the run wrote, timestamps increasing
    frames, times = video_frames(rec)
    assert frames == report["frames_out"] > 0.5 * RATE * 5
    span = times[-1] - times[0]  # the input's time it covers; frames dropped under load leave gaps in it
    assert increasing(times) and span > 4.5 and frames <= span * RATE + 2
    # what was published, read back by a separate client (ffmpeg's listener wrote it)
    published, ptimes = video_frames(tmp_path / "published.mkv")
    assert published >= 0.9 * frames and increasing(ptimes[1:])  # ffmpeg's RTSP reader: first two at one time
    with av.open(str(tmp_path / "published.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio, "the AAC audio was passed through"
    inside, outside = faces_changed(testdata, rec)
    assert inside > 3 * outside + 2, (inside, outside)  # tiny's random weights repaint the faces only
    assert live["latency"]["p95_ms"] is not None and live["source"]["reconnects"] == 0


def test_the_source_killed_and_restarted_is_reconnected_with_the_output_kept_open(
    testdata: Path, tmp_path: Path, tiny_file: Path
) -> None:
    stats = tmp_path / "stats.json"
    with rtsp_server(testdata / CLIP) as server, Listener("rtsp", tmp_path / "published.mkv") as listener:
        cli = Cli([server.url, listener.publish_url, *common(tiny_file), "--stats-json", str(stats)], tmp_path / "l")
        cli.wait_for(r"live: in [1-9]", 60)
        time.sleep(1.5)
        server.kill()
        down = time.monotonic()
        time.sleep(1.0)
        server.start()
        back = time.monotonic()
        cli.wait_for(r"reconnects 1", 20)
        time.sleep(2.5)
        assert listener.proc.poll() is None  # the published stream was never closed
        code = cli.stop()
        listener.wait(10)
    assert code == 0, cli.text()[-3000:]
    live = json.loads(stats.read_text())["live"]
    source = live["source"]
    assert source["reconnects"] >= 1
    first_frame_after = source["last_reconnect_to_frame_s"]
    first_frame_after = first_frame_after[-1] if isinstance(first_frame_after, list) else first_frame_after
    assert first_frame_after is not None and first_frame_after < 5.0
    assert back - down < 3.0
    _, times = video_frames(tmp_path / "published.mkv")
    assert increasing(times[1:])  # ffmpeg's RTSP reader gives its first two packets one time
    # frames from after the restart reached the same published stream
    assert times[-1] - times[0] > 3.5


def test_a_source_that_accepts_and_sends_nothing_is_a_stall_within_its_timeout(tmp_path: Path, tiny_file: Path) -> None:
    with silent_server() as silent:
        cli = Cli(
            [
                f"rtsp://127.0.0.1:{silent.port}/cam",
                str(tmp_path / "out.mkv"),
                "--model",
                str(tiny_file),
                "--reconnect",
                "0",
                "--stall-timeout",
                "2",
                "--open-timeout",
                "30",
            ],
            tmp_path / "l",
        )
        code = cli.wait(60)
        took = time.monotonic() - cli.t0
    text = cli.text()
    assert code == 3, text[-3000:]
    assert "2.0 s" in text or "stall" in text.lower()
    assert took < 25  # start-up (imports, weights) plus 2 s, far under the 30 s open timeout
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")
def test_rtmp_in_and_out_through_nginx_rtmp(testdata: Path, tmp_path: Path, tiny_file: Path) -> None:
    assert FFMPEG is not None
    with NginxRtmp(tmp_path / "nginx").start() as nginx:
        feed = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(testdata / CLIP), "-c", "copy"]
            + ["-f", "flv", nginx.url("in")],
            stdin=subprocess.DEVNULL,
        )
        try:
            cli = Cli([nginx.url("in"), nginx.url("out"), *common(tiny_file)], tmp_path / "l")
            cli.wait_for(r"live: in [1-9]", 60)
            got = tmp_path / "got.flv"
            reader = subprocess.run(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", nginx.url("out"), "-t", "3", "-c", "copy"]
                + ["-y", str(got)],
                timeout=40,
                stdin=subprocess.DEVNULL,
            )
            code = cli.stop()
        finally:
            feed.kill()
            feed.wait(5)
    assert reader.returncode == 0
    assert code == 0, cli.text()[-3000:]
    frames, times = video_frames(got)
    assert frames >= 0.5 * RATE * 3 and increasing(times)


def test_mpegts_on_standard_input_loses_no_frame(testdata: Path, tmp_path: Path, tiny_file: Path) -> None:
    assert FFMPEG is not None
    clip = testdata / "videos/lowq_real_388x512_noaudio.mp4"  # 20 fps
    feed = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(clip), "-t", "2", "-c:v", "libx264"]
        + ["-preset", "ultrafast", "-f", "mpegts", "-"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert feed.stdout is not None
    out = tmp_path / "out.mkv"
    cli = Cli(["-", str(out), "--model", str(tiny_file), "--device", "cpu"], tmp_path / "l", stdin=feed.stdout.fileno())
    feed.stdout.close()
    code = cli.wait(120)
    feed.wait(10)
    assert code == 0, cli.text()[-3000:]
    frames, times = video_frames(out)
    assert frames == 40 and increasing(times)
