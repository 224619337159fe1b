"""Which encoder, pixel format and options an output gets, from its extension and ``IOConfig``.

Odd frame sizes: H.264 (and H.265) code 4:2:0 and 4:2:2 pictures in whole chroma samples, and
their cropping window moves in steps of two luma pixels, so an odd width or height cannot be
stored exactly in yuv420p. When the pixel format is left to us we keep the size exact and
switch to yuv444p (High 4:4:4 profile; every FFmpeg-based player decodes it, some hardware
decoders and browsers do not). When the user asked for a subsampled format explicitly, we honour
it and pad the frame by one edge-replicated row/column, logging the new size. VP9 codes odd
sizes in 4:2:0 natively, so .webm keeps yuv420p.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import av

from panini_video.config import IOConfig
from panini_video.errors import OutputError

log = logging.getLogger(__name__)

# extension -> (video encoder, audio encoder used when the input's audio cannot be copied)
CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("libx264", "aac"),
    ".m4v": ("libx264", "aac"),
    ".mov": ("libx264", "aac"),
    ".mkv": ("libx264", "aac"),
    ".webm": ("libvpx-vp9", "libopus"),
}

_H26X = {"libx264", "libx264rgb", "libx265", "h264", "hevc"}
_DEFAULT_PIX_FMT = "yuv420p"


@dataclass(frozen=True, slots=True)
class EncoderPlan:
    """How the video of one output is encoded.

    size: the frames' (width, height) as written by the caller; coded_size: what the encoder
    gets (size plus padding, when padding was needed); audio_codec: the encoder for audio that
    the container cannot take as it is.
    """

    codec: str
    pix_fmt: str
    size: tuple[int, int]
    coded_size: tuple[int, int]
    audio_codec: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)

    @property
    def padded(self) -> bool:
        return self.size != self.coded_size


def plan_encoder(path: Path, config: IOConfig, size: tuple[int, int]) -> EncoderPlan:
    """Choose encoder, pixel format, options and padding for ``path``; OutputError if impossible."""
    ext = path.suffix.lower()
    if ext not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise OutputError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    codec, audio_codec = CONTAINERS[ext]
    if config.codec:
        codec = config.codec
    try:
        av.Codec(codec, "w")
    except Exception as e:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        raise OutputError(f"{path}: no encoder named {codec!r} in this FFmpeg build") from e
    width, height = size
    pix_fmt = config.pix_fmt or _DEFAULT_PIX_FMT
    try:
        fmt = av.VideoFormat(pix_fmt)
    except Exception as e:
        raise OutputError(f"{path}: unknown pixel format {pix_fmt!r}") from e
    coded = (width, height)
    odd_w = width % 2 == 1 and fmt.chroma_width(2) == 1
    odd_h = height % 2 == 1 and fmt.chroma_height(2) == 1
    if codec in _H26X and (odd_w or odd_h):
        if config.pix_fmt is None:
            pix_fmt = "yuv444p"
            log.info("%s: %dx%d is odd; encoding yuv444p to keep the size exact", path, width, height)
        else:
            coded = (width + (width % 2 if odd_w else 0), height + (height % 2 if odd_h else 0))
            log.warning(
                "%s: %s cannot hold an odd size with %s; padding %dx%d to %dx%d",
                path,
                codec,
                pix_fmt,
                width,
                height,
                *coded,
            )
    options: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        if config.crf is not None:
            options["crf"] = str(config.crf)
        options["preset"] = config.preset or "medium"
    elif codec == "libvpx-vp9":
        # constant-quality mode needs b:v=0; row-mt and cpu-used keep VP9 from being painfully slow
        options.update({"crf": str(config.crf if config.crf is not None else 32), "b": "0"})
        options.update({"row-mt": "1", "cpu-used": "4"})
        if config.preset:
            if config.preset in ("good", "best", "realtime"):
                options["deadline"] = config.preset
            else:
                log.warning("%s: preset %r means nothing to %s; ignored", path, config.preset, codec)
    else:
        if config.crf is not None:
            options["crf"] = str(config.crf)
        if config.preset:
            options["preset"] = config.preset
    container_options: dict[str, str] = {}
    if ext in (".mp4", ".m4v", ".mov"):
        container_options["movflags"] = "+faststart"  # index first: playable while downloading
    elif ext == ".mkv":
        # FFmpeg would shift every timestamp so the earliest (AAC priming: about -64 ms) is 0;
        # Matroska blocks can sit before their cluster, so keep the input's times instead
        container_options["avoid_negative_ts"] = "disabled"
    return EncoderPlan(
        codec=codec,
        pix_fmt=pix_fmt,
        size=(width, height),
        coded_size=coded,
        audio_codec=audio_codec,
        options=options,
        container_options=container_options,
    )
