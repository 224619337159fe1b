"""Which encoder, pixel format and options an output gets, from its extension and ``IOConfig``.

Odd frame sizes: H.264 (and H.265) code 4:2:0 and 4:2:2 pictures in whole chroma samples, and
their cropping window moves in steps of two luma pixels, so an odd width or height cannot be
stored exactly in yuv420p. When the pixel format is left to us we keep the size exact and
switch to yuv444p (High 4:4:4 profile; every FFmpeg-based player decodes it, some hardware
decoders and browsers do not). When the user asked for a subsampled format explicitly, we honour
it and pad the frame by one edge-replicated row/column, logging the new size. VP9 codes odd
sizes in 4:2:0 natively, so .webm keeps yuv420p.

Lossless and mezzanine outputs: FFV1 (level 3, a CRC in every slice, every frame a keyframe) in
Matroska; ProRes (FFmpeg's prores_ks, profiles proxy to 4444 XQ, 10-bit 4:2:2 or 4:4:4) in
QuickTime or Matroska; DNxHR (the dnxhd encoder's dnxhr_* profiles) in QuickTime or MXF; x264 at
crf 0 is lossless too. Which codec goes in which container is checked here, before any work, and
the error names what works: FFmpeg's own refusal would come only when the file is started.
When the video is lossless or mezzanine the audio that must be re-encoded becomes lossless
too (FLAC in Matroska, 24-bit PCM in QuickTime and MXF): an archive copy loses nothing twice.
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
    ".mxf": ("dnxhd", "pcm_s24le"),
}
# names the user may give for the mezzanine encoders -> FFmpeg's encoder
CODEC_ALIASES = {"prores": "prores_ks", "dnxhr": "dnxhd", "x264": "libx264", "x265": "libx265"}
# the containers (extensions) each of these encoders may go in; the first is the one to suggest
CODEC_CONTAINERS: dict[str, tuple[str, ...]] = {
    "ffv1": (".mkv",),
    "prores_ks": (".mov", ".mkv"),
    "dnxhd": (".mov", ".mxf"),
    "libvpx-vp9": (".webm", ".mkv", ".mp4"),
    "libx264": (".mp4", ".m4v", ".mov", ".mkv"),
    "libx265": (".mp4", ".m4v", ".mov", ".mkv"),
}
# what each container takes, for the encoders not in CODEC_CONTAINERS (FFmpeg's muxer tables)
_CONTAINER_VIDEO: dict[str, tuple[str, ...] | None] = {
    ".webm": ("vp8", "vp9", "av1"),
    ".mxf": ("dnxhd", "mpeg2video", "dvvideo"),
}
# --profile NAME -> (the encoder's profile option, its pixel format when --pix-fmt is not given)
PRORES_PROFILES: dict[str, tuple[str, str]] = {
    "proxy": ("proxy", "yuv422p10le"),
    "lt": ("lt", "yuv422p10le"),
    "standard": ("standard", "yuv422p10le"),
    "hq": ("hq", "yuv422p10le"),
    "4444": ("4444", "yuv444p10le"),
    "4444xq": ("4444xq", "yuv444p10le"),
}
DNXHR_PROFILES: dict[str, tuple[str, str]] = {
    "lb": ("dnxhr_lb", "yuv422p"),
    "sq": ("dnxhr_sq", "yuv422p"),
    "hq": ("dnxhr_hq", "yuv422p"),
    "hqx": ("dnxhr_hqx", "yuv422p10le"),
    "444": ("dnxhr_444", "yuv444p10le"),
}
_DEFAULT_PROFILE = {"prores_ks": "hq", "dnxhd": "hq"}
LOSSLESS_AUDIO = {".mkv": "flac", ".mov": "pcm_s24le", ".mxf": "pcm_s24le"}
MEZZANINE = frozenset({"ffv1", "prores_ks", "dnxhd"})
DNXHR_MIN_SIZE = (256, 120)  # the encoder refuses smaller pictures

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


def plan_encoder(path: Path, config: IOConfig, size: tuple[int, int], source_pix_fmt: str | None = None) -> EncoderPlan:
    """Choose encoder, pixel format, options and padding for ``path``; OutputError if impossible.

    source_pix_fmt: the input's pixel format: without ``--pix-fmt`` (and a profile that fixes
    one) the output keeps it when the encoder takes it, so bit depth and chroma stay as they
    were; else the nearest the encoder takes (``keep_format``).
    The encoder is opened once with the plan (``try_encoder``): what it refuses is refused now.
    """
    ext = path.suffix.lower()
    if ext not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise OutputError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    codec, audio_codec = CONTAINERS[ext]
    if config.codec:
        codec = CODEC_ALIASES.get(config.codec.lower(), config.codec)
    try:
        encoder = av.Codec(codec, "w")
    except Exception as e:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        raise UsageError(f"--codec {codec}: no encoder of that name in this FFmpeg build") from e
    if encoder.type != "video":
        raise UsageError(f"--codec {codec}: is an {encoder.type} encoder; give a video encoder (libx264, libx265, ...)")
    _check_container(path, ext, codec, encoder.name)
    profile_option, profile_pix_fmt = _profile(codec, config.profile or source_profile(codec, source_pix_fmt))
    width, height = size
    accepted = [f.name for f in (encoder.video_formats or ())]
    default_fmt = profile_pix_fmt or _DEFAULT_PIX_FMT
    if profile_pix_fmt is None and source_pix_fmt is not None and config.pix_fmt is None:
        default_fmt = keep_format(source_pix_fmt, accepted, path, codec)
    pix_fmt = config.pix_fmt or (default_fmt if not accepted or default_fmt in accepted else accepted[0])
    if profile_pix_fmt and config.pix_fmt and config.pix_fmt != profile_pix_fmt:
        raise UsageError(
            f"--pix-fmt {config.pix_fmt}: {codec} profile {config.profile or source_profile(codec, source_pix_fmt)} "
            f"codes {profile_pix_fmt}; leave --pix-fmt out or give another --profile"
        )
    if codec == "dnxhd" and (width < DNXHR_MIN_SIZE[0] or height < DNXHR_MIN_SIZE[1]):
        raise UsageError(
            f"{path}: DNxHR needs at least {DNXHR_MIN_SIZE[0]}x{DNXHR_MIN_SIZE[1]}; the video is {width}x{height}"
        )
    if codec in MEZZANINE and ext in LOSSLESS_AUDIO:
        audio_codec = LOSSLESS_AUDIO[ext]
    try:
        fmt = av.VideoFormat(pix_fmt)
    except Exception as e:
        raise UsageError(f"--pix-fmt {pix_fmt}: unknown pixel format") from e
    if accepted and pix_fmt not in accepted:
        bits = f" ({fmt.components[0].bits}-bit)" if fmt.components and fmt.components[0].bits > 8 else ""
        raise UsageError(f"--pix-fmt {pix_fmt}{bits}: {codec} does not take it; it takes {', '.join(accepted)}")
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
            pix_fmt = "yuv444p" if fmt.components[0].bits <= 8 else "yuv444p10le"
            log.info("%s: %dx%d is odd; encoding %s to keep the size exact", path, width, height, pix_fmt)
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
    if config.crf is not None and codec in MEZZANINE:
        log.info("%s: %s has no crf; crf %d ignored", path, codec, config.crf)  # presets name one for x264
    elif config.crf is not None and codec not in CRF_RANGES:
        log.warning("%s: %s has no crf; crf %d ignored", path, codec, config.crf)
    if profile_option:
        options["profile"] = profile_option
    if codec == "ffv1":
        # level 3: multithreaded slices, each with its CRC so damage is found and confined
        options.update({"level": "3", "slicecrc": "1", "g": "1", "slices": "4"})
    elif codec == "libx264" and config.crf == 0:
        log.info("%s: x264 at crf 0 is lossless (from the %s it is given)", path, pix_fmt)
    if codec in ("libx264", "libx265"):
        if codec == "libx264" and config.crf == 0:
            # lossless is qp 0: x264 offsets crf by 6 per bit beyond 8, so a 10-bit crf 0 is qp 12
            options["qp"] = "0"
        elif config.crf is not None:
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
    elif config.preset and codec in MEZZANINE:
        log.info("%s: %s has no speed preset; preset %r ignored", path, codec, config.preset)
    elif config.preset:
        log.warning("%s: %s has no speed preset; preset %r ignored", path, codec, config.preset)
    container_options: dict[str, str] = {}
    if ext in (".mp4", ".m4v", ".mov"):
        container_options["movflags"] = "+faststart"  # index first: playable while downloading
    elif ext == ".mkv":
        # FFmpeg would shift every timestamp so the earliest (AAC priming: about -64 ms) is 0;
        # Matroska blocks can sit before their cluster, so keep the input's times instead
        container_options["avoid_negative_ts"] = "disabled"
        # no random segment UID: the same input and settings give the same bytes (batch resumes,
        # shards and archive checksums rely on it); the writing app is named without its version
        container_options["fflags"] = "+bitexact"
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


def keep_format(source: str, accepted: list[str], path: Path, codec: str = "the encoder") -> str:
    """The pixel format to encode a ``source`` input in: its own (planar twin) when accepted, else the nearest.

    Nearest: the same chroma subsampling at the same or the next greater depth; else the least
    depth at or above the input's, with the finest chroma (RGB kept RGB where it can be); a
    change is logged, since it is a conversion the user did not ask for. UsageError when the
    encoder cannot code the input's depth at all: fewer bits are given only when asked for
    (``--pix-fmt``), before any work.
    """
    from panini_video.io.picture import native_format, plane_format

    own = native_format(source)
    if not accepted or own in accepted:
        return own
    want = plane_format(own)
    if want is None:
        return _DEFAULT_PIX_FMT
    formats = [(name, f) for name in accepted if (f := plane_format(name)) is not None and not name.startswith("yuvj")]
    deep = [
        (name, f)
        for name, f in formats
        if f.bits >= want.bits and (want.gray or not f.gray)  # a colour input never goes to grey
    ]
    same = [
        (f.bits, name)
        for name, f in deep
        if (f.sub_x, f.sub_y, f.rgb, f.gray) == (want.sub_x, want.sub_y, want.rgb, want.gray)
    ]
    if same:
        choice = min(same)[1]
    elif deep:
        choice = min(deep, key=lambda nf: (nf[1].bits, nf[1].rgb != want.rgb, nf[1].sub_x + nf[1].sub_y, nf[1].gray))[0]
    else:
        most = max((f.bits for _, f in formats), default=8)
        shallow = [name for name, f in formats if f.bits == most and (f.sub_x, f.sub_y) == (want.sub_x, want.sub_y)]
        suggest = shallow[0] if shallow else _DEFAULT_PIX_FMT
        raise UsageError(
            f"{path}: the input is {want.bits}-bit ({own}) and {codec} here codes at most {most} bits; "
            f"give --pix-fmt {suggest} to accept {most} bits, or a codec that keeps them (--codec ffv1 into .mkv, "
            "x265, prores)"
        )
    log.info("%s: %s does not take %s; encoding %s", path, codec, own, choice)
    return choice


def _check_container(path: Path, ext: str, codec: str, name: str) -> None:
    """UsageError when the container of ``ext`` cannot hold ``codec``, naming where it can go."""
    places = CODEC_CONTAINERS.get(codec)
    if places is not None:
        if ext not in places:
            raise UsageError(f"{path}: {codec} cannot go in {ext}; name the output {' or '.join(places)}")
        return
    takes = _CONTAINER_VIDEO.get(ext)
    family = av.Codec(name, "w").canonical_name
    if takes is not None and family not in takes:
        raise UsageError(f"{path}: {ext} holds only {', '.join(takes)} video; {codec} cannot go in it")


def source_profile(codec: str, source_pix_fmt: str | None) -> str | None:
    """The ProRes / DNxHR profile that keeps the input's chroma and depth (None: not such a codec).

    ProRes: 4444 for a 4:4:4 input, else HQ (10-bit 4:2:2). DNxHR: 444 for 4:4:4, HQX for a
    deeper 4:2:x input, else HQ (8-bit 4:2:2). ``--profile`` chooses another.
    """
    if codec not in _DEFAULT_PROFILE:
        return None
    from panini_video.io.picture import native_format, plane_format

    fmt = plane_format(native_format(source_pix_fmt)) if source_pix_fmt else None
    if fmt is None:
        return _DEFAULT_PROFILE[codec]
    full = fmt.sub_x == 0 and fmt.sub_y == 0 and not fmt.gray
    if codec == "prores_ks":
        return "4444" if full else "hq"
    return "444" if full else "hqx" if fmt.bits > 8 else "hq"


def _profile(codec: str, profile: str | None) -> tuple[str | None, str | None]:
    """(the encoder's profile option, the profile's pixel format) for ProRes and DNxHR; else (None, None)."""
    table = PRORES_PROFILES if codec == "prores_ks" else DNXHR_PROFILES if codec == "dnxhd" else None
    if table is None:
        if profile:
            raise UsageError(f"--profile {profile}: only prores and dnxhr take a profile; {codec} chooses its own")
        return None, None
    name = (profile or _DEFAULT_PROFILE[codec]).lower().removeprefix("dnxhr_")
    if name not in table:
        raise UsageError(f"--profile {profile}: {codec} knows {', '.join(table)}")
    return table[name]


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
