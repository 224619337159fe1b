"""What a file is: its size, hashes of its ends, and the facts a probe reads from it.

A full SHA-256 of a multi-gigabyte master would cost as much as the run, so an input is named by
its size and the SHA-256 of its first and of its last MiB: enough to tell two files apart and to
find the same file again, read in milliseconds. Weight files (a few MB to a few hundred) are hashed
whole, streamed, once per process.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from panini_video.errors import InputError
from panini_video.io.probe import probe

MIB = 1 << 20
CHUNK = 1 << 20

_file_hashes: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> sha256


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A file's size in bytes and the SHA-256 (hex) of its first and its last ``MIB`` bytes.

    A file of one MiB or less has both hashes equal: each covers the whole file.
    """

    path: str
    size: int
    sha256_first_mib: str
    sha256_last_mib: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256_first_mib": self.sha256_first_mib,
            "sha256_last_mib": self.sha256_last_mib,
        }


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """The size and end hashes of ``path``; InputError when it cannot be read."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            first = hashlib.sha256(f.read(MIB)).hexdigest()
            f.seek(max(size - MIB, 0))
            last = hashlib.sha256(f.read(MIB)).hexdigest()
    except OSError as e:
        raise InputError(f"{p}: cannot be read to name it in the report ({e.strerror or e})") from e
    return FileIdentity(str(p), size, first, last)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a whole file, streamed; remembered while the file's size and mtime stay."""
    p = Path(path)
    try:
        st = os.stat(p)
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        if key in _file_hashes:
            return _file_hashes[key]
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError as e:
        raise InputError(f"{p}: cannot be read to hash it for the report ({e.strerror or e})") from e
    _file_hashes[key] = h.hexdigest()
    return _file_hashes[key]


def _rate(value: Fraction | None) -> str | None:
    return None if value is None else str(value)


def media_facts(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a probe reads from a video file: container, codec, profile, pix_fmt, size, rate, count, colour, streams."""
    info = probe(path)
    return {
        "container": info.format,
        "codec": info.codec,
        "profile": info.profile,
        "pix_fmt": info.pix_fmt,
        "width": info.width,
        "height": info.height,
        "frame_rate": _rate(info.frame_rate),
        "base_rate": _rate(info.base_rate),
        "frame_count": info.frame_count,
        "duration_s": info.duration,
        "start_time_s": info.start_time,
        "rotation": info.rotation,
        "sample_aspect_ratio": _rate(info.sample_aspect_ratio),
        "colour": {
            "matrix": info.color_space,
            "range": info.color_range,
            "primaries": info.color_primaries,
            "transfer": info.color_trc,
        },
        "hdr": None if info.hdr is None else info.hdr.as_dict(),
        "streams": [
            {
                "index": s.index,
                "kind": s.kind,
                "codec": s.codec,
                "time_base": _rate(s.time_base),
                **{k: v for k, v in s.extra.items() if isinstance(v, str | int | float) or v is None},
                **({"language": s.metadata["language"]} if "language" in s.metadata else {}),
            }
            for s in info.streams
        ],
        "metadata": dict(info.metadata),
    }
