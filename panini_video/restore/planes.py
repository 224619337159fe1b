"""Faces out of and back into a picture's own planes, on the device: only face regions meet RGB.

A ``Picture``'s planes (Y', Cb, Cr at their depth and subsampling, or G, B, R; ``io.picture``)
go to the device as they are. For each face:

- align: the part of the frame its aligned crop samples (the crop square mapped back through
  the affine, plus the bicubic kernel's reach) is converted to RGB (chroma brought to luma size
  by bilinear interpolation) and warped into the crop, as the RGB path warps the whole frame;
- paste: over the face's paste region (``faces.blend.paste_region``) the restored face is
  rendered in RGB with its feathered mask (``faces.blend.render_face``), converted to the
  picture's Y'CbCr, and blended into each plane: ``old * (1 - m) + face * m``. Chroma planes
  blend with the mask and the face's chroma averaged over each chroma sample's luma pixels.

Regions are aligned outward to the chroma grid, so no chroma sample is shared between a pixel
that may change and one that may not; where the mask is 0 the blend gives back the old sample
exactly (integers are exact in float32 up to 2^24), so every sample outside the faces' paste
regions is the decoded sample, bit for bit. ``paste_regions`` are those regions, which the
stats record and ``verify`` checks against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from panini_video.config import BlendConfig
from panini_video.faces.align import invert_affine, warp_faces
from panini_video.faces.blend import BOX_MARGIN, paste_order, paste_region, render_face
from panini_video.io.colour import Colour, rgb_to_ycc, ycc_to_rgb
from panini_video.io.picture import PlaneFormat
from panini_video.records import FaceJob

_KERNEL_REACH = 3  # pixels beyond the sampled area that bicubic sampling reads (2) and one to spare


@dataclass(eq=False)
class DevicePlanes:
    """A picture's planes as 2-D tensors on the device, with what they mean (``DeviceExecutor.upload_picture``)."""

    planes: list[Tensor]
    format: PlaneFormat
    colour: Colour
    width: int
    height: int
    host: Any = None  # on the CPU: the Picture whose buffers ``planes`` are (pasting writes into it)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def align_to_grid(
    region: tuple[int, int, int, int], fmt: PlaneFormat, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``region`` (x0, y0, x1, y1, end exclusive) grown to whole chroma samples, within the frame."""
    bw, bh = fmt.block
    x0, y0, x1, y1 = region
    w, h = size
    x0, y0 = max(0, x0 - x0 % bw), max(0, y0 - y0 % bh)
    x1, y1 = min(w, -(-x1 // bw) * bw), min(h, -(-y1 // bh) * bh)
    return x0, y0, x1, y1


def sampled_region(affine: np.ndarray, crop: int, size: tuple[int, int], fmt: PlaneFormat) -> tuple[int, int, int, int]:
    """The frame region an aligned ``crop`` x ``crop`` warp by ``affine`` (frame -> crop) reads."""
    inv = invert_affine(np.asarray(affine, np.float64))
    c = np.array([[-0.5, -0.5], [crop - 0.5, -0.5], [-0.5, crop - 0.5], [crop - 0.5, crop - 0.5]])
    pts = c @ inv[:, :2].T + inv[:, 2]
    lo = np.floor(pts.min(axis=0)) - _KERNEL_REACH
    hi = np.ceil(pts.max(axis=0)) + _KERNEL_REACH + 1
    w, h = size
    x0, y0 = int(min(max(lo[0], 0), w - 1)), int(min(max(lo[1], 0), h - 1))
    x1, y1 = int(max(min(hi[0], w), x0 + 1)), int(max(min(hi[1], h), y0 + 1))
    return align_to_grid((x0, y0, x1, y1), fmt, size)


def _chroma_box(region: tuple[int, int, int, int], fmt: PlaneFormat) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = region
    return x0 >> fmt.sub_x, y0 >> fmt.sub_y, -(-x1 >> fmt.sub_x), -(-y1 >> fmt.sub_y)


def region_rgb(pic: DevicePlanes, region: tuple[int, int, int, int]) -> Tensor:
    """(3, h, w) float RGB 0-255 of ``region`` (aligned to the chroma grid) of the picture."""
    x0, y0, x1, y1 = region
    fmt = pic.format
    y = pic.planes[0][y0:y1, x0:x1].float()
    if fmt.gray:
        mid = float(2 ** (fmt.bits - 1))
        cb = cr = torch.full_like(y, mid)
    else:
        cx0, cy0, cx1, cy1 = _chroma_box(region, fmt)
        cb = pic.planes[1][cy0:cy1, cx0:cx1].float()
        cr = pic.planes[2][cy0:cy1, cx0:cx1].float()
        if (fmt.sub_x or fmt.sub_y) and cb.numel():
            # up to luma size over the whole chroma samples, then cut to the region (odd frame edges)
            both = torch.stack([cb, cr])[None]
            full = F.interpolate(both, size=(cb.shape[0] << fmt.sub_y, cb.shape[1] << fmt.sub_x), mode="bilinear")
            cb, cr = full[0, 0, : y1 - y0, : x1 - x0], full[0, 1, : y1 - y0, : x1 - x0]
    return ycc_to_rgb(y, cb, cr, pic.colour, fmt.bits).clamp_(0.0, 255.0)


def align_faces(pic: DevicePlanes, affines: Sequence[np.ndarray], size: int) -> Tensor:
    """Aligned crops (B, 3, size, size) float RGB 0-255: each face's sampled region converted, then warped."""
    crops = []
    for affine in affines:
        region = sampled_region(affine, size, pic.size, pic.format)
        rgb = region_rgb(pic, region)
        shifted = np.array(affine, np.float64)
        shifted[:, 2] += shifted[:, :2] @ np.array([region[0], region[1]], np.float64)
        crops.append(warp_faces(rgb, shifted[None], size, out_dtype=torch.float32)[0])
    if not crops:
        return torch.empty((0, 3, size, size), dtype=torch.float32, device=pic.planes[0].device)
    return torch.stack(crops)


def blend_region(
    pic: DevicePlanes, region: tuple[int, int, int, int], face: Tensor, mask: Tensor, finite: Tensor | None = None
) -> None:
    """Blend an RGB ``face`` (3, h, w) with ``mask`` (1, h, w) into the planes over ``region``, in place.

    finite: a 0-d bool tensor; where False the planes keep their samples (decided on the device).
    """
    fmt = pic.format
    top = float(2**fmt.bits - 1)
    y_f, cb_f, cr_f = rgb_to_ycc(face, pic.colour, fmt.bits)
    m = mask[0]
    x0, y0, x1, y1 = region
    targets = [(pic.planes[0][y0:y1, x0:x1], y_f, m)]
    if not fmt.gray:
        cx0, cy0, cx1, cy1 = _chroma_box(region, fmt)
        if fmt.sub_x or fmt.sub_y:
            k = (1 << fmt.sub_y, 1 << fmt.sub_x)
            m_c = F.avg_pool2d(m[None, None], k, ceil_mode=True)[0, 0]
            weighted = F.avg_pool2d(torch.stack([cb_f * m, cr_f * m])[None], k, ceil_mode=True)[0]
            # each chroma sample: old * (1 - mean mask) + mean(face * mask); 0 where the mask is 0
            cb_c, cr_c = weighted[0] / m_c.clamp_min(1e-12), weighted[1] / m_c.clamp_min(1e-12)
        else:
            m_c, cb_c, cr_c = m, cb_f, cr_f
        targets.append((pic.planes[1][cy0:cy1, cx0:cx1], cb_c, m_c))
        targets.append((pic.planes[2][cy0:cy1, cx0:cx1], cr_c, m_c))
    for plane, value, weight in targets:
        old = plane.float()
        new = (old * (1.0 - weight) + value * weight).round_().clamp_(0.0, top)
        if finite is not None:
            new = torch.where(finite, new, old)
        plane.copy_(new.to(plane.dtype))


def paste_faces(
    pic: DevicePlanes,
    jobs: Sequence[FaceJob],
    finite: Sequence[Tensor] | None = None,
    config: BlendConfig | None = None,
    margin: float = BOX_MARGIN,
) -> list[tuple[int, int, int, int]]:
    """Paste every restored face of ``jobs`` into the planes (smallest first), in place.

    jobs: crops and restored outputs as float RGB 0-255 (3, S, S) tensors. finite: per job, a
    0-d bool tensor (False: keep the original samples). Returns the regions that may have
    changed (aligned to the chroma grid), in frame pixels.
    """
    config = config or BlendConfig()
    flags = dict(zip(map(id, jobs), finite, strict=True)) if finite is not None else {}
    regions = []
    for job in paste_order(jobs):
        region = align_to_grid(paste_region(job.face, pic.size, 1, margin), pic.format, pic.size)
        x0, y0, x1, y1 = region
        if x1 <= x0 or y1 <= y0:
            continue
        face, mask = render_face(job, region, config, 1, margin, pic.planes[0].device)
        blend_region(pic, region, face, mask, flags.get(id(job)))
        regions.append(region)
    return regions


def changed_samples(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> int:
    """How many samples differ between two pictures' planes (same format and size)."""
    return int(sum(np.count_nonzero(np.asarray(x) != np.asarray(y)) for x, y in zip(a, b, strict=True)))


def region_mask(size: tuple[int, int], regions: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """A (h, w) bool mask, True inside any of ``regions``."""
    w, h = size
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in regions:
        mask[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)] = True
    return mask


def chroma_mask(mask: np.ndarray, fmt: PlaneFormat) -> np.ndarray:
    """A luma-size region mask brought to the chroma planes' size (True where any covered pixel is)."""
    if not (fmt.sub_x or fmt.sub_y):
        return mask
    bh, bw = 1 << fmt.sub_y, 1 << fmt.sub_x
    h, w = mask.shape
    ph, pw = math.ceil(h / bh) * bh, math.ceil(w / bw) * bw
    padded = np.zeros((ph, pw), bool)
    padded[:h, :w] = mask
    return padded.reshape(ph // bh, bh, pw // bw, bw).any(axis=(1, 3))
