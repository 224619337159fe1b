"""SRT input for an FFmpeg built without libsrt (PyAV 18.1's wheel has none).

Debian's ``srt-live-transmit`` (srt-tools) connects to the SRT address and writes the MPEG-TS it
receives to its standard output; PyAV reads that pipe as a file. A connection's watchdog ends a
stalled relay by killing it, which ends the pipe, so a blocked read always returns. The relay's
own messages are kept, masked, for the error a user sees.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import threading
from collections import deque
from typing import IO

from panini_video.errors import UnsupportedInputError
from panini_video.io.urls import mask

log = logging.getLogger(__name__)

RELAY = "srt-live-transmit"


class SrtInputRelay:
    """``srt-live-transmit URL file://con``: ``stdout`` is the received MPEG-TS."""

    def __init__(self, url: str) -> None:
        exe = shutil.which(RELAY)
        if exe is None:
            raise UnsupportedInputError(
                f"{mask(url)}: this FFmpeg (PyAV's) has no SRT, and {RELAY} is not installed; "
                "install Debian's srt-tools (apt-get install srt-tools)"
            )
        # -a no: a lost connection ends the relay, and so the pipe (the source reconnects);
        # -q: no statistics on stderr, only what went wrong
        self.proc = subprocess.Popen(
            [exe, "-a", "no", "-q", url, "file://con"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._read_stderr, name="srt-input-relay-log", daemon=True).start()

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self.lines.append(mask(line))

    def said(self) -> str:
        """What the relay printed last (masked), for an error message."""
        return "; ".join(self.lines) or "no message"

    def kill(self) -> None:
        """End the relay at once (safe from any thread, twice): its pipe ends, a blocked read returns."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not end", RELAY, self.proc.pid)
