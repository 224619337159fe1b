"""Paste restored faces back into the frame: inverse warp, feathered mask, optional colour match.

Only a padded box around each face is touched: the face's detection box grown by ``BOX_MARGIN``
of its size on every side (``paste_region``). Inside it the restored crop is sampled at the
frame's scale (torch ``grid_sample``, so it runs where the frame lives, CPU or GPU) and blended
with a mask that is the product of two feathered ramps, computed in closed form rather than by
eroding and blurring a mask image:

- crop mask: 0 within ``feather`` (share of the crop size) of the crop's edges, rising to 1 over
  the next ``feather``: the crop's square border never shows (the seam of GFPGAN #259/#590);
- box mask: 1 inside the detection box, falling to 0 at the padded box's edge: every pixel
  outside the padded box keeps its exact original value.

Overlapping faces are pasted smallest first, so the largest (usually the nearest) face ends on
top. ``scale`` pastes into a frame already enlarged N times (``--upscale``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from panini_video.config import BlendConfig
from panini_video.faces.align import from_float, rescale_affine, to_chw_float
from panini_video.faces.select import face_area
from panini_video.records import Face, FaceJob

BOX_MARGIN = 0.25  # the pasted region reaches this share of the box's width/height beyond it
_COLOR_CENTRE = 0.25  # colour statistics come from the crop's centre (25%..75%): skin, not hair
_STD_RATIO = (0.5, 2.0)  # colour match never stretches contrast beyond this

# BT.601 full-range RGB -> YCbCr (offsets dropped: only differences and ratios matter here).
_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def paste_region(
    face: Face, frame_size: tuple[int, int], scale: int = 1, margin: float = BOX_MARGIN
) -> tuple[int, int, int, int]:
    """Pixel bounds (x0, y0, x1, y1), end exclusive, of what pasting ``face`` may change.

    frame_size: (width, height) of the frame pasted into (already enlarged by ``scale``).
    """
    x0, y0, x1, y1 = _padded_box(face, margin)
    w, h = frame_size
    return (
        max(int(math.floor((x0 + 0.5) * scale - 0.5)), 0),
        max(int(math.floor((y0 + 0.5) * scale - 0.5)), 0),
        min(int(math.ceil((x1 + 0.5) * scale - 0.5)) + 1, w),
        min(int(math.ceil((y1 + 0.5) * scale - 0.5)) + 1, h),
    )


def _padded_box(face: Face, margin: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    mx, my = margin * max(x1 - x0, 1.0), margin * max(y1 - y0, 1.0)
    return x0 - mx, y0 - my, x1 + mx, y1 + my


def paste_order(jobs: Sequence[FaceJob]) -> list[FaceJob]:
    """The jobs to paste, in paste order: failed and unrestored ones left out, smallest face first."""
    usable = [j for j in jobs if not j.failed and j.restored is not None]
    return sorted(usable, key=lambda j: face_area(j.face))


def paste_faces(
    frame: np.ndarray | torch.Tensor,
    jobs: Sequence[FaceJob],
    config: BlendConfig | None = None,
    scale: int = 1,
    margin: float = BOX_MARGIN,
) -> Any:
    """The frame with every restored face pasted in; the input frame is left unchanged.

    frame: RGB (H, W, 3) uint8 numpy, or a (3, H, W) tensor (uint8 or float 0-255, any device),
    enlarged ``scale`` times from the frame the jobs' affines were made on. Returns the same kind.
    """
    config = config or BlendConfig()
    order = paste_order(jobs)
    if isinstance(frame, np.ndarray):
        out_np = frame.copy()
        if order:
            # A view: writing into it writes into out_np.
            _paste_all(torch.from_numpy(out_np).permute(2, 0, 1), order, config, scale, margin)
        return out_np
    out = frame.clone()
    _paste_all(out, order, config, scale, margin)
    return out


def _paste_all(out: torch.Tensor, order: list[FaceJob], config: BlendConfig, scale: int, margin: float) -> None:
    for job in order:
        _paste_one(out, job, config, scale, margin)


def _crop_size(crop: Any) -> int:
    if isinstance(crop, np.ndarray):
        return int(crop.shape[0])
    return int(crop.shape[-1])


def _as_chw(image: Any, device: torch.device) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        return to_chw_float(image, device)
    return image.to(device).float()


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@torch.no_grad()
def _paste_one(out: torch.Tensor, job: FaceJob, config: BlendConfig, scale: int, margin: float) -> None:
    _, h, w = out.shape
    region = paste_region(job.face, (w, h), scale, margin)
    x0, y0, x1, y1 = region
    if x1 <= x0 or y1 <= y0:
        return
    face, mask = render_face(job, region, config, scale, margin, out.device)
    roi = out[:, y0:y1, x0:x1]
    blended = roi.float() * (1 - mask) + face * mask
    roi.copy_(from_float(blended, out.dtype))


@torch.no_grad()
def render_face(
    job: FaceJob,
    region: tuple[int, int, int, int],
    config: BlendConfig,
    scale: int = 1,
    margin: float = BOX_MARGIN,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The restored face over ``region`` (x0, y0, x1, y1 of the frame pasted into) and its mask.

    Returns (face (3, h, w) float RGB 0-255, mask (1, h, w) float 0-1): the crop sampled back at
    the frame's scale, and the product of the crop's and the box's feathered ramps (see the
    module docstring). The caller blends: ``frame * (1 - mask) + face * mask``, in RGB or, as
    the restorer does, in the picture's own Y'CbCr planes (the blend is linear, so it is the same).
    """
    x0, y0, x1, y1 = region
    restored = _as_chw(job.restored, device)
    r = int(restored.shape[-1])
    s = _crop_size(job.crop)
    if config.color_match:
        restored = match_color(restored, _as_chw(job.crop, device))
    to_crop = torch.as_tensor(rescale_affine(job.affine, float(scale), r / s), dtype=torch.float32, device=device)

    ys = torch.arange(y0, y1, device=device, dtype=torch.float32)
    xs = torch.arange(x0, x1, device=device, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    u = to_crop[0, 0] * gx + to_crop[0, 1] * gy + to_crop[0, 2]
    v = to_crop[1, 0] * gx + to_crop[1, 1] * gy + to_crop[1, 2]
    grid = torch.stack([(2 * u + 1) / r - 1, (2 * v + 1) / r - 1], dim=-1)[None]
    # Bicubic (clamped: its overshoot at edges would leave the pixel range), see align.warp_faces.
    face = F.grid_sample(restored[None], grid, mode="bicubic", padding_mode="border", align_corners=False)[0]
    face = face.clamp_(0.0, 255.0)

    # Crop mask: distance to the crop's nearest edge, as a share of the crop.
    edge = torch.minimum(torch.minimum(u + 0.5, r - 0.5 - u), torch.minimum(v + 0.5, r - 0.5 - v)) / r
    f = max(float(config.feather), 0.0)
    crop_mask = _smoothstep((edge - f) / f) if f > 0 else (edge > 0).float()
    # Box mask: 1 inside the detection box, 0 at the padded box's edge, in original frame pixels.
    fx = (gx + 0.5) / scale - 0.5
    fy = (gy + 0.5) / scale - 0.5
    bx0, by0, bx1, by1 = (float(v) for v in job.face.box)
    mx, my = margin * max(bx1 - bx0, 1.0), margin * max(by1 - by0, 1.0)
    if margin > 0:
        ramp_x = _smoothstep(torch.minimum(fx - (bx0 - mx), (bx1 + mx) - fx) / mx)
        ramp_y = _smoothstep(torch.minimum(fy - (by0 - my), (by1 + my) - fy) / my)
    else:
        ramp_x = ((fx >= bx0) & (fx <= bx1)).float()
        ramp_y = ((fy >= by0) & (fy <= by1)).float()
    return face, (crop_mask * ramp_x * ramp_y)[None]


def match_color(restored: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """``restored`` (3, R, R) float with the mean and spread of ``original``'s colours (YCbCr).

    Statistics come from the centre of each crop (the skin), so a restorer that shifts the
    overall tint or contrast is brought back to the source's; the change is one affine map per
    channel, so detail and texture stay as restored.
    """
    ycc = _YCC.to(restored.device)
    a = torch.einsum("ij,jhw->ihw", ycc, _centre(restored)).reshape(3, -1)
    b = torch.einsum("ij,jhw->ihw", ycc, _centre(original.float())).reshape(3, -1)
    ratio = (b.std(1) / a.std(1).clamp_min(1e-3)).clamp(*_STD_RATIO)
    full = torch.einsum("ij,jhw->ihw", ycc, restored)
    matched = (full - a.mean(1)[:, None, None]) * ratio[:, None, None] + b.mean(1)[:, None, None]
    back = torch.einsum("ij,jhw->ihw", torch.linalg.inv(ycc), matched)
    return back.clamp(0, 255)


def _centre(image: torch.Tensor) -> torch.Tensor:
    n = image.shape[-1]
    lo, hi = int(n * _COLOR_CENTRE), max(int(n * (1 - _COLOR_CENTRE)), int(n * _COLOR_CENTRE) + 1)
    return image[:, lo:hi, lo:hi]
