"""What an input or output name is (a file, a live URL, a capture device, standard input) and
how it may be shown: credentials in a URL are never printed, logged or written to stats.

``live_input_kind`` / ``live_output_kind`` recognise live names by their scheme or device path
(a file that happens to exist under a name like ``rtsp:x`` stays a file only when it exists and
has no ``://``). ``mask`` replaces the password of ``scheme://user:password@host`` and secret
query values (``passphrase=``, ``password=``, ``token=``, ...) with ``***``; ``MaskingFilter``
does the same to every log record, as a safety net under the code that already masks.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

LiveInputKind = Literal["rtsp", "rtmp", "srt", "udp", "hls", "v4l2", "stdin"]
LiveOutputKind = Literal["rtsp", "rtmp", "srt", "udp"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
INPUT_SCHEMES: dict[str, LiveInputKind] = {
    "rtsp": "rtsp",
    "rtsps": "rtsp",
    "rtmp": "rtmp",
    "rtmps": "rtmp",
    "srt": "srt",
    "udp": "udp",
    "http": "hls",
    "https": "hls",
}
# every input scheme but HLS (http(s)) can be published to
OUTPUT_SCHEMES: dict[str, LiveOutputKind] = {
    k: v  # type: ignore[misc]
    for k, v in INPUT_SCHEMES.items()
    if v in ("rtsp", "rtmp", "srt", "udp")
}
_V4L2 = re.compile(r"^/dev/video\d+$")
# user:password@ right after the scheme (the password may hold anything but '@' and '/')
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):(?P<secret>[^@/\s]*)@")
_SECRET_QUERY = re.compile(
    r"(?P<head>[?&](?:passphrase|password|passwd|pass|pwd|token|key|secret|auth|streamid)=)(?P<secret>[^&\s]*)",
    re.IGNORECASE,
)
MASK = "***"


def scheme_of(name: str) -> str | None:
    """The URL scheme in lower case (``rtsp``), None for a path."""
    m = _SCHEME.match(name)
    return m.group(1).lower() if m else None


def live_input_kind(name: str) -> LiveInputKind | None:
    """What kind of live input ``name`` is, None for a file (or an unknown scheme: see ``unknown_scheme``)."""
    if name == "-":
        return "stdin"
    if _V4L2.match(name):
        return "v4l2"
    scheme = scheme_of(name)
    return None if scheme is None else INPUT_SCHEMES.get(scheme)


def live_output_kind(name: str) -> LiveOutputKind | None:
    """What kind of live output ``name`` is (a publish URL), None for a file."""
    scheme = scheme_of(name)
    return None if scheme is None else OUTPUT_SCHEMES.get(scheme)


def is_url(name: str) -> bool:
    return scheme_of(name) is not None


def mask(text: str) -> str:
    """``text`` with every URL password and secret query value replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('head')}{MASK}", text)


def secrets_in(name: str) -> list[str]:
    """The secret parts of ``name`` (passwords, passphrases), for ``MaskingFilter``."""
    found = [m.group("secret") for m in _USERINFO.finditer(name)]
    found += [m.group("secret") for m in _SECRET_QUERY.finditer(name)]
    return [s for s in found if s and s != MASK]


class MaskingFilter(logging.Filter):
    """Masks URL credentials, and any of ``secrets``, in every record that passes a handler."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets or [] if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is left to logging's own handling
            return True
        masked = mask(message)
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_masking(names: list[str]) -> MaskingFilter:
    """Add a ``MaskingFilter`` knowing the secrets of ``names`` to every root handler; returns it."""
    filt = MaskingFilter([s for n in names for s in secrets_in(n)])
    for handler in logging.getLogger().handlers:
        handler.addFilter(filt)
    return filt
