"""A decoded picture kept in its own pixel format: the planes of one FFmpeg frame, and its colour.

Frames travel from the decoder to the encoder as ``Picture`` records, not as RGB: the planes
stay the samples FFmpeg decoded (8 to 16 bits, 4:2:0 to 4:4:4), so everything outside the faces
is written back untouched, and no frame pays two full-frame colour conversions. What needs RGB
asks for it: ``thumbnail`` gives the detector and the scene-cut test a small RGB copy in one
swscale call (scale and convert together); the restorer converts only each face's region, on
its device (``restore.planes``).

Formats: planar Y'CbCr (``yuv420p``, ``yuv422p10le``, ``yuv444p12le``, the ``yuvj`` names, with
or without alpha), grey, and planar RGB (``gbrp``...) are kept as decoded. Semi-planar ones
(``nv12``, ``p010le``...) and packed ones (``yuyv422``, ``rgb24``, ...) are unpacked once, in
the reader, into their planar twin with the same samples (``native_format``); an encoder codes
the twin exactly as it would have coded the packed form. Palette and other exotic formats go to
``yuv444p`` (or ``gbrp`` for RGB), which is logged.

``planes`` are 2-D numpy views into the frame's own buffers (rows may be padded, so the views
are strided); the buffers belong to ``frame``, which the record keeps alive. A picture is never
written to in place: ``writable_copy`` gives a new frame with the same samples to paste into.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from functools import lru_cache

import av
import numpy as np

from panini_video.io.colour import RGB_MATRIX, Colour

log = logging.getLogger(__name__)

# swscale's SWS_CS_* for FFmpeg's AVCOL_SPC_* matrix codes (what reformat's colorspace takes)
SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


@dataclass(frozen=True, slots=True)
class PlaneFormat:
    """What the planar pixel format ``name`` is: depth, chroma subsampling, which planes exist.

    sub_x, sub_y: log2 of the chroma subsampling (4:2:0 is 1, 1); planes: how many (1 grey,
    3 Y'CbCr or G, B, R, 4 with alpha); rgb: the planes are G, B, R.
    """

    name: str
    bits: int
    sub_x: int
    sub_y: int
    planes: int
    rgb: bool

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else "<u2")

    @property
    def gray(self) -> bool:
        return self.planes == 1

    @property
    def block(self) -> tuple[int, int]:
        """(width, height) in luma pixels of one chroma sample: regions align to it."""
        return 1 << self.sub_x, 1 << self.sub_y

    def plane_size(self, index: int, width: int, height: int) -> tuple[int, int]:
        """(width, height) of plane ``index`` of a ``width`` x ``height`` picture."""
        if index in (1, 2) and not self.rgb:
            return -(-width >> self.sub_x), -(-height >> self.sub_y)
        return width, height


@lru_cache(maxsize=64)
def plane_format(name: str) -> PlaneFormat | None:
    """The ``PlaneFormat`` of ``name`` when we keep it as decoded; None when it must be unpacked."""
    try:
        fmt = av.VideoFormat(name)
    except (ValueError, av.FFmpegError):
        return None
    comps = fmt.components
    if not comps or fmt.is_big_endian or fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream:
        return None
    if sorted(c.plane for c in comps) != list(range(len(comps))):  # packed or semi-planar
        return None
    bits = comps[0].bits
    if any(c.bits != bits for c in comps) or not 8 <= bits <= 16 or "f" in name.split("p")[-1]:
        return None  # mixed depths, float samples
    rgb = bool(fmt.is_rgb)
    if len(comps) not in (1, 3, 4) or (rgb and not name.startswith("gbr")):
        return None
    sub_x = sub_y = 0
    if len(comps) >= 3 and not rgb:
        sub_x = (64 // fmt.chroma_width(64)).bit_length() - 1
        sub_y = (64 // fmt.chroma_height(64)).bit_length() - 1
    return PlaneFormat(name, bits, sub_x, sub_y, len(comps), rgb)


# packed / semi-planar formats -> their planar twin with the same samples
_TWINS = {
    "nv12": "yuv420p",
    "nv21": "yuv420p",
    "nv16": "yuv422p",
    "nv24": "yuv444p",
    "nv42": "yuv444p",
    "p010le": "yuv420p10le",
    "p012le": "yuv420p12le",
    "p016le": "yuv420p16le",
    "p210le": "yuv422p10le",
    "p410le": "yuv444p10le",
    "nv20le": "yuv422p10le",
    "yuyv422": "yuv422p",
    "uyvy422": "yuv422p",
    "yvyu422": "yuv422p",
    "y210le": "yuv422p10le",
    "rgb24": "gbrp",
    "bgr24": "gbrp",
    "rgb0": "gbrp",
    "bgr0": "gbrp",
    "0rgb": "gbrp",
    "0bgr": "gbrp",
    "rgba": "gbrap",
    "bgra": "gbrap",
    "argb": "gbrap",
    "abgr": "gbrap",
    "rgb48le": "gbrp16le",
    "gbrp10be": "gbrp10le",
    "bgr48le": "gbrp16le",
    "rgba64le": "gbrap16le",
    "ya8": "gray",
    "yuv420p10be": "yuv420p10le",
    "yuv422p10be": "yuv422p10le",
    "yuv444p10be": "yuv444p10le",
}


def native_format(name: str) -> str:
    """The pixel format a frame decoded as ``name`` travels in (``name`` itself when planar)."""
    if plane_format(name) is not None:
        return name
    twin = _TWINS.get(name)
    if twin is not None:
        return twin
    try:
        rgb = bool(av.VideoFormat(name).is_rgb)
    except (ValueError, av.FFmpegError):
        rgb = False
    return "gbrp" if rgb else "yuv444p"


@dataclass(frozen=True, slots=True)
class Picture:
    """One decoded picture in its own planar format. Build it with ``Picture.of``."""

    frame: av.VideoFrame = field(repr=False)
    format: PlaneFormat
    colour: Colour
    planes: tuple[np.ndarray, ...] = field(repr=False)

    @classmethod
    def of(cls, frame: av.VideoFrame, colour: Colour) -> Picture:
        """The picture of ``frame`` (converted to its planar twin first when it is packed)."""
        name = frame.format.name
        fmt = plane_format(name)
        if fmt is None:
            twin = native_format(name)
            frame = frame.reformat(format=twin, **sws_args(colour, colour))
            fmt = plane_format(twin)
            assert fmt is not None, twin
        return cls(frame, fmt, colour, _plane_views(frame, fmt))

    @property
    def width(self) -> int:
        return int(self.frame.width)

    @property
    def height(self) -> int:
        return int(self.frame.height)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def nbytes(self) -> int:
        """The bytes the samples take (the memory a frame in flight costs)."""
        return sum(p.nbytes for p in self.planes)

    def writable_copy(self, samples: bool = True) -> Picture:
        """A new picture with its own buffers holding the same samples (to paste into).

        samples: False leaves the new buffers unset (the caller fills every plane).
        """
        out = av.VideoFrame(self.width, self.height, self.format.name)
        _copy_props(self.frame, out)
        views = _plane_views(out, self.format)
        if samples:
            for dst, src in zip(views, self.planes, strict=True):
                dst[...] = src
        return Picture(out, self.format, self.colour, views)

    def thumbnail(self, size: tuple[int, int] | None = None, interpolation: str = "AREA") -> np.ndarray:
        """RGB uint8 (h, w, 3) of the picture scaled to ``size`` (w, h), in one swscale call.

        None: full size (the annotate preview and ``--upscale`` convert whole frames).
        """
        w, h = size or self.size
        out = self.frame.reformat(
            width=w,
            height=h,
            format="rgb24",
            interpolation=interpolation if (w, h) != self.size else None,
            **sws_args(self.colour, None),
        )
        return out.to_ndarray()

    def rgb(self) -> np.ndarray:
        """The whole picture as RGB uint8 (H, W, 3)."""
        return self.thumbnail(None)


def picture_bytes(pix_fmt: str | None, size: tuple[int, int]) -> int:
    """Bytes one frame of ``size`` takes in flight: as a ``Picture`` of ``pix_fmt``'s twin, or RGB when None."""
    w, h = size
    fmt = plane_format(native_format(pix_fmt)) if pix_fmt else None
    if fmt is None:
        return w * h * 3
    return sum(pw * ph for pw, ph in (fmt.plane_size(i, w, h) for i in range(fmt.planes))) * fmt.dtype.itemsize


def sws_args(src: Colour | None, dst: Colour | None) -> dict[str, int]:
    """reformat() keywords that make swscale use these matrices and ranges (its default is BT.601 limited)."""
    args: dict[str, int] = {}
    if src is not None and src.matrix != RGB_MATRIX:
        args["src_colorspace"] = SWS_COLORSPACE.get(src.matrix, 5)
        args["src_color_range"] = src.range
    if dst is not None and dst.matrix != RGB_MATRIX:
        args["dst_colorspace"] = SWS_COLORSPACE.get(dst.matrix, 5)
        args["dst_color_range"] = dst.range
    return args


def _plane_views(frame: av.VideoFrame, fmt: PlaneFormat) -> tuple[np.ndarray, ...]:
    views = []
    item = fmt.dtype.itemsize
    for i, plane in enumerate(frame.planes[: fmt.planes]):
        w, h = fmt.plane_size(i, frame.width, frame.height)
        stride = plane.line_size // item
        flat = np.frombuffer(plane, dtype=fmt.dtype)
        views.append(flat[: h * stride].reshape(h, stride)[:, :w])
    return tuple(views)


def _copy_props(src: av.VideoFrame, dst: av.VideoFrame) -> None:
    dst.pts = src.pts
    if src.time_base is not None:
        dst.time_base = src.time_base
    for name in ("colorspace", "color_range", "color_primaries", "color_trc"):
        with contextlib.suppress(AttributeError, ValueError, TypeError):  # a property this PyAV cannot set
            setattr(dst, name, getattr(src, name))


def picture_from_rgb(image: np.ndarray, colour: Colour, pix_fmt: str) -> Picture:
    """An RGB uint8 (H, W, 3) image as a ``pix_fmt`` picture (converted with ``colour``'s matrix)."""
    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return Picture.of(vf.reformat(format=pix_fmt, **sws_args(None, colour)), colour)
