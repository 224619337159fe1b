"""The detector protocol's records: Detection and its conversion to Face records."""

from __future__ import annotations

import numpy as np
import pytest

from panini_video.faces.detector import Detection, FaceDetector, detections_to_faces
from panini_video.records import Face


def make_detection(n: int) -> Detection:
    rng = np.random.default_rng(n)
    boxes = np.sort(rng.uniform(0, 100, (n, 2, 2)), axis=1).reshape(n, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    return Detection(
        boxes=boxes,
        landmarks=rng.uniform(0, 100, (n, 5, 2)).astype(np.float32),
        scores=np.sort(rng.uniform(0.8, 1, n))[::-1].astype(np.float32),
    )


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"boxes \(N, 4\)"):
        Detection(boxes=np.zeros((2, 4), np.float32), landmarks=np.zeros((1, 5, 2)), scores=np.zeros(2))
    with pytest.raises(ValueError):
        Detection(boxes=np.zeros((2, 5)), landmarks=np.zeros((2, 5, 2)), scores=np.zeros(2))


def test_empty() -> None:
    empty = Detection.empty()
    assert len(empty) == 0 and empty.to_faces() == ()
    assert empty.boxes.shape == (0, 4) and empty.landmarks.shape == (0, 5, 2)


def test_to_faces_keeps_every_value() -> None:
    det = make_detection(3)
    faces = det.to_faces()
    assert all(isinstance(f, Face) and f.track == -1 for f in faces)
    np.testing.assert_array_equal(np.stack([f.box for f in faces]), det.boxes)
    np.testing.assert_array_equal(np.stack([f.landmarks for f in faces]), det.landmarks)
    assert [f.score for f in faces] == pytest.approx(det.scores.tolist())


def test_detections_to_faces_is_per_frame() -> None:
    per_frame = detections_to_faces([make_detection(2), Detection.empty(), make_detection(1)])
    assert [len(f) for f in per_frame] == [2, 0, 1]


def test_protocol_is_structural() -> None:
    class Nothing:
        def detect(self, frames: list[np.ndarray]) -> list[Detection]:
            return [Detection.empty() for _ in frames]

    assert isinstance(Nothing(), FaceDetector)
    assert not isinstance(object(), FaceDetector)
