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

import dataclasses
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from panini_video.config import IOConfig
from panini_video.errors import OutputError, UsageError

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
# the crf each encoder accepts (8-bit); encoders not listed have no crf
CRF_RANGES: dict[str, tuple[int, int]] = {
    "libx264": (0, 51),
    "libx264rgb": (0, 51),
    "libx265": (0, 51),
    "libvpx-vp9": (0, 63),
    "libvpx": (0, 63),
    "libaom-av1": (0, 63),
    "libsvtav1": (0, 63),
}
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
VPX_DEADLINES = ("good", "best", "realtime")
# frames x264 holds in its look-ahead, by preset (x264's own preset table)
X264_LOOKAHEAD = {
    "ultrafast": 0,
    "superfast": 0,
    "veryfast": 10,
    "faster": 20,
    "fast": 30,
    "medium": 40,
    "slow": 50,
    "slower": 60,
    "veryslow": 60,
    "placebo": 60,
}


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
    """Choose encoder, pixel format, options and padding for ``path``; OutputError if impossible.

    The encoder is opened once with the plan (``try_encoder``): what it refuses is refused now.
    """
    ext = path.suffix.lower()
    if ext not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise OutputError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    codec, audio_codec = CONTAINERS[ext]
    if config.codec:
        codec = config.codec
    try:
        encoder = av.Codec(codec, "w")
    except Exception as e:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        raise UsageError(f"--codec {codec}: no encoder of that name in this FFmpeg build") from e
    if encoder.type != "video":
        raise UsageError(f"--codec {codec}: is an {encoder.type} encoder; give a video encoder (libx264, libx265, ...)")
    width, height = size
    accepted = [f.name for f in (encoder.video_formats or ())]
    pix_fmt = config.pix_fmt or (_DEFAULT_PIX_FMT if not accepted or _DEFAULT_PIX_FMT in accepted else accepted[0])
    try:
        fmt = av.VideoFormat(pix_fmt)
    except Exception as e:
        raise UsageError(f"--pix-fmt {pix_fmt}: unknown pixel format") from e
    if accepted and pix_fmt not in accepted:
        raise UsageError(f"--pix-fmt {pix_fmt}: {codec} does not take it; it takes {', '.join(accepted)}")
    if config.crf is not None and codec in CRF_RANGES:
        lo, hi = CRF_RANGES[codec]
        if not lo <= config.crf <= hi:
            raise UsageError(f"--crf {config.crf}: {codec} takes a crf from {lo} to {hi}")
    if config.preset and codec in ("libx264", "libx264rgb", "libx265") and config.preset not in X264_PRESETS:
        raise UsageError(f"--preset {config.preset}: {codec} knows {', '.join(X264_PRESETS)}")
    vpx_known = (*VPX_DEADLINES, *X264_PRESETS)  # an x264 name (from a preset file) is ignored by VP9
    if config.preset and codec in ("libvpx-vp9", "libvpx") and config.preset not in vpx_known:
        raise UsageError(f"--preset {config.preset}: {codec} knows {', '.join(VPX_DEADLINES)} (its deadline)")
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
    if config.crf is not None and codec not in CRF_RANGES:
        log.warning("%s: %s has no crf; crf %d ignored", path, codec, config.crf)
    if codec in ("libx264", "libx265"):
        if config.crf is not None:
            options["crf"] = str(config.crf)
        options["preset"] = config.preset or "medium"
        if codec == "libx265":
            options["x265-params"] = "log-level=warning"  # x265 prints a page of settings at info
    elif codec == "libvpx-vp9":
        # constant-quality mode needs b:v=0; row-mt and cpu-used keep VP9 from being painfully slow
        options.update({"crf": str(config.crf if config.crf is not None else 32), "b": "0"})
        options.update({"row-mt": "1", "cpu-used": "4"})
        if config.preset in VPX_DEADLINES:
            options["deadline"] = config.preset
        elif config.preset:
            log.warning("%s: preset %r is x264's; %s ignores it", path, config.preset, codec)
    elif config.preset:
        log.warning("%s: %s has no speed preset; preset %r ignored", path, codec, config.preset)
    container_options: dict[str, str] = {}
    if ext in (".mp4", ".m4v", ".mov"):
        container_options["movflags"] = "+faststart"  # index first: playable while downloading
    elif ext == ".mkv":
        # FFmpeg would shift every timestamp so the earliest (AAC priming: about -64 ms) is 0;
        # Matroska blocks can sit before their cluster, so keep the input's times instead
        container_options["avoid_negative_ts"] = "disabled"
    plan = EncoderPlan(
        codec=codec,
        pix_fmt=pix_fmt,
        size=(width, height),
        coded_size=coded,
        audio_codec=audio_codec,
        options=options,
        container_options=container_options,
    )
    try_encoder(plan)
    return plan


# What x264 holds, in RGB frames of its picture size, measured at 1920x1080 on 2 cores (3 frame
# threads; PyAV 18.1) with rc-lookahead 0 and the preset's own: ultrafast 14, veryfast 33 (40 at
# its 10), fast 34 (63 at 30), medium 35 (76 at 40), slow 37 (89 at 50): about one frame per frame
# of look-ahead on a base of 35 (14 for the presets without B-frames); 7680x4320 medium with
# look-ahead 0 measured 29. Each thread beyond those 3 is counted as 1.5 frames more.
X264_BASE = {"ultrafast": 14.0, "superfast": 14.0}
X264_BASE_OTHERS, X264_PER_THREAD, X264_PER_LOOKAHEAD, X264_MEASURED_THREADS = 35.0, 1.5, 1.0, 3


def encoder_threads(cores: int) -> int:
    """x264's and x265's default thread count on ``cores`` cores."""
    return max(1, int(1.5 * cores))


def encoder_frames(codec: str, preset: str | None, cores: int, lookahead: int | None = None) -> float:
    """How many RGB frames of its picture size the encoder holds (its threads and look-ahead)."""
    if codec in ("libx264", "libx264rgb", "libx265"):
        name = preset or "medium"
        la = X264_LOOKAHEAD.get(name, 40) if lookahead is None else lookahead
        extra_threads = max(0, encoder_threads(cores) - X264_MEASURED_THREADS)
        return X264_BASE.get(name, X264_BASE_OTHERS) + X264_PER_THREAD * extra_threads + X264_PER_LOOKAHEAD * la
    return 4.0  # intra or light encoders (ffv1, prores, mpeg4, vp9 at cpu-used 4): a few pictures


def with_lookahead(plan: EncoderPlan, lookahead: int | None) -> EncoderPlan:
    """``plan`` with x264's rc-lookahead cut to ``lookahead`` frames (memory); as it is when None or longer."""
    if lookahead is None or plan.codec not in ("libx264", "libx264rgb"):
        return plan
    if lookahead >= X264_LOOKAHEAD.get(plan.options.get("preset") or "medium", 40):
        return plan
    return dataclasses.replace(plan, options={**plan.options, "rc-lookahead": str(lookahead)})


def try_encoder(plan: EncoderPlan) -> None:
    """Open the encoder with the plan's size, format and options: whatever it refuses, it refuses now."""
    ctx = av.CodecContext.create(plan.codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height = plan.coded_size
    ctx.pix_fmt = plan.pix_fmt
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25)
    ctx.options = dict(plan.options)
    try:
        ctx.open()
    except (av.FFmpegError, OverflowError, ValueError) as e:
        settings = ", ".join(f"{k}={v}" for k, v in plan.options.items()) or "no options"
        w, h = plan.coded_size
        raise UsageError(f"the encoder {plan.codec} refuses {w}x{h} {plan.pix_fmt} with {settings} ({e})") from e
