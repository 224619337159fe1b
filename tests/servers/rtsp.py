"""Debian's GStreamer RTSP server as a test fixture: a clip served in real time on 127.0.0.1.

The server runs in the SYSTEM interpreter (``/usr/bin/python3``: its ``gi`` bindings carry
``GstRtspServer``; the venv has none) as a child process we can kill, freeze (SIGSTOP: the
connection stays open and nothing more is sent, a true stall) and restart on the same port.
``rtsp_unavailable()`` says why it cannot run here, for a skip with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.servers import free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
START_S = 10.0  # the server prints READY within this, or the fixture fails


def rtsp_unavailable() -> str | None:
    """Why the GStreamer RTSP server cannot run here (None: it can)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found (the GStreamer RTSP server runs in the system interpreter)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
        "('qtdemux', 'h264parse', 'rtph264pay', 'aacparse', 'rtpmp4gpay')) else 3)"
    )
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the system python cannot be run ({e})"
    if done.returncode == 3:
        return "GStreamer plugins missing (qtdemux, h264parse, rtph264pay, aacparse, rtpmp4gpay: plugins-good/bad)"
    if done.returncode != 0:
        return "GStreamer RTSP server bindings missing (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gst-1.0)"
    return None


class RtspServer:
    """One served clip: ``url`` (with credentials when given), ``kill``, ``start``, ``freeze``."""

    def __init__(
        self,
        clip: Path,
        *,
        path: str = "/live",
        port: int | None = None,
        audio: bool = False,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.clip = clip
        self.path = path if path.startswith("/") else "/" + path
        self.port = port or free_port()
        self.audio = audio
        self.user = user
        self.password = password
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        cred = "" if self.user is None else f"{self.user}:{self.password or ''}@"
        return f"rtsp://{cred}127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        """Start (or restart) the server on its port; returns once it listens."""
        args = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(self.port), "--path", self.path, "--clip", str(self.clip)]
        if self.audio:
            args.append("--audio")
        if self.user is not None:
            args += ["--user", self.user, "--password", self.password or ""]
        deadline = time.monotonic() + START_S
        while True:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert self.proc.stdout is not None
            line = _readline(self.proc, deadline)
            if line.startswith("READY"):
                return
            self.kill()
            if time.monotonic() > deadline:  # a port still held by the last run: retried until then
                raise RuntimeError(f"GStreamer RTSP server did not start on port {self.port}: {line!r}")
            time.sleep(0.2)

    def kill(self) -> None:
        """Kill it at once (SIGKILL: connections drop as when a camera loses power)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def freeze(self) -> None:
        """Stop it sending (SIGSTOP): its connections stay open and silent."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)


def _readline(proc: subprocess.Popen[str], deadline: float) -> str:
    """The server's first line, or '' when it exits or says nothing before ``deadline``."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                return proc.stdout.readline().strip()
            if proc.poll() is not None:
                return ""
    return ""


@contextmanager
def rtsp_server(clip: Path, **kwargs: object) -> Iterator[RtspServer]:
    """A started ``RtspServer``, killed on the way out (thawed first if frozen)."""
    server = RtspServer(clip, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            with suppress(ProcessLookupError):
                server.thaw()
        server.kill()
