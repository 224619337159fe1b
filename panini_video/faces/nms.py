"""Greedy non-maximum suppression in plain torch, batched over frames, same code on CPU and GPU.

Greedy NMS keeps a box unless a higher-scoring kept box overlaps it by more than the threshold.
Instead of a Python loop over boxes (one device sync per box), the kept set is found as the
fixed point of ``keep[i] = valid[i] and no kept j < i with IoU(j, i) > t`` over score-sorted
boxes: entry i depends only on entries before it, so after k rounds the first k entries are
final and the first round that changes nothing has reached the one greedy answer. Real frames
need a handful of rounds (the length of the longest chain of suppressions).
"""

from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of corner boxes (..., N, 4) against (..., M, 4): (..., N, M); continuous, no +1."""
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    top_left = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    bottom_right = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return inter / union.clamp(min=torch.finfo(inter.dtype).tiny)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Which boxes greedy NMS keeps, frame by frame.

    Args:
        boxes: (B, K, 4) corner boxes.
        scores: (B, K); ties keep the lower index first.
        valid: (B, K) bool; invalid entries (padding) are never kept and suppress nothing.

    Returns:
        (B, K) bool, True for kept boxes.
    """
    if boxes.shape[1] == 0:
        return valid.clone()
    order = torch.sort(torch.where(valid, scores, -torch.inf), dim=1, descending=True, stable=True).indices
    boxes_s = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
    valid_s = torch.gather(valid, 1, order)
    k = boxes.shape[1]
    earlier = torch.ones(k, k, dtype=torch.bool, device=boxes.device).triu(diagonal=1)  # [j, i]: j before i
    suppresses = (box_iou(boxes_s, boxes_s) > iou_threshold) & earlier & valid_s[:, :, None]
    keep = valid_s
    for _ in range(k):
        blocked = (suppresses & keep[:, :, None]).any(dim=1)
        new_keep = valid_s & ~blocked
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return torch.zeros_like(valid).scatter(1, order, keep)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes (N, 4) greedy NMS keeps, by decreasing score."""
    valid = torch.ones(1, boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep = batched_nms(boxes[None], scores[None], valid, iou_threshold)[0]
    kept = torch.nonzero(keep).flatten()
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]
