"""Face alignment: a 4-DOF similarity onto the FFHQ 5-point template, and the warp that applies it.

The warp runs in torch (``affine_grid`` + ``grid_sample``) so the restore stage can align on the
GPU; ``align_face`` is the numpy entry for one face on the CPU. Pixel coordinates follow OpenCV:
integer coordinates are pixel centres, and every affine here maps source pixels to crop pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# The five FFHQ landmarks (left eye, right eye, nose, left mouth corner, right mouth corner) of a
# 512x512 aligned face: the template facexlib's FaceRestoreHelper (face_restoration_helper.py)
# aligns GFPGAN/CodeFormer inputs with; Panini-Net was trained on crops made the same way.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)


def template(size: int) -> np.ndarray:
    """The FFHQ template for a ``size`` x ``size`` crop, float64 (5, 2)."""
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) src -> dst.

    Solves x' = a x - b y + tx, y' = b x + a y + ty for (a, b, tx, ty) in closed form (the
    Umeyama solution without reflection); returns float64 (2, 3).
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    var = float((s**2).sum())
    if var <= 1e-12:
        raise ValueError("landmarks are degenerate (all at one point)")
    a = float((s * d).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    rot = np.array([[a, -b], [b, a]])
    t = dst_mean - rot @ src_mean
    return np.hstack([rot, t[:, None]])


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Affine (2, 3) mapping frame pixels to the ``size`` crop whose landmarks sit on the template."""
    return estimate_similarity(landmarks, template(size))


def to3x3(affine: np.ndarray) -> np.ndarray:
    """(2, 3) affine as a homogeneous (3, 3) matrix."""
    out = np.eye(3)
    out[:2] = affine
    return out


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    return np.linalg.inv(to3x3(affine))[:2]


def rescale_affine(affine: np.ndarray, src_scale: float = 1.0, dst_scale: float = 1.0) -> np.ndarray:
    """The affine between the same two images resized by ``src_scale`` and ``dst_scale``.

    A resize by k maps pixel centre u to (u + 0.5) k - 0.5 (edges stay edges), so the half-pixel
    offsets are kept exact: this is what pastes a 1024 restored crop made from a 512 input.
    """
    return (_resize_matrix(dst_scale) @ to3x3(affine) @ _resize_matrix(1.0 / src_scale))[:2]


def _resize_matrix(k: float) -> np.ndarray:
    return np.array([[k, 0.0, 0.5 * (k - 1.0)], [0.0, k, 0.5 * (k - 1.0)], [0.0, 0.0, 1.0]])


def _normalize(width: int, height: int) -> np.ndarray:
    """Pixel-centre coordinates -> grid_sample's [-1, 1] coordinates (align_corners=False)."""
    return np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0, 0, 1.0]])


def sampling_grid(
    dst_to_src: np.ndarray, src_size: tuple[int, int], out_size: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """grid_sample grid (B, H_out, W_out, 2) for affines (B, 2, 3) mapping output pixels to source pixels.

    src_size and out_size are (width, height).
    """
    mats = np.asarray(dst_to_src, dtype=np.float64).reshape(-1, 2, 3)
    n_src = _normalize(*src_size)
    n_out_inv = np.linalg.inv(_normalize(*out_size))
    theta = np.stack([(n_src @ to3x3(m) @ n_out_inv)[:2] for m in mats])
    w, h = out_size
    theta_t = torch.as_tensor(theta, dtype=torch.float32, device=device)
    return F.affine_grid(theta_t, [len(mats), 1, h, w], align_corners=False)


def to_chw_float(image: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """An RGB image (H, W, 3) numpy or (3, H, W) tensor, uint8 or float 0-255, as float32 (3, H, W)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got {image.shape}")
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    else:
        t = image
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) tensor, got {tuple(t.shape)}")
    if device is not None:
        t = t.to(device, non_blocking=True)
    return t.float()


def from_float(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float 0-255 pixels back to ``dtype`` (uint8 rounds and clamps)."""
    if dtype == torch.uint8:
        return t.round_().clamp_(0, 255).to(torch.uint8)
    return t.to(dtype)


def warp_faces(
    image: torch.Tensor, affines: Sequence[np.ndarray] | np.ndarray, size: int, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Warp every face of one image into ``size`` crops, reflecting at the image's borders.

    image: (3, H, W) tensor, uint8 or float 0-255, on any device; affines: (B, 2, 3) frame ->
    crop. Returns (B, 3, size, size) on the image's device, of ``out_dtype`` (default: the
    image's). All faces go through one grid_sample call: their grids are stacked along the
    height, so the frame is never copied per face.
    """
    mats = np.asarray(affines, dtype=np.float64).reshape(-1, 2, 3)
    dtype = image.dtype if out_dtype is None else out_dtype
    b = len(mats)
    if b == 0:
        return torch.empty((0, 3, size, size), dtype=dtype, device=image.device)
    _, h, w = image.shape
    inv = np.stack([invert_affine(m) for m in mats])
    grid = sampling_grid(inv, (w, h), (size, size), image.device).reshape(1, b * size, size, 2)
    src = image.float().unsqueeze(0)
    # Bicubic, not bilinear: a face is warped twice (here and back at paste-back), and two
    # bilinear resamplings near 1:1 scale blur enough to cost about 6 dB in the round trip.
    out = F.grid_sample(src, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    out = out.clamp_(0.0, 255.0).reshape(3, b, size, size).permute(1, 0, 2, 3)
    return from_float(out, dtype)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned ``size`` crop (uint8 (size, size, 3)) of one face of an RGB uint8 image, and its affine."""
    affine = alignment_matrix(landmarks, size)
    crop = warp_faces(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), affine[None], size)[0]
    return crop.permute(1, 2, 0).contiguous().numpy(), affine
