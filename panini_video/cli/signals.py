"""Stop cleanly on SIGINT, SIGTERM, SIGHUP and SIGQUIT.

The first signal raises ``Interrupted`` (exit 128 + the signal's number) in the main thread, where
the command is waiting on its stage graph: every stage stops, the writer removes its temporary
file, the output is not created. A second signal while that shutdown runs is only logged: raising
again inside the clean-up would skip it and end the interpreter while the decoder's and torch's
native threads still run, which aborts natively ("terminate called without an active
exception", exit 134). A third one gives up on the clean-up and ends the process at once with the
same exit code (a user pressing Ctrl-C three times wants out).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from panini_video.errors import Interrupted

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)


class SignalInterrupted(Interrupted):
    """Interrupted by a signal; the exit code is 128 + its number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted ({signal.Signals(signum).name})")


class _Handler:
    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            raise SignalInterrupted(signum)
        if len(self.received) == 2:
            # stderr directly: logging may be what the main thread is in the middle of
            sys.stderr.write(
                f"panini-video: {signal.Signals(signum).name} again; still cleaning up (once more: quit now)\n"
            )
            return
        os._exit(128 + self.received[0])


@contextmanager
def stop_on_signals(restore: bool = True) -> Iterator[_Handler]:
    """Install the handlers for the block (main thread only; elsewhere a no-op).

    restore: put the previous handlers back at the end (False: the caller decides what follows).
    """
    handler = _Handler()
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield handler
    finally:
        for sig, old in previous.items() if restore else ():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def ignore_stop_signals() -> None:
    """From now on the stop signals are ignored (the command has finished; only the exit is left)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
