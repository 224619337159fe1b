"""Typed errors: one family, each subclass also the builtin it means, each with its exit code.

Library code raises these; only ``panini_video.cli`` turns them into exit codes.

| exit | class                  | meaning                                             |
|------|------------------------|-----------------------------------------------------|
| 1    | PaniniError            | anything else of ours                               |
| 2    | UsageError             | bad options, preset or configuration                |
| 3    | InputError             | the input is missing, empty, corrupt or not media   |
| 4    | OutputError            | the output cannot be written                        |
| 5    | ProcessingError        | a stage failed while processing                     |
| 6    | WeightsError           | weights missing, mismatched or not downloadable     |
| 130  | Interrupted            | Ctrl-C / SIGTERM                                    |
"""

from __future__ import annotations


class PaniniError(Exception):
    """Base of every error panini-video raises on purpose."""

    exit_code: int = 1


class UsageError(PaniniError, ValueError):
    """Bad command-line options, preset file or configuration value."""

    exit_code = 2


class InputError(PaniniError, ValueError):
    """The input cannot be used: missing, empty, truncated, corrupt, not media, no video."""

    exit_code = 3


class InputNotFoundError(InputError, FileNotFoundError):
    """The input path does not exist."""


class NoVideoStreamError(InputError):
    """The input is media but holds no video stream (audio only, for example)."""


class CorruptInputError(InputError):
    """The input is empty, truncated, corrupt or not a media file at all."""


class SourceLostError(InputError, ConnectionError):
    """A live input cannot be reached, or was lost, and its reconnect budget is spent (or it has none)."""


class StallError(SourceLostError, TimeoutError):
    """A live input sent nothing for its open or stall timeout, and its reconnect budget is spent."""


class UnsupportedInputError(InputError):
    """The input needs a protocol or device this FFmpeg build lacks (srt, v4l2): no retry can help."""


class OutputError(PaniniError, OSError):
    """The output cannot be written (bad extension, unwritable folder, encoder refused)."""

    exit_code = 4


class ProcessingError(PaniniError, RuntimeError):
    """A stage of the graph failed while processing; ``__cause__`` holds the original."""

    exit_code = 5


class WeightsError(PaniniError):
    """Model or detector weights are missing, do not match, or cannot be fetched."""

    exit_code = 6


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No weights file at the path or in the cache; the message says how to get one."""


class CheckpointMismatchError(WeightsError, ValueError):
    """A checkpoint's keys or shapes differ from the network's; the message names them."""


class DownloadError(WeightsError, ConnectionError):
    """A download failed (offline, HTTP error, size or checksum mismatch)."""


class Interrupted(PaniniError, KeyboardInterrupt):
    """The run was interrupted (Ctrl-C or SIGTERM); nothing finished-looking was left."""

    exit_code = 130
