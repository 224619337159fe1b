"""Prior boxes and offset decoding of RetinaFace."""

from __future__ import annotations

import math

import pytest
import torch

from panini_video.faces.priors import (
    MIN_SIZES,
    STEPS,
    VARIANCES,
    decode_boxes,
    decode_landmarks,
    prior_boxes,
    prior_count,
)
from panini_video.faces.retinaface_net import RetinaFaceNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("height,width", [(640, 640), (360, 640), (97, 131), (1, 1), (1080, 1920)])
def test_prior_count_formula(height: int, width: int) -> None:
    # two anchors per cell of each level; a level has ceil(side / stride) cells per side
    expected = sum(2 * math.ceil(height / s) * math.ceil(width / s) for s in (8, 16, 32))
    assert prior_count(height, width) == expected == len(prior_boxes(height, width))


def test_640_square_has_the_well_known_16800_priors() -> None:
    assert prior_count(640, 640) == 16800  # (80*80 + 40*40 + 20*20) * 2


@pytest.mark.parametrize("height,width", [(97, 131), (64, 48)])
def test_prior_count_equals_the_network_outputs(height: int, width: int) -> None:
    # odd sizes: the heads' output count must follow the same rounding as the priors
    net = RetinaFaceNet("mobilenet").eval()
    with torch.inference_mode():
        loc, scores, landmarks = net(torch.zeros(1, 3, height, width))
    assert loc.shape == (1, prior_count(height, width), 4)
    assert scores.shape == (1, prior_count(height, width)) and landmarks.shape[-1] == 10


def test_prior_layout_level_row_column_anchor() -> None:
    h, w = 64, 96
    p = prior_boxes(h, w)
    # first prior: level 0, row 0, col 0, the 16 px anchor; then the 32 px one at the same centre
    torch.testing.assert_close(p[0], torch.tensor([4 / w, 4 / h, 16 / w, 16 / h]))
    torch.testing.assert_close(p[1], torch.tensor([4 / w, 4 / h, 32 / w, 32 / h]))
    torch.testing.assert_close(p[2, :2], torch.tensor([12 / w, 4 / h]))  # next column
    cols0 = math.ceil(w / 8)
    torch.testing.assert_close(p[2 * cols0, :2], torch.tensor([4 / w, 12 / h]))  # next row
    level1 = 2 * math.ceil(h / 8) * cols0
    torch.testing.assert_close(p[level1], torch.tensor([8 / w, 8 / h, 64 / w, 64 / h]))
    assert STEPS == (8, 16, 32) and MIN_SIZES[2] == (256, 512)


def test_zero_offsets_decode_to_the_priors() -> None:
    p = prior_boxes(64, 64)
    boxes = decode_boxes(torch.zeros(1, len(p), 4), p)[0]
    torch.testing.assert_close(boxes[:, :2], p[:, :2] - p[:, 2:] / 2)
    torch.testing.assert_close(boxes[:, 2:], p[:, :2] + p[:, 2:] / 2)
    points = decode_landmarks(torch.zeros(len(p), 10), p)
    torch.testing.assert_close(points, p[:, None, :2].expand(-1, 5, 2))


def test_decoding_inverts_the_training_encoding() -> None:
    # encode known boxes as SSD training does (centre offset / (v0 * prior size), log size ratio / v1)
    g = torch.Generator().manual_seed(0)
    p = prior_boxes(64, 64)
    centre = torch.rand(len(p), 2, generator=g)
    size = torch.rand(len(p), 2, generator=g) * 0.5 + 0.05
    truth = torch.cat([centre - size / 2, centre + size / 2], dim=1)
    loc = torch.cat([(centre - p[:, :2]) / (VARIANCES[0] * p[:, 2:]), torch.log(size / p[:, 2:]) / VARIANCES[1]], dim=1)
    torch.testing.assert_close(decode_boxes(loc, p), truth, atol=1e-5, rtol=1e-5)
    points = torch.rand(len(p), 5, 2, generator=g)
    pre = ((points - p[:, None, :2]) / (VARIANCES[0] * p[:, None, 2:])).reshape(len(p), 10)
    torch.testing.assert_close(decode_landmarks(pre, p), points, atol=1e-5, rtol=1e-5)
