"""Clips made once per session for the I/O tests (tiny sizes, few frames)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.io.iomedia import VFR_PTS, make_audio_only, make_clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "plain": make_clip(d / "plain.mp4", metadata={"title": "plain clip", "comment": "made by the io tests"}),
        "vfr": make_clip(d / "vfr.mp4", pts=VFR_PTS),
        "ntsc": make_clip(
            d / "ntsc.mp4", pts=tuple(range(10)), time_base=Fraction(1001, 30000), rate=Fraction(30000, 1001)
        ),
        "odd": make_clip(d / "odd.mp4", size=(853, 479), pix_fmt="yuv444p", pts=tuple(range(0, 4 * 512, 512))),
        "rot90": make_clip(d / "rot90.mp4", rotation=90),
        "rot270": make_clip(d / "rot270.mp4", rotation=270, size=(48, 64)),
        "rotate_tag": make_clip(d / "rotate_tag.mkv", stream_tags={"rotate": "90"}),
        "anamorphic": make_clip(d / "anamorphic.mp4", sample_aspect_ratio=Fraction(32, 27)),
        "bt709": make_clip(d / "bt709.mp4", bt709=True),
        "aac": make_clip(d / "aac.mp4", audio_rate=48000),
        "two_tracks": make_clip(d / "two_tracks.mkv", audio_rate=44100, audio_tracks=2),
        "audio_only": make_audio_only(d / "audio_only.m4a"),
        "text": _write(d / "notes.mp4", b"this is not a video\n" * 50),
        "empty": _write(d / "empty.mp4", b""),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
