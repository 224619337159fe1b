"""Alignment: the similarity fit against known matrices, the torch warp against OpenCV."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from panini_video.faces import align
from tests.faces.media import read_rgb


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_template_scales_with_the_crop() -> None:
    np.testing.assert_allclose(align.template(512), align.FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(align.template(64), align.FFHQ_TEMPLATE_512 / 8)
    # Eyes level, left eye left of right eye, mouth below nose below eyes.
    t = align.template(512)
    assert t[0, 0] < t[1, 0] and abs(t[0, 1] - t[1, 1]) < 1 and t[2, 1] < t[3, 1]


@pytest.mark.parametrize(
    ("scale", "angle", "tx", "ty"), [(1.0, 0.0, 0.0, 0.0), (0.37, 0.4, 120.5, -33.0), (2.5, -2.8, -400.0, 900.25)]
)
def test_similarity_is_recovered_exactly(scale: float, angle: float, tx: float, ty: float) -> None:
    m = similarity(scale, angle, tx, ty)
    src = np.random.default_rng(0).uniform(0, 500, (5, 2))
    np.testing.assert_allclose(align.estimate_similarity(src, apply(m, src)), m, atol=1e-9)


@pytest.mark.parametrize("size", [512, 64])
def test_landmarks_from_a_known_similarity_land_on_the_template(size: int) -> None:
    # Landmarks = the template moved by a known similarity: alignment must undo exactly that.
    m = similarity(0.6, 0.3, 300.0, 150.0)
    landmarks = apply(m, align.template(size))
    a = align.alignment_matrix(landmarks, size)
    np.testing.assert_allclose(align.to3x3(a) @ align.to3x3(m), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(apply(a, landmarks), align.template(size), atol=1e-9)


def test_least_squares_with_noise_beats_any_perturbed_fit() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (5, 2))
    dst = apply(similarity(1.3, 0.2, 10, 20), src) + rng.normal(0, 2, (5, 2))
    best = align.estimate_similarity(src, dst)
    err = np.sum((apply(best, src) - dst) ** 2)
    for _ in range(20):
        a, b = best[0, 0] + rng.normal(0, 1e-3), best[1, 0] + rng.normal(0, 1e-3)
        other = np.array([[a, -b, best[0, 2]], [b, a, best[1, 2]]])
        assert np.sum((apply(other, src) - dst) ** 2) >= err


def test_degenerate_landmarks_are_refused() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        align.estimate_similarity(np.ones((5, 2)), align.template(512))


def test_rescale_affine_keeps_pixel_edges() -> None:
    m = similarity(0.8, 0.1, 5, 7)
    p = np.array([[10.0, 20.0], [0.0, 0.0]])
    # Destination enlarged by 2: a point maps to (u + 0.5) * 2 - 0.5.
    np.testing.assert_allclose(apply(align.rescale_affine(m, 1, 2), p), (apply(m, p) + 0.5) * 2 - 0.5)
    # Source enlarged by 3: its pixel (x + 0.5) * 3 - 0.5 maps where x did.
    np.testing.assert_allclose(apply(align.rescale_affine(m, 3, 1), (p + 0.5) * 3 - 0.5), apply(m, p), atol=1e-9)
    np.testing.assert_allclose(align.invert_affine(align.invert_affine(m)), m, atol=1e-12)


@pytest.fixture(scope="module")
def photo(testdata: Path) -> np.ndarray:
    return read_rgb(testdata / "photos" / "two_people.jpg")


def test_torch_warp_matches_opencv_on_interior_pixels(photo: np.ndarray) -> None:
    m = align.alignment_matrix(apply(similarity(0.45, 0.25, 240, 90), align.template(512)), 512)
    ours = align.warp_faces(torch.from_numpy(photo).permute(2, 0, 1), m[None], 512)[0].permute(1, 2, 0).numpy()
    ref = cv2.warpAffine(photo, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert ours.dtype == np.uint8
    assert diff[2:-2, 2:-2].max() <= 1  # rounding of the interpolated value only
    assert diff.mean() < 0.05


def test_warp_reflects_at_the_frame_border(photo: np.ndarray) -> None:
    # A face at the image's corner: half the crop lies outside, and is filled by reflection.
    h, w = photo.shape[:2]
    m = align.alignment_matrix(apply(similarity(0.5, 0.0, -120, -120), align.template(512)), 512)
    ours = align.warp_faces(torch.from_numpy(photo).permute(2, 0, 1), m[None], 512)[0].permute(1, 2, 0).numpy()
    ref = cv2.warpAffine(photo, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    assert np.abs(ours.astype(int) - ref.astype(int))[4:-4, 4:-4].max() <= 2
    zero = cv2.warpAffine(photo, m, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    assert (zero.sum(-1) == 0).mean() > 0.2 and (ours.sum(-1) == 0).mean() < 0.01


def test_batched_warp_equals_one_by_one_and_floats_work(photo: np.ndarray) -> None:
    image = torch.from_numpy(photo).permute(2, 0, 1)
    mats = np.stack(
        [
            align.alignment_matrix(apply(similarity(s, a, x, y), align.template(64)), 64)
            for s, a, x, y in [(3.0, 0.1, 200, 100), (2.0, -0.3, 700, 120), (4.0, 0.0, 500, 300)]
        ]
    )
    batch = align.warp_faces(image, mats, 64)
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.uint8
    for i in range(3):
        assert torch.equal(batch[i], align.warp_faces(image, mats[i : i + 1], 64)[0])
    as_float = align.warp_faces(image.float(), mats, 64)
    assert as_float.dtype == torch.float32
    assert (as_float.round() - batch.float()).abs().max() <= 1
    assert align.warp_faces(image, np.zeros((0, 2, 3)), 64).shape == (0, 3, 64, 64)


def test_align_face_numpy_entry(photo: np.ndarray) -> None:
    landmarks = apply(similarity(0.4, 0.05, 250, 100), align.template(512))
    crop, affine = align.align_face(photo, landmarks, 512)
    assert crop.shape == (512, 512, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(apply(affine, landmarks), align.template(512), atol=1e-6)
    ref = cv2.warpAffine(photo, affine, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    assert np.abs(crop.astype(int) - ref.astype(int))[2:-2, 2:-2].max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_warp_on_cuda_matches_cpu(photo: np.ndarray) -> None:
    image = torch.from_numpy(photo).permute(2, 0, 1)
    m = align.alignment_matrix(apply(similarity(0.45, 0.25, 240, 90), align.template(512)), 512)[None]
    cpu = align.warp_faces(image, m, 512)
    gpu = align.warp_faces(image.cuda(), m, 512)
    assert gpu.is_cuda and (gpu.cpu().int() - cpu.int()).abs().max() <= 1
