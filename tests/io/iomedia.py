"""Tiny clips made with PyAV for the I/O tests, and oracles that read files with plain PyAV."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# irregular gaps (1/15360 s units): 1 ms to 0.2 s, including neighbours one tick apart
VFR_PTS = (0, 512, 1536, 1700, 3000, 3100, 6172, 6173, 7000, 10000, 10512, 13000)


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A frame whose content changes with ``index``: a gradient plus a moving bar."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    img[..., 2] = (index * 37) % 256
    bar = (index * 5) % width
    img[:, bar : bar + 3] = 255
    return img


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    pts: Sequence[int] = tuple(range(0, 12 * 512, 512)),
    time_base: Fraction = Fraction(1, 15360),
    rate: Fraction = Fraction(30),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    audio_rate: int | None = None,
    audio_seconds: float | None = None,
    metadata: dict[str, str] | None = None,
    bt709: bool = False,
    stream_tags: dict[str, str] | None = None,
    audio_tracks: int = 1,
    sample_aspect_ratio: Fraction | None = None,
) -> Path:
    """Write a video clip with the given pts (and optionally AAC audio and a display rotation)."""
    width, height = size
    with av.open(str(path), "w") as c:
        if metadata:
            c.metadata.update(metadata)
        vs = c.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.time_base = time_base
        vs.time_base = time_base
        if codec == "libx264":
            vs.options = {"preset": "ultrafast"}
        if rotation is not None:
            vs.set_display_rotation(rotation)
        if sample_aspect_ratio is not None:
            vs.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if stream_tags:
            vs.metadata.update(stream_tags)
        color: dict[str, int] = {}
        if bt709:  # tagged and converted as BT.709, limited range (AVCOL_* 1)
            cc = vs.codec_context
            cc.colorspace = cc.color_range = cc.color_primaries = cc.color_trc = 1
            color = {"dst_colorspace": 1, "dst_color_range": 1}
        tracks = []
        for k in range(audio_tracks if audio_rate is not None else 0):
            aud = c.add_stream("aac", rate=audio_rate)
            aud.layout = "stereo"
            aud.metadata["language"] = ("eng", "fra", "deu")[k % 3]
            tracks.append(aud)
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            f = f.reformat(format=pix_fmt, **color)
            f.pts, f.time_base = p, time_base
            for pkt in vs.encode(f):
                c.mux(pkt)
        for pkt in vs.encode(None):
            c.mux(pkt)
        for k, aud in enumerate(tracks):
            seconds = audio_seconds if audio_seconds is not None else float(pts[-1] * time_base) + 0.1
            _write_tone(c, aud, audio_rate or 48000, seconds, freq=440.0 * (k + 1))
    return path


def make_audio_only(path: Path, rate: int = 44100, seconds: float = 0.5) -> Path:
    with av.open(str(path), "w") as c:
        aud = c.add_stream("aac", rate=rate)
        aud.layout = "stereo"
        _write_tone(c, aud, rate, seconds)
    return path


def _write_tone(
    c: av.container.OutputContainer, aud: av.audio.stream.AudioStream, rate: int, seconds: float, freq: float = 440.0
) -> None:
    n = int(rate * seconds)
    t = np.arange(n) / rate
    tone = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    chunk = 1024
    for start in range(0, n, chunk):
        part = tone[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(np.stack([part, part]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for pkt in aud.encode(frame):
            c.mux(pkt)
    for pkt in aud.encode(None):
        c.mux(pkt)


def video_times(path: Path, limit: int | None = None) -> list[Fraction]:
    """Presentation times (exact fractions of a second) of the decoded video frames, by plain PyAV."""
    out: list[Fraction] = []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            out.append(f.pts * f.time_base)
            if limit is not None and len(out) >= limit:
                break
    return out


def audio_packets(path: Path, track: int = 0) -> list[tuple[bytes, Fraction | None, Fraction | None]]:
    """(payload, pts seconds, duration seconds) of every packet of one audio stream."""
    with av.open(str(path)) as c:
        if len(c.streams.audio) <= track:
            return []
        s = c.streams.audio[track]
        return [
            (
                bytes(p),
                p.pts * p.time_base if p.pts is not None else None,
                p.duration * p.time_base if p.duration is not None else None,
            )
            for p in c.demux(s)
            if p.size
        ]


def stream_duration(path: Path) -> Fraction:
    """The first video stream's duration in seconds from the header (Matroska: the container's)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return s.duration * s.time_base
        assert c.duration is not None
        return Fraction(c.duration, av.time_base)
