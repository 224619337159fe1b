"""The face stages: batching and order in detect, carry-over in track, align+blend round trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from panini_video.config import BlendConfig, DetectConfig, SelectConfig, SmoothConfig, TrackConfig
from panini_video.errors import UsageError
from panini_video.faces.blend import paste_region
from panini_video.faces.detector import Detection
from panini_video.faces.stages import (
    AlignStage,
    AnnotateStage,
    BlendStage,
    DetectStage,
    TrackStage,
    make_jobs,
    points_to_stored,
    points_to_upright,
    upright,
)
from panini_video.records import Frame, FrameItem
from tests.faces.media import psnr, read_rgb

REL = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


class MovingFaceDetector:
    """A test double: one 100 px face at x = 100 + 5 * (the frame's first pixel value)."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detection]:
        self.calls.append([int(f[0, 0, 0]) for f in frames])
        out = []
        for f in frames:
            x0 = 100.0 + 5 * int(f[0, 0, 0])
            box = np.array([[x0, 100, x0 + 100, 200]], np.float32)
            out.append(Detection(box, (box[:, None, :2] + REL * 100).astype(np.float32), np.array([0.99], np.float32)))
        return out


def items(n: int) -> list[FrameItem]:
    out = []
    for i in range(n):
        image = np.full((360, 640, 3), 60, np.uint8)
        image[0, 0, 0] = i  # the double reads the frame number from here
        out.append(FrameItem(Frame(i, 1000 * i, Fraction(1, 30000), image)))
    return out


def run_stage(stage: object, inputs: list[FrameItem]) -> list[FrameItem]:
    out: list[FrameItem] = []
    for it in inputs:
        out += list(stage.process(it))  # type: ignore[attr-defined]
    out += list(stage.flush())  # type: ignore[attr-defined]
    return out


def test_detect_batches_frames_keeps_order_and_flushes_the_rest() -> None:
    det = MovingFaceDetector()
    stage = DetectStage(DetectConfig(batch_frames=4), detector=det)
    out = run_stage(stage, items(10))
    assert [it.index for it in out] == list(range(10))
    assert det.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(len(it.faces) == 1 and it.faces[0].track == -1 for it in out)


def test_detect_every_n_frames() -> None:
    det = MovingFaceDetector()
    stage = DetectStage(DetectConfig(batch_frames=2, detect_every=3), detector=det)
    out = run_stage(stage, items(11))
    assert [it.index for it in out] == list(range(11))
    assert det.calls == [[0, 3], [6, 9]]
    assert [len(it.faces) for it in out] == [1 if i % 3 == 0 else 0 for i in range(11)]


def test_track_carries_faces_between_detections() -> None:
    detected = run_stage(DetectStage(DetectConfig(detect_every=3), detector=MovingFaceDetector()), items(12))
    tracked = run_stage(TrackStage(TrackConfig(), SmoothConfig(strength=0), SelectConfig(), detect_every=3), detected)
    assert all(len(it.faces) == 1 for it in tracked)
    assert len({it.faces[0].track for it in tracked}) == 1
    # Frames between detections ride on the Kalman prediction: the first gap has no velocity
    # yet (the face stands still), later gaps learn it, so the error shrinks gap after gap.
    err = [abs(float(it.faces[0].box[0]) - (100 + 5 * it.index)) for it in tracked]
    assert err[1:3] == pytest.approx([5.0, 10.0])
    gap_end = [err[i] for i in range(2, 12, 3)]
    assert all(b < a for a, b in zip(gap_end, gap_end[1:], strict=False)), gap_end
    assert max(err[6:]) < 2.5
    assert not any(it.scene_cut for it in tracked)


def test_track_stage_resets_at_a_scene_cut() -> None:
    frames = items(8)
    for it in frames[4:]:
        it.frame.image[..., 2] = 220  # a different shot from frame 4 on
    detected = run_stage(DetectStage(DetectConfig(), detector=MovingFaceDetector()), frames)
    tracked = run_stage(TrackStage(TrackConfig(), SmoothConfig(), SelectConfig()), detected)
    assert [it.scene_cut for it in tracked] == [False] * 4 + [True] + [False] * 3
    assert tracked[3].faces[0].track != tracked[4].faces[0].track
    assert tracked[4].faces[0].track == tracked[7].faces[0].track


def test_track_stage_starts_afresh_when_a_live_source_reconnects() -> None:
    """Frames of a new connection (epoch 1) look the same, but the tracker, the smoothing and
    the degradation codes (through scene_cut) must not carry over what the old one saw."""
    frames = items(8)
    frames[4:] = [dataclasses.replace(it, frame=dataclasses.replace(it.frame, epoch=1)) for it in frames[4:]]
    detected = run_stage(DetectStage(DetectConfig(), detector=MovingFaceDetector()), frames)
    stage = TrackStage(TrackConfig(), SmoothConfig(), SelectConfig())
    tracked = run_stage(stage, detected)
    assert [it.scene_cut for it in tracked] == [False] * 4 + [True] + [False] * 3
    assert tracked[3].faces[0].track != tracked[4].faces[0].track
    assert tracked[4].faces[0].track == tracked[7].faces[0].track
    assert stage.stats()["reconnects_at"] == [4] and stage.stats()["scene_cuts"] == []


def test_annotate_draws_only_around_faces() -> None:
    detected = run_stage(DetectStage(DetectConfig(), detector=MovingFaceDetector()), items(2))
    tracked = run_stage(TrackStage(TrackConfig(), SmoothConfig(), SelectConfig()), detected)
    (out,) = AnnotateStage().process(tracked[1])
    changed = np.any(out.frame.image != tracked[1].frame.image, axis=-1)
    assert changed.sum() > 200
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 95 and xs.max() <= 215 and ys.max() <= 215
    assert tracked[1].frame.image[150, 105, 0] == 60  # the input frame is not drawn on


@pytest.mark.parametrize(
    ("photo", "faces"),
    [("group3_with_child.jpg", 3), ("single_portrait.jpg", 1)],  # the portrait's crop is at the frame's scale
)
def test_align_and_blend_round_trip_on_a_real_photo(testdata: Path, detector: object, photo: str, faces: int) -> None:
    image = read_rgb(testdata / "photos" / photo)
    item = FrameItem(Frame(0, 0, Fraction(1, 25), image))
    (item,) = run_stage(DetectStage(DetectConfig(), detector=detector), [item])
    assert len(item.faces) == faces
    (aligned,) = AlignStage(512).process(item)
    assert len(aligned.jobs) == faces and aligned.jobs[0].crop.shape == (512, 512, 3)
    restored = aligned.__class__(
        aligned.frame,
        aligned.faces,
        tuple(j.__class__(j.frame_index, j.face, j.affine, j.crop, j.crop) for j in aligned.jobs),
    )
    (blended,) = BlendStage(BlendConfig()).process(restored)
    out = blended.frame.image
    h, w = image.shape[:2]
    inside = np.zeros((h, w), bool)
    for f in item.faces:
        x0, y0, x1, y1 = paste_region(f, (w, h))
        inside[y0:y1, x0:x1] = True
        b = [int(round(float(v))) for v in f.box]
        assert psnr(out[b[1] : b[3], b[0] : b[2]], image[b[1] : b[3], b[0] : b[2]]) >= 40
    assert np.array_equal(out[~inside], image[~inside])
    # Unrestored jobs: the frame passes through untouched (the same array).
    (same,) = BlendStage(BlendConfig()).process(aligned)
    assert same.frame.image is image


@pytest.mark.parametrize("scale", [2])
def test_blend_stage_upscales_the_frame(scale: int) -> None:
    (item,) = items(1)
    (out,) = BlendStage(BlendConfig(), scale=scale).process(item)
    assert out.frame.image.shape == (360 * scale, 640 * scale, 3)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_video_is_detected_upright_and_its_faces_come_back_in_stored_pixels(
    testdata: Path, detector: object, rotation: int
) -> None:
    photo = read_rgb(testdata / "photos" / "two_people.jpg")
    stored = np.ascontiguousarray(np.rot90(photo, -rotation // 90))  # shown turned back: the photo
    assert np.array_equal(upright(stored, rotation), photo)
    (ref,) = run_stage(DetectStage(DetectConfig(), detector=detector), [FrameItem(Frame(0, 0, Fraction(1, 25), photo))])
    item = FrameItem(Frame(0, 0, Fraction(1, 25), stored))
    (got,) = run_stage(DetectStage(DetectConfig(), detector=detector, rotation=rotation), [item])
    assert len(got.faces) == len(ref.faces) == 2
    h, w = stored.shape[:2]
    for face in got.faces:  # in the stored frame, and the box holds its landmarks
        x0, y0, x1, y1 = face.box
        assert -5 <= x0 < x1 <= w + 5 and -5 <= y0 < y1 <= h + 5
        assert np.all((face.landmarks >= [x0, y0]) & (face.landmarks <= [x1, y1]))
    # Aligned from the stored frame, each face is the upright face aligned from the photo.
    for a, b in zip(make_jobs(ref, 128), make_jobs(got, 128), strict=True):
        assert psnr(b.crop, a.crop) > 60  # the same pixels up to float rounding


def test_points_go_back_to_the_stored_frame() -> None:
    stored = np.zeros((30, 50), np.uint8)
    stored[7, 41] = 1  # the pixel at x 41, y 7 (pixel-centre coordinates)
    for rotation in (0, 90, 180, 270):
        shown = upright(stored, rotation)
        y, x = np.argwhere(shown)[0]
        back = points_to_stored(np.array([[x, y]]), rotation, (50, 30))
        np.testing.assert_allclose(back, [[41, 7]])
        np.testing.assert_allclose(points_to_upright(np.array([[41, 7]]), rotation, (50, 30)), [[x, y]])
    with pytest.raises(UsageError):
        DetectStage(DetectConfig(), detector=object(), rotation=45)


def test_annotate_on_a_rotated_video_draws_upright_around_the_face() -> None:
    detected = run_stage(DetectStage(DetectConfig(), detector=MovingFaceDetector()), items(1))
    (plain,) = AnnotateStage().process(detected[0])
    (face,) = detected[0].faces
    # The frame stored sideways (shown turned 90 degrees back), its face in the stored pixels.
    stored = np.ascontiguousarray(np.rot90(detected[0].frame.image, -1))
    x0, y0, x1, y1 = face.box
    corners = points_to_stored(np.array([[x0, y0], [x1, y1]]), 90, (360, 640))
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
    sideways = dataclasses.replace(face, box=box, landmarks=points_to_stored(face.landmarks, 90, (360, 640)))
    item = FrameItem(Frame(0, 0, Fraction(1, 30000), stored), faces=(sideways,))
    (rotated,) = AnnotateStage(rotation=90).process(item)
    assert rotated.frame.image.shape == stored.shape
    # Shown upright, it is the drawing made on the upright frame (labels read upright).
    assert np.array_equal(upright(rotated.frame.image, 90), plain.frame.image)
