"""One-Euro smoothing: less jitter on a noisy track, exact pass-through at strength 0, resets."""

from __future__ import annotations

import numpy as np

from panini_video.config import SmoothConfig
from panini_video.faces.smoothing import LandmarkSmoother, OneEuroFilter
from panini_video.records import Face

REL = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


def noisy_track(n: int = 120, speed: float = 0.0, noise: float = 2.0, seed: int = 0) -> tuple[list[Face], np.ndarray]:
    """A 200 px face at 30 fps moving ``speed`` px/frame, landmarks with detector-like noise."""
    rng = np.random.default_rng(seed)
    faces, truth = [], []
    for i in range(n):
        x0 = 100 + speed * i
        box = np.array([x0, 100, x0 + 200, 300])
        true = box[:2] + REL * 200
        truth.append(true)
        faces.append(
            Face(
                box=(box + rng.normal(0, noise, 4)).astype(np.float32),
                landmarks=(true + rng.normal(0, noise, (5, 2))).astype(np.float32),
                score=0.99,
                track=7,
            )
        )
    return faces, np.stack(truth)


def run(smoother: LandmarkSmoother, faces: list[Face]) -> np.ndarray:
    return np.stack([smoother.smooth([f], i / 30.0)[0].landmarks for i, f in enumerate(faces)])


def jitter(points: np.ndarray) -> float:
    """Mean frame-to-frame acceleration (pixels)."""
    return float(np.linalg.norm(np.diff(points, n=2, axis=0), axis=-1).mean())


def test_strength_zero_is_exact_pass_through() -> None:
    faces, _ = noisy_track(30)
    smoother = LandmarkSmoother(SmoothConfig(strength=0.0))
    for i, f in enumerate(faces):
        (out,) = smoother.smooth([f], i / 30.0)
        assert out is f


def test_jitter_of_a_still_face_drops() -> None:
    faces, truth = noisy_track(speed=0.0)
    raw = np.stack([f.landmarks for f in faces])
    smoothed = run(LandmarkSmoother(SmoothConfig()), faces)
    assert jitter(smoothed) < 0.3 * jitter(raw)
    assert np.abs(smoothed[30:] - truth[30:]).mean() < np.abs(raw[30:] - truth[30:]).mean()


def test_moving_face_follows_with_little_lag() -> None:
    faces, truth = noisy_track(speed=6.0)  # 180 px/s, a brisk head movement
    raw = np.stack([f.landmarks for f in faces])
    smoothed = run(LandmarkSmoother(SmoothConfig()), faces)
    assert jitter(smoothed) < 0.6 * jitter(raw)
    lag = float((truth[30:, :, 0] - smoothed[30:, :, 0]).mean())
    assert 0 <= lag < 6.0  # behind the truth, by less than a frame's motion


def test_stronger_smooths_more() -> None:
    faces, _ = noisy_track(speed=0.0)
    weak = jitter(run(LandmarkSmoother(SmoothConfig(strength=0.5)), faces))
    strong = jitter(run(LandmarkSmoother(SmoothConfig(strength=3.0)), faces))
    assert strong < weak


def test_box_is_smoothed_with_the_landmarks() -> None:
    faces, _ = noisy_track(speed=0.0)
    smoother = LandmarkSmoother(SmoothConfig())
    boxes = np.stack([smoother.smooth([f], i / 30.0)[0].box for i, f in enumerate(faces)])
    raw = np.stack([f.box for f in faces])
    assert boxes.dtype == np.float32
    assert jitter(boxes.reshape(-1, 2, 2)) < 0.3 * jitter(raw.reshape(-1, 2, 2))


def test_reset_and_new_tracks_start_from_the_raw_value() -> None:
    faces, _ = noisy_track(10)
    smoother = LandmarkSmoother(SmoothConfig())
    run(smoother, faces)
    smoother.reset()
    (first,) = smoother.smooth([faces[3]], 1.0)
    np.testing.assert_array_equal(first.landmarks, faces[3].landmarks)
    other = Face(box=faces[4].box, landmarks=faces[4].landmarks, score=0.9, track=8)
    (new,) = smoother.smooth([other], 1.1)
    np.testing.assert_array_equal(new.landmarks, other.landmarks)
    untracked = Face(box=faces[4].box, landmarks=faces[4].landmarks, score=0.9)
    assert smoother.smooth([untracked], 1.2)[0] is untracked


def test_one_euro_same_timestamp_does_not_divide_by_zero() -> None:
    filt = OneEuroFilter(1.0, 4.0)
    pts = np.zeros((7, 2))
    filt(pts, 0.0, 100.0)
    out = filt(pts + 1, 0.0, 100.0)
    assert np.all(np.isfinite(out)) and np.all((out > 0) & (out < 1))
