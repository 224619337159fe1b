"""What a video's samples mean: its YCbCr matrix, range, primaries and transfer, and the maths.

Every file is resolved once, before any frame (``resolve_colour``): a tagged property is kept as
tagged; an untagged matrix is taken as BT.709 from 720 lines up and BT.601 below (what players
do, and the rule of ITU-T H.273's common practice), an untagged range as limited ("tv"); both
can be forced with ``--assume-colorspace`` / ``--assume-range``. What was assumed is logged once
and the output is tagged with the resolved values, so no player has to guess again.

The conversions (``ycc_to_rgb``, ``rgb_to_ycc``) run in torch on whatever device the samples
are, in float: RGB is 0-255 (the scale the detector and Panini-Net work in, with fractions kept
for deeper sources), Y'CbCr is in the stream's own code values at its bit depth. The formulas
are BT.601/BT.709/BT.2020's (non-constant luminance):

    Y' = Kr R' + (1 - Kr - Kb) G' + Kb B',  Cb = (B' - Y') / (2 (1 - Kb)),  Cr = (R' - Y') / (2 (1 - Kr))
    limited range, n bits: Y = (16 + 219 Y') 2^(n-8), C = (128 + 224 C') 2^(n-8)
    full range, n bits:    Y = (2^n - 1) Y',          C = 2^(n-1) + (2^n - 1) C'

An RGB stream (FFmpeg's ``gbrp`` family, matrix code 0) has no matrix: its planes are G, B, R.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from panini_video.errors import UsageError

if TYPE_CHECKING:  # torch is imported where the maths runs: reading and writing video needs none of it
    import torch

log = logging.getLogger(__name__)

# FFmpeg's AVCOL_SPC_* matrix codes -> (Kr, Kb); 0 is RGB (no matrix)
MATRICES: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601 625)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601 525)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant
    10: (0.2627, 0.0593),  # BT.2020 constant (treated as non-constant: FFmpeg's swscale does the same)
}
RGB_MATRIX = 0
UNSPECIFIED = 2
# --assume-colorspace NAME -> (matrix, primaries, transfer) codes
ASSUMED: dict[str, tuple[int, int, int]] = {
    "bt709": (1, 1, 1),
    "bt601": (6, 6, 6),  # SMPTE 170M: the 525-line flavour, what FFmpeg writes for "bt601"
    "bt601-625": (5, 5, 6),
    "bt2020": (9, 9, 14),
}
RANGES = {"limited": 1, "tv": 1, "mpeg": 1, "full": 2, "pc": 2, "jpeg": 2}
HD_LINES = 720  # from this many lines up an untagged matrix is taken as BT.709


@dataclass(frozen=True, slots=True)
class Colour:
    """The resolved colour properties of a stream (FFmpeg's AVCOL_* codes) and what was assumed.

    matrix: AVCOL_SPC (0 RGB, 1 BT.709, 5/6 BT.601, 9 BT.2020, ...); range: 1 limited, 2 full;
    primaries, transfer: AVCOL_PRI / AVCOL_TRC; assumed: the properties that were not tagged
    and were resolved here ("matrix", "range", ...), empty when the stream said everything.
    """

    matrix: int
    range: int
    primaries: int
    transfer: int
    assumed: tuple[str, ...] = ()

    @property
    def coefficients(self) -> tuple[float, float] | None:
        """(Kr, Kb) of the matrix; None for RGB."""
        if self.matrix == RGB_MATRIX:
            return None
        return MATRICES.get(self.matrix, MATRICES[6])

    @property
    def full_range(self) -> bool:
        return self.range == 2

    def describe(self) -> str:
        names = {
            0: "rgb",
            1: "bt709",
            4: "fcc",
            5: "bt470bg",
            6: "smpte170m",
            7: "smpte240m",
            9: "bt2020nc",
            10: "bt2020c",
        }
        return f"{names.get(self.matrix, self.matrix)} {'full' if self.full_range else 'limited'} range"


def resolve_colour(
    matrix: int,
    range_: int,
    primaries: int,
    transfer: int,
    height: int,
    *,
    rgb: bool = False,
    assume_colorspace: str = "auto",
    assume_range: str = "auto",
    name: str = "input",
) -> Colour:
    """The stream's colour properties with every untagged one resolved (see the module docstring).

    rgb: the pixel format is RGB (no matrix applies). assume_*: "auto" resolves only what is
    untagged; a name forces it even over a tag (the tag was wrong: the user says so).
    """
    assumed: list[str] = []
    if assume_colorspace != "auto":
        if assume_colorspace not in ASSUMED:
            raise UsageError(f"--assume-colorspace {assume_colorspace}: use auto, {', '.join(ASSUMED)}")
        m, p, t = ASSUMED[assume_colorspace]
        if not rgb:
            matrix = m
        primaries, transfer = p, t
        assumed += ["matrix", "primaries", "transfer"]
    if rgb:
        matrix = RGB_MATRIX
    elif matrix not in MATRICES:
        if matrix not in (UNSPECIFIED, 3):  # 3: reserved; anything else is a matrix we do not convert
            log.warning("%s: colour matrix %d is not one we convert; using BT.601's", name, matrix)
        matrix = 1 if height >= HD_LINES else 6
        assumed.append("matrix")
    if primaries in (UNSPECIFIED, 0, 3):
        primaries = 1 if matrix in (RGB_MATRIX, 1) else 9 if matrix in (9, 10) else 5 if matrix == 5 else 6
        assumed.append("primaries")
    if transfer in (UNSPECIFIED, 0, 3):
        transfer = 1 if matrix != 9 else 14
        assumed.append("transfer")
    if assume_range != "auto":
        if assume_range not in RANGES:
            raise UsageError(f"--assume-range {assume_range}: use auto, limited or full")
        range_ = RANGES[assume_range]
        assumed.append("range")
    elif range_ not in (1, 2):
        range_ = 2 if rgb else 1
        assumed.append("range")
    colour = Colour(int(matrix), int(range_), int(primaries), int(transfer), tuple(dict.fromkeys(assumed)))
    untagged = [a for a in colour.assumed if a in ("matrix", "range")]
    if untagged and assume_colorspace == "auto" and assume_range == "auto":
        log.info(
            "%s: %s not tagged; taken as %s (override with --assume-colorspace / --assume-range)",
            name,
            " and ".join(untagged),
            colour.describe(),
        )
    return colour


def stream_colour(info: Any, assume_colorspace: str = "auto", assume_range: str = "auto") -> Colour:
    """The resolved ``Colour`` of a probed video (``io.probe.VideoInfo``), logged once when assumed."""
    from panini_video.io.picture import native_format, plane_format

    pix_fmt = getattr(info, "pix_fmt", None) or ""
    fmt = plane_format(native_format(pix_fmt)) if pix_fmt else None
    range_ = info.color_range
    if range_ not in (1, 2) and pix_fmt.startswith("yuvj"):  # FFmpeg's JPEG formats are full range by name
        range_ = 2
    return resolve_colour(
        info.color_space,
        range_,
        info.color_primaries,
        info.color_trc,
        info.height,
        rgb=bool(fmt is not None and fmt.rgb),
        assume_colorspace=assume_colorspace,
        assume_range=assume_range,
        name=str(getattr(info, "path", "input")),
    )


def _levels(bits: int, full: bool) -> tuple[float, float, float]:
    """(luma offset, luma scale, chroma scale) mapping Y' in [0, 1] and C' in [-0.5, 0.5] to codes."""
    if full:
        top = float(2**bits - 1)
        return 0.0, top, top
    k = float(2 ** (bits - 8))
    return 16.0 * k, 219.0 * k, 224.0 * k


def ycc_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, colour: Colour, bits: int) -> torch.Tensor:
    """(3, H, W) float RGB 0-255 from Y'CbCr code values of one size (chroma already at luma size).

    For an RGB stream the three planes are G, B, R and are only rescaled to 0-255.
    """
    import torch

    y, cb, cr = y.float(), cb.float(), cr.float()
    coeff = colour.coefficients
    if coeff is None:
        scale = 255.0 / float(2**bits - 1)
        return torch.stack([cr * scale, y * scale, cb * scale])
    kr, kb = coeff
    kg = 1.0 - kr - kb
    off, ys, cs = _levels(bits, colour.full_range)
    mid = float(2 ** (bits - 1))
    yp = (y - off) / ys
    pb = (cb - mid) / cs
    pr = (cr - mid) / cs
    r = yp + 2.0 * (1.0 - kr) * pr
    b = yp + 2.0 * (1.0 - kb) * pb
    g = (yp - kr * r - kb * b) / kg
    return torch.stack([r, g, b]) * 255.0


def rgb_to_ycc(rgb: torch.Tensor, colour: Colour, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Y'CbCr code values (float, not rounded, within the format's legal range) from (3, H, W) RGB 0-255.

    For an RGB stream: the G, B, R planes, rescaled to the depth.
    """
    rgb = rgb.float().clamp(0.0, 255.0) / 255.0
    r, g, b = rgb[0], rgb[1], rgb[2]
    coeff = colour.coefficients
    if coeff is None:
        top = float(2**bits - 1)
        return g * top, b * top, r * top
    kr, kb = coeff
    off, ys, cs = _levels(bits, colour.full_range)
    mid = float(2 ** (bits - 1))
    yp = kr * r + (1.0 - kr - kb) * g + kb * b
    pb = (b - yp) / (2.0 * (1.0 - kb))
    pr = (r - yp) / (2.0 * (1.0 - kr))
    return off + ys * yp, mid + cs * pb, mid + cs * pr
