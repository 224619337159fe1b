"""Greedy NMS against a brute-force reference written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from panini_video.faces.nms import batched_nms, box_iou, nms


def reference_iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes: list[list[float]], scores: list[float], threshold: float) -> list[int]:
    """Textbook greedy NMS: take the best box left, drop what overlaps it, repeat."""
    left = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    while left:
        best = left.pop(0)
        kept.append(best)
        left = [i for i in left if reference_iou(boxes[best], boxes[i]) <= threshold]
    return kept


def random_clusters(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes jittered around a few centres, so that chains of suppression occur."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 200, (max(1, n // 8), 2))
    which = rng.integers(0, len(centres), n)
    xy = centres[which] + rng.normal(0, 6, (n, 2))
    wh = rng.uniform(10, 40, (n, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    scores = rng.uniform(0, 1, n)
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32)


def test_box_iou_against_reference() -> None:
    a, _ = random_clusters(1, 30)
    b, _ = random_clusters(2, 20)
    got = box_iou(a, b)
    want = torch.tensor([[reference_iou(x, y) for y in b.tolist()] for x in a.tolist()])
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert box_iou(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 0, 15, 10]])).item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.1, 0.4, 0.7])
def test_nms_equals_greedy_reference(seed: int, threshold: float) -> None:
    boxes, scores = random_clusters(seed, 80 + 20 * seed)
    got = nms(boxes, scores, threshold).tolist()
    assert got == reference_nms(boxes.tolist(), scores.tolist(), threshold)
    assert 1 < len(got) < len(scores)  # the case is not trivial


def test_batched_nms_with_padding_equals_per_frame() -> None:
    frames = [random_clusters(10 + i, n) for i, n in enumerate([50, 7, 0, 120])]
    k = max(len(s) for _, s in frames)
    boxes = torch.zeros(len(frames), k, 4)
    scores = torch.zeros(len(frames), k)
    valid = torch.zeros(len(frames), k, dtype=torch.bool)
    for i, (b, s) in enumerate(frames):
        boxes[i, : len(s)], scores[i, : len(s)], valid[i, : len(s)] = b, s, True
        # padding that would suppress everything if it counted
        boxes[i, len(s) :] = torch.tensor([0.0, 0.0, 1000.0, 1000.0])
        scores[i, len(s) :] = 2.0
    keep = batched_nms(boxes, scores, valid, 0.4)
    for i, (b, s) in enumerate(frames):
        assert not keep[i, len(s) :].any()
        got = torch.nonzero(keep[i, : len(s)]).flatten().tolist()
        assert got == sorted(reference_nms(b.tolist(), s.tolist(), 0.4))


def test_identical_boxes_keep_one_and_disjoint_keep_all() -> None:
    same = torch.tensor([[0.0, 0, 10, 10]] * 4)
    assert nms(same, torch.tensor([0.5, 0.9, 0.9, 0.1]), 0.4).tolist() == [1]
    apart = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    assert nms(apart, torch.tensor([0.2, 0.9, 0.5]), 0.4).tolist() == [1, 2, 0]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.4).tolist() == []
