"""Paste-back: nothing outside the paste regions changes, identity round trip, order, scale, colour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from panini_video.config import BlendConfig
from panini_video.faces.align import alignment_matrix, rescale_affine, warp_faces
from panini_video.faces.blend import paste_faces, paste_order, paste_region
from panini_video.records import Face, FaceJob
from tests.faces.media import psnr, read_rgb

REL = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


def face_box(x0: float, y0: float, size: float) -> Face:
    box = np.array([x0, y0, x0 + size, y0 + size], np.float32)
    return Face(box=box, landmarks=(box[:2] + REL * size).astype(np.float32), score=0.99)


def identity_jobs(image: np.ndarray, faces: tuple[Face, ...], size: int = 512) -> list[FaceJob]:
    """Jobs whose 'restored' crop is the aligned crop itself (an identity restorer)."""
    chw = torch.from_numpy(image).permute(2, 0, 1)
    jobs = []
    for f in faces:
        m = alignment_matrix(f.landmarks, size)
        crop = warp_faces(chw, m[None], size)[0].permute(1, 2, 0).numpy()
        jobs.append(FaceJob(0, f, m, crop, restored=crop))
    return jobs


def outside_mask(shape: tuple[int, ...], faces: tuple[Face, ...], scale: int = 1) -> np.ndarray:
    h, w = shape[:2]
    inside = np.zeros((h, w), bool)
    for f in faces:
        x0, y0, x1, y1 = paste_region(f, (w, h), scale)
        inside[y0:y1, x0:x1] = True
    return ~inside


def box_region(a: np.ndarray, face: Face) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(float(v))) for v in face.box)
    return a[max(y0, 0) : y1, max(x0, 0) : x1]


@pytest.fixture(scope="module")
def real(testdata: Path, detector: Any) -> tuple[np.ndarray, tuple[Face, ...]]:
    image = read_rgb(testdata / "photos" / "two_people.jpg")
    faces = detector.detect([image])[0].to_faces()
    assert len(faces) == 2
    return image, faces


def test_identity_round_trip_on_a_real_photo(real: tuple[np.ndarray, tuple[Face, ...]]) -> None:
    image, faces = real
    out = paste_faces(image, identity_jobs(image, faces))
    assert out is not image and out.dtype == np.uint8 and out.shape == image.shape
    for f in faces:
        assert psnr(box_region(out, f), box_region(image, f)) >= 40.0
    outside = outside_mask(image.shape, faces)
    assert np.array_equal(out[outside], image[outside])  # exactly, not nearly
    assert not np.array_equal(out, image)  # and something was pasted


def test_pixels_outside_the_boxes_never_change(testdata: Path) -> None:
    image = read_rgb(testdata / "photos" / "group3_with_child.jpg")[:700, :1000]
    faces = (face_box(100, 100, 150), face_box(600, 300, 200), face_box(900, 600, 180))  # last: over the edge
    jobs = []
    for f in faces:
        m = alignment_matrix(f.landmarks, 64)
        noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)  # any restorer output
        jobs.append(FaceJob(0, f, m, np.zeros((64, 64, 3), np.uint8), restored=noise))
    before = image.copy()
    out = paste_faces(image, jobs, BlendConfig(color_match=True))
    assert np.array_equal(image, before)  # the input frame is left alone
    outside = outside_mask(image.shape, faces)
    assert np.array_equal(out[outside], image[outside])
    for f in faces:
        assert np.abs(box_region(out, f).astype(int) - box_region(image, f)).mean() > 20


def test_failed_and_unrestored_jobs_are_skipped() -> None:
    image = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    f = face_box(50, 50, 80)
    m = alignment_matrix(f.landmarks, 64)
    white = np.full((64, 64, 3), 255, np.uint8)
    jobs = [
        FaceJob(0, f, m, white, restored=None),
        FaceJob(0, f, m, white, restored=white, failed=True),
    ]
    assert paste_order(jobs) == []
    assert np.array_equal(paste_faces(image, jobs), image)


def test_overlapping_faces_larger_pasted_last() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    small, large = face_box(60, 60, 100), face_box(130, 130, 180)
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[..., 2] = 255
    jobs = [
        FaceJob(0, large, alignment_matrix(large.landmarks, 64), red * 0, restored=blue),
        FaceJob(0, small, alignment_matrix(small.landmarks, 64), red * 0, restored=red),
    ]
    assert [j.face for j in paste_order(jobs)] == [small, large]
    for order in (jobs, jobs[::-1]):
        out = paste_faces(image, order)
        overlap = out[135:158, 135:158]  # inside both boxes
        assert overlap[..., 2].min() >= 250 and overlap[..., 0].max() <= 5
        assert out[75, 75, 0] > 250 and out[75, 75, 2] < 5  # the small face shows where the large one does not reach


def test_tensor_frames_and_large_restored_crops(real: tuple[np.ndarray, tuple[Face, ...]]) -> None:
    image, faces = real
    jobs = identity_jobs(image, faces)
    # A restorer that outputs 1024 from a 512 input: the affine is scaled to the output.
    big = [
        FaceJob(
            0,
            j.face,
            j.affine,
            j.crop,
            restored=F.interpolate(
                torch.from_numpy(j.crop).permute(2, 0, 1)[None].float(), scale_factor=2, mode="bicubic"
            )[0],
        )
        for j in jobs
    ]
    frame = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    out = paste_faces(frame, big)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == frame.shape
    out_np = out.permute(1, 2, 0).numpy()
    for f in faces:
        assert psnr(box_region(out_np, f), box_region(image, f)) >= 38.0
    outside = outside_mask(image.shape, faces)
    assert np.array_equal(out_np[outside], image[outside])
    as_float = paste_faces(frame.float(), jobs)
    assert as_float.dtype == torch.float32


def test_paste_into_an_upscaled_frame(real: tuple[np.ndarray, tuple[Face, ...]]) -> None:
    image, faces = real
    up = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float(), scale_factor=2, mode="bilinear")[0]
    up_u8 = up.round().clamp(0, 255).to(torch.uint8)
    jobs = []
    for f in faces:
        m = alignment_matrix(f.landmarks, 256)
        # The 'restored' 512 crop is taken from the enlarged frame: an identity at scale 2.
        crop2 = warp_faces(up_u8, rescale_affine(m, 2.0, 2.0)[None], 512)[0]
        jobs.append(FaceJob(0, f, m, np.zeros((256, 256, 3), np.uint8), restored=crop2))
    out = paste_faces(up_u8, jobs, scale=2).permute(1, 2, 0).numpy()
    ref = up_u8.permute(1, 2, 0).numpy()
    for f in faces:
        big = face_box(0, 0, 1)
        big = Face(box=(f.box + 0.5) * 2 - 0.5, landmarks=f.landmarks, score=1.0)
        assert psnr(box_region(out, big), box_region(ref, big)) >= 40.0
    outside = outside_mask(ref.shape, faces, scale=2)
    assert np.array_equal(out[outside], ref[outside])


def test_color_match_undoes_a_tint(real: tuple[np.ndarray, tuple[Face, ...]]) -> None:
    image, faces = real
    jobs = identity_jobs(image, faces)
    tinted = [
        FaceJob(0, j.face, j.affine, j.crop, restored=np.clip(j.crop * 0.8 + [40, 0, -20], 0, 255).astype(np.uint8))
        for j in jobs
    ]
    plain = paste_faces(image, tinted)
    matched = paste_faces(image, tinted, BlendConfig(color_match=True))
    for f in faces:
        assert psnr(box_region(matched, f), box_region(image, f)) > psnr(box_region(plain, f), box_region(image, f)) + 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_paste_on_cuda_matches_cpu(real: tuple[np.ndarray, tuple[Face, ...]]) -> None:
    image, faces = real
    jobs = identity_jobs(image, faces)
    frame = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    cpu = paste_faces(frame, jobs)
    gpu = paste_faces(frame.cuda(), jobs)
    assert gpu.is_cuda and (gpu.cpu().int() - cpu.int()).abs().max() <= 1
