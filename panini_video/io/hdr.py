"""HDR10's static metadata: the mastering display and the content light level, read and carried.

An HDR10 source says, besides its PQ transfer and BT.2020 primaries (which ``io.colour`` keeps
as tags), what display it was graded on (SMPTE ST 2086: the display's primaries, white point
and luminance range) and how bright its content gets (CTA-861.3: MaxCLL and MaxFALL). Players
tone-map with these, so an output without them looks different on an HDR screen.

Where it lives: H.264 and HEVC carry it in SEI messages inside the bitstream; Matroska
(MasteringMetadata) and MP4/MOV (``mdcv``/``clli`` boxes) can also carry it in the container.
FFmpeg's decoder attaches either kind to every decoded frame, so the first frame's side data is
the one place to read it (``frame_hdr``).

Where it goes, with PyAV 18.1: x265 and x264 write it as SEI from their own parameters
(``master-display``/``max-cll``, ``mastering-display``/``cll``), so it survives in any container
that holds them. PyAV cannot set a stream's side data, which is what the Matroska and MP4 muxers
write their container fields from, so an encoder without those SEI (FFV1, ProRes, DNxHR, VP9)
cannot carry it: ``carry_hdr`` names that in one warning line before any frame.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)

# FFmpeg's AVMasteringDisplayMetadata: 10 AVRationals (R, G, B primaries x/y, white point x/y,
# min and max luminance), then has_primaries and has_luminance; AVContentLightMetadata: 2 unsigned
_MASTERING = struct.Struct("=20i2i")
_LIGHT = struct.Struct("=2I")
# the units of ST 2086's SEI fields, which x265's and x264's parameters use: chromaticity in
# 1/50000, luminance in 1/10000 cd/m2
CHROMA_UNIT, LUMA_UNIT = 50000, 10000
# the parameter each SEI-writing encoder takes: (option, mastering key, light key)
_SEI_PARAMS = {
    "libx265": ("x265-params", "master-display", "max-cll"),
    "libx264": ("x264-params", "mastering-display", "cll"),
}

XY = tuple[Fraction, Fraction]


@dataclass(frozen=True, slots=True)
class MasteringDisplay:
    """SMPTE ST 2086: the display the content was graded on (CIE 1931 xy; luminance in cd/m2).

    primaries: (red, green, blue); None when the source gave only the luminance. min/max
    luminance: None when it gave only the primaries.
    """

    primaries: tuple[XY, XY, XY] | None
    white_point: XY | None
    min_luminance: Fraction | None
    max_luminance: Fraction | None

    def sei_value(self) -> str | None:
        """``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)`` in SEI units (x265's and x264's form); None when incomplete."""
        if self.primaries is None or self.white_point is None:
            return None
        if self.min_luminance is None or self.max_luminance is None:
            return None
        (rx, ry), (gx, gy), (bx, by) = self.primaries
        wx, wy = self.white_point
        c = [round(v * CHROMA_UNIT) for v in (gx, gy, bx, by, rx, ry, wx, wy)]
        lo, hi = round(self.min_luminance * LUMA_UNIT), round(self.max_luminance * LUMA_UNIT)
        return f"G({c[0]},{c[1]})B({c[2]},{c[3]})R({c[4]},{c[5]})WP({c[6]},{c[7]})L({hi},{lo})"


@dataclass(frozen=True, slots=True)
class ContentLight:
    """CTA-861.3: the brightest pixel (MaxCLL) and the brightest frame average (MaxFALL), cd/m2."""

    max_cll: int
    max_fall: int


@dataclass(frozen=True, slots=True)
class HdrMetadata:
    """A stream's static HDR metadata; either part may be absent (None)."""

    mastering: MasteringDisplay | None = None
    light: ContentLight | None = None

    def __post_init__(self) -> None:
        if self.mastering is None and self.light is None:
            raise ValueError("HdrMetadata needs a mastering display or a content light level")

    def as_dict(self) -> dict[str, Any]:
        """The metadata as JSON values (the stats and the report): fractions as floats."""
        out: dict[str, Any] = {}
        m = self.mastering
        if m is not None:
            out["mastering_display"] = {
                "primaries": None if m.primaries is None else [[float(x), float(y)] for x, y in m.primaries],
                "white_point": None if m.white_point is None else [float(v) for v in m.white_point],
                "min_luminance": None if m.min_luminance is None else float(m.min_luminance),
                "max_luminance": None if m.max_luminance is None else float(m.max_luminance),
            }
        if self.light is not None:
            out["content_light"] = {"max_cll": self.light.max_cll, "max_fall": self.light.max_fall}
        return out

    def describe(self) -> str:
        parts = []
        m = self.mastering
        if m is not None and m.max_luminance is not None and m.min_luminance is not None:
            parts.append(f"mastering display {float(m.min_luminance):g}-{float(m.max_luminance):g} cd/m2")
        elif m is not None:
            parts.append("mastering display primaries")
        if self.light is not None:
            parts.append(f"MaxCLL {self.light.max_cll}, MaxFALL {self.light.max_fall}")
        return ", ".join(parts)


def _mastering(v: tuple[int, ...]) -> MasteringDisplay | None:
    """The record of an unpacked AVMasteringDisplayMetadata; None when it says nothing."""
    has_primaries, has_luminance = v[20], v[21]
    xy = [Fraction(v[i], v[i + 1]) if v[i + 1] else None for i in range(0, 20, 2)]
    primaries: tuple[XY, XY, XY] | None = None
    white: XY | None = None
    chroma = [x for x in xy[:8] if x is not None]
    if has_primaries and len(chroma) == 8:
        primaries = ((chroma[0], chroma[1]), (chroma[2], chroma[3]), (chroma[4], chroma[5]))
        white = (chroma[6], chroma[7])
    lo, hi = (xy[8], xy[9]) if has_luminance else (None, None)
    if primaries is None and hi is None:
        return None
    return MasteringDisplay(primaries, white, lo, hi)


def frame_hdr(frame: av.VideoFrame) -> HdrMetadata | None:
    """The HDR metadata attached to a decoded ``frame`` (from SEI or the container); None when none."""
    mastering: MasteringDisplay | None = None
    light: ContentLight | None = None
    for sd in frame.side_data:
        name = sd.type.name
        if name == "MASTERING_DISPLAY_METADATA":
            raw = bytes(memoryview(sd))
            if len(raw) < _MASTERING.size:
                log.debug("mastering display side data of %d bytes ignored", len(raw))
                continue
            mastering = _mastering(_MASTERING.unpack_from(raw))
        elif name == "CONTENT_LIGHT_LEVEL":
            raw = bytes(memoryview(sd))
            if len(raw) >= _LIGHT.size:
                light = ContentLight(*_LIGHT.unpack_from(raw))
    if mastering is None and light is None:
        return None
    return HdrMetadata(mastering, light)


def hdr_options(codec: str, options: dict[str, str], hdr: HdrMetadata | None) -> dict[str, str] | None:
    """``options`` with ``hdr`` added as the encoder's SEI parameters; None when ``codec`` writes no such SEI.

    The encoder's own parameter string (``x265-params``, ``x264-params``) keeps what was in it.
    """
    if hdr is None:
        return dict(options)
    params = _SEI_PARAMS.get(codec)
    if params is None:
        return None
    option, master_key, light_key = params
    extra = []
    value = hdr.mastering.sei_value() if hdr.mastering is not None else None
    if value is not None:
        extra.append(f"{master_key}={value}")
    if hdr.light is not None:
        extra.append(f"{light_key}={hdr.light.max_cll},{hdr.light.max_fall}")
    if not extra:
        return None
    kept = [p for p in options.get(option, "").split(":") if p and p.split("=")[0] not in (master_key, light_key)]
    return {**options, option: ":".join([*kept, *extra])}


def carry_hdr(codec: str, options: dict[str, str], hdr: HdrMetadata | None, target: Path) -> dict[str, str]:
    """The encoder options that carry the input's HDR metadata (``VideoInfo.hdr``) into ``target``.

    Logs what is carried; when the encoder cannot write it, one warning line names what is lost
    and how to keep it. ``hdr`` None (none, or a live stream) carries nothing.
    """
    if hdr is None:
        return dict(options)
    carried = hdr_options(codec, options, hdr)
    if carried is None:
        log.warning(
            "%s: not carried into the output: HDR metadata (%s): %s writes no HDR SEI and PyAV cannot set "
            "the container's fields; encode with --codec x265 or x264 to keep it",
            target,
            hdr.describe(),
            codec,
        )
        return dict(options)
    log.info("%s: HDR metadata carried (%s)", target, hdr.describe())
    return carried
