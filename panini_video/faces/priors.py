"""RetinaFace prior (anchor) boxes and the decoding of box and landmark offsets against them.

Priors are in centre-size form (cx, cy, w, h), normalised by the input's width and height, in
the order the heads emit predictions: level by level (strides 8, 16, 32), then row, column,
anchor size. Offsets are SSD-style with variances (0.1, 0.2) (Liu et al. 2016; the RetinaFace
training code of biubug6/Pytorch_Retinaface uses the same encoding).
"""

from __future__ import annotations

import math

import torch

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))  # anchor sides in input pixels, per level
VARIANCES = (0.1, 0.2)


def feature_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(rows, cols) of each level's feature map: every stride-2 conv rounds up."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in STEPS]


def prior_count(height: int, width: int) -> int:
    """How many priors an input of this size has."""
    return sum(r * c * len(sizes) for (r, c), sizes in zip(feature_sizes(height, width), MIN_SIZES, strict=True))


def prior_boxes(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(P, 4) float32 priors (cx, cy, w, h) of an input of ``height`` x ``width`` pixels."""
    levels = []
    for (rows, cols), step, sizes in zip(feature_sizes(height, width), STEPS, MIN_SIZES, strict=True):
        cy = (torch.arange(rows, dtype=torch.float64, device=device) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float64, device=device) + 0.5) * step / width
        grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")
        n = len(sizes)
        centres = torch.stack([grid_x, grid_y], dim=-1)[:, :, None, :].expand(rows, cols, n, 2)
        wh = torch.tensor([[s / width, s / height] for s in sizes], dtype=torch.float64, device=device)
        levels.append(torch.cat([centres, wh.expand(rows, cols, n, 2)], dim=-1).reshape(-1, 4))
    return torch.cat(levels).to(torch.float32)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Box offsets (..., P, 4) against priors (..., P, 4) to corner boxes (x0, y0, x1, y1), normalised."""
    centre = priors[..., :2] + loc[..., :2] * VARIANCES[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Landmark offsets (..., P, 10) to points (..., P, 5, 2), normalised like the priors."""
    offsets = pre.reshape(*pre.shape[:-1], 5, 2)
    return priors[..., None, :2] + offsets * VARIANCES[0] * priors[..., None, 2:]
