"""SRT for an FFmpeg built without libsrt (PyAV 18.1's wheel has none), through Debian's
``srt-live-transmit`` (srt-tools), in both directions.

- In (``SrtInputRelay``): the relay connects to the SRT address and writes the MPEG-TS it
  receives to its standard output; PyAV reads that pipe as a file. A connection's watchdog ends
  a stalled relay by killing it, which ends the pipe, so a blocked read always returns.
- Out (``SrtOutputRelay``): PyAV writes MPEG-TS into the relay's standard input (the object is
  the file PyAV writes to); its "connected" line is the check that the far end is there, and a
  write that cannot go through within ``timeout`` (the relay stalled) or finds it gone raises
  OSError, which the sink treats as a drop.

``-a no`` in both: a lost connection ends the relay, and the source or sink reconnects itself.
The relay's messages are kept, masked, for the errors a user sees.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO

from panini_video.errors import OutputError, PaniniError, UnsupportedInputError
from panini_video.io.urls import mask

log = logging.getLogger(__name__)

RELAY = "srt-live-transmit"


class _Relay:
    """``srt-live-transmit SRC DST`` as a child, its stderr read (masked) in a thread."""

    def __init__(self, url: str, args: list[str], missing: type[PaniniError], **pipes: int) -> None:
        exe = shutil.which(RELAY)
        if exe is None:
            raise missing(
                f"{mask(url)}: this FFmpeg (PyAV's) has no SRT, and {RELAY} is not installed; "
                "install Debian's srt-tools (apt-get install srt-tools)"
            )
        self.url = url
        self.proc = subprocess.Popen([exe, "-a", "no", *args], stderr=subprocess.PIPE, **pipes)  # type: ignore[call-overload]
        self.lines: deque[str] = deque(maxlen=20)
        self.connected = threading.Event()  # said "connected", or ended (so a waiter wakes)
        threading.Thread(target=self._read_stderr, name="srt-relay-log", daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self.lines.append(mask(line))
            if "connected" in line.lower():
                self.connected.set()
        self.connected.set()

    def said(self) -> str:
        """What the relay printed last (masked), for an error message."""
        return "; ".join(self.lines) or "no message"

    def kill(self) -> None:
        """End the relay at once (safe from any thread, twice): its pipes end, a blocked read returns."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not end", RELAY, self.proc.pid)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


class SrtInputRelay(_Relay):
    """``srt-live-transmit URL file://con``: ``stdout`` is the received MPEG-TS."""

    def __init__(self, url: str) -> None:
        # -q: no statistics on stderr, only what went wrong
        super().__init__(
            url, ["-q", url, "file://con"], UnsupportedInputError, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout


class SrtOutputRelay(_Relay):
    """``srt-live-transmit file://con URL`` fed MPEG-TS on its standard input (``write``)."""

    def __init__(self, url: str, timeout: float) -> None:
        # -c 1316: 7 TS packets a datagram
        super().__init__(
            url, ["-c", "1316", "file://con", url], OutputError, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        self.timeout = timeout

    def wait_connected(self) -> None:
        self.connected.wait(self.timeout)
        if self.proc.poll() is not None or not self.connected.is_set():
            self.kill()
            said = "; ".join(line for line in self.lines if line) or "no answer"
            raise OSError(errno.ECONNREFUSED, f"the SRT relay did not connect within {self.timeout:g} s ({said})")

    def write(self, data: bytes) -> int:
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        deadline = time.monotonic() + self.timeout
        while view:
            if self.proc.poll() is not None:
                raise OSError(errno.EPIPE, "the SRT relay ended (the connection was lost)")
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError(errno.ETIMEDOUT, f"the SRT relay took nothing for {self.timeout:g} s")
            _, ready, _ = select.select([], [fd], [], min(left, 0.5))
            if ready:
                view = view[os.write(fd, view[: 1 << 16]) :]
        return len(data)

    def close(self) -> None:
        """Let the relay send what it has, then end it (bounded).

        srt-live-transmit does not end at the end of its input, so it is given a second (SRT's
        live mode sends within its latency, 120 ms by default) and then asked to stop.
        """
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=min(self.timeout, 1.0))
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.kill()
