"""ffmpeg CLI listeners that a publisher connects to: RTSP (``-rtsp_flags listen``), SRT and UDP.

Each runs Debian's ``ffmpeg`` as a subprocess on a free 127.0.0.1 port and copies what it
receives into a file, so a test reads the published stream back with ffprobe. Every wait is
bounded; ``stop`` ends the listener with SIGINT (ffmpeg then finishes the file) and kills it if
it does not end in time.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FFMPEG = shutil.which("ffmpeg")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port of 127.0.0.1 nothing listens on now (TCP, or UDP with ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bound(port: int, table: str) -> bool:
    """Whether a socket listens on (TCP) or is bound to (UDP) ``port``, read from /proc/net
    without connecting (a one-client listener such as ffmpeg's takes a probe for its client)."""
    try:
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        local, state = fields[1], fields[3]
        # TCP: listening (0A), or already connected to its one client (01: it stops listening then)
        if int(local.rsplit(":", 1)[1], 16) == port and (table == "udp" or state in ("0A", "01")):
            return True
    return False


def wait_for_tcp(port: int, timeout: float, table: str = "tcp") -> bool:
    """True once something listens on TCP port ``port`` (or is bound to UDP ``port``) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _bound(port, table):
            return True
        time.sleep(0.05)
    return False


class Listener:
    """``ffmpeg -i URL -c copy OUT``, where URL is a listening RTSP or SRT address."""

    def __init__(self, kind: str, out: Path, port: int | None = None, timeout: float = 30.0) -> None:
        if FFMPEG is None:
            raise RuntimeError("the ffmpeg CLI is not installed (apt-get install ffmpeg)")
        self.kind, self.out, self.timeout = kind, out, timeout
        self.port = port or free_port(socket.SOCK_DGRAM if kind in ("udp", "srt") else socket.SOCK_STREAM)
        if kind == "rtsp":
            self.publish_url = f"rtsp://127.0.0.1:{self.port}/live"
            args = ["-rtsp_flags", "listen", "-timeout", str(int(timeout * 1e6)), "-i", self.publish_url]
        elif kind == "srt":
            self.publish_url = f"srt://127.0.0.1:{self.port}?mode=caller"
            args = ["-i", f"srt://127.0.0.1:{self.port}?mode=listener&listen_timeout={int(timeout * 1e6)}"]
        else:
            raise ValueError(f"no ffmpeg listener for {kind} (UDP: UdpRecorder)")
        self.log = out.with_suffix(".log")
        self._log = self.log.open("wb")
        # a short probe: a live stream has no end to probe up to
        probe = ["-probesize", "200000", "-analyzeduration", "500000"]
        cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "info", *probe, *args, "-c", "copy", "-y", str(out)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)
        self._wait_ready()

    def _wait_ready(self) -> None:
        if not wait_for_tcp(self.port, 10.0, "tcp" if self.kind == "rtsp" else "udp"):
            self.stop()
            raise RuntimeError(f"the {self.kind} listener did not start: {self.log.read_text()[-2000:]}")

    def wait(self, timeout: float) -> int | None:
        """Wait for ffmpeg to end by itself (the publisher closed); its exit status, None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT (ffmpeg writes its trailer), then SIGKILL after ``grace`` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()

    def kill(self) -> None:
        """The server dies at once (a test of a dropped connection)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_RECORD_DATAGRAMS = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(float(sys.argv[3]))
with open(sys.argv[2], "wb") as f:
    try:
        while True:
            f.write(s.recv(65536))
            f.flush()
    except TimeoutError:
        pass
"""


class UdpRecorder:
    """Every datagram sent to 127.0.0.1:port, appended to ``out`` (the MPEG-TS as sent).

    Not ``ffmpeg -i udp://``: Debian's ffmpeg 5.1 loses the first group of pictures of a UDP
    stream while it probes it, which would hide what the publisher sent. The recorder ends by
    itself after ``idle`` seconds without a datagram.
    """

    def __init__(self, out: Path, idle: float = 1.0, port: int | None = None) -> None:
        self.out, self.idle = out, idle
        self.port = port or free_port(socket.SOCK_DGRAM)
        self.publish_url = f"udp://127.0.0.1:{self.port}"
        script = [sys.executable, "-c", _RECORD_DATAGRAMS, str(self.port), str(out), str(idle)]
        self.proc = subprocess.Popen(script, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_tcp(self.port, 10.0, "udp"):
            self.stop()
            raise RuntimeError("the UDP recorder did not start")

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> UdpRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
