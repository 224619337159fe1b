"""Tracker: ids through misses, new ids after reset and long absences, crossing faces, carry-over."""

from __future__ import annotations

import numpy as np

from panini_video.config import TrackConfig
from panini_video.faces.tracker import FaceTracker, greedy_assign, iou_matrix
from panini_video.records import Face

# Landmarks of a face box, relative (left eye, right eye, nose, mouth corners).
REL = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


def face_at(cx: float, cy: float, size: float = 80.0, score: float = 0.99) -> Face:
    box = np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2], np.float32)
    landmarks = (box[:2] + REL * size).astype(np.float32)
    return Face(box=box, landmarks=landmarks, score=score)


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1, 50 / 150, 0], [1, 50 / 150, 0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_greedy_assign_takes_best_pairs_once() -> None:
    score = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(greedy_assign(score, 0.3)) == [(0, 0)]  # row 1 only fits column 0, taken
    assert sorted(greedy_assign(score, 0.05)) == [(0, 0), (1, 1)]
    assert greedy_assign(np.zeros((2, 0)), 0.3) == []


def test_id_survives_a_three_frame_miss() -> None:
    tracker = FaceTracker(TrackConfig(max_misses=3))
    ids = []
    for i in range(20):
        faces = [] if 8 <= i < 11 else [face_at(100 + 6 * i, 200)]  # moving right, missed 3 frames
        ids += [f.track for f in tracker.update(faces)]
    assert len(ids) == 17 and len(set(ids)) == 1


def test_new_id_after_more_misses_than_allowed() -> None:
    tracker = FaceTracker(TrackConfig(max_misses=3))
    first = tracker.update([face_at(100, 100)])[0].track
    for _ in range(4):
        tracker.update([])
    assert tracker.update([face_at(100, 100)])[0].track != first


def test_reset_gives_new_ids() -> None:
    tracker = FaceTracker(TrackConfig())
    a = tracker.update([face_at(100, 100), face_at(300, 100)])
    tracker.reset()
    b = tracker.update([face_at(100, 100), face_at(300, 100)])
    assert {f.track for f in a}.isdisjoint({f.track for f in b})
    assert len({f.track for f in b}) == 2


def test_two_crossing_faces_keep_their_ids() -> None:
    # Two faces crossing paths horizontally, one slightly lower; they overlap at the crossing.
    tracker = FaceTracker(TrackConfig())
    history: dict[int, list[float]] = {}
    for i in range(40):
        left = face_at(100 + 8 * i, 200)
        right = face_at(420 - 8 * i, 230)
        faces = [right, left] if i % 2 else [left, right]  # detector order must not matter
        for f in tracker.update(faces):
            history.setdefault(f.track, []).append(float(f.box[0]))
    assert len(history) == 2
    for xs in history.values():
        steps = np.diff(xs)
        assert np.all(steps > 0) or np.all(steps < 0)  # each id keeps moving one way: no swap


def test_low_score_detection_continues_a_track_but_high_ones_match_first() -> None:
    tracker = FaceTracker(TrackConfig())
    tid = tracker.update([face_at(100, 100)])[0].track
    # A blurred (low score) detection of the same face, and a confident one slightly farther off.
    out = tracker.update([face_at(102, 100, score=0.82), face_at(118, 100, score=0.99)])
    by_score = {round(f.score, 2): f.track for f in out}
    assert by_score[0.99] == tid and by_score[0.82] != tid
    tracker2 = FaceTracker(TrackConfig())
    tid2 = tracker2.update([face_at(100, 100)])[0].track
    assert tracker2.update([face_at(104, 100, score=0.82)])[0].track == tid2


def test_carry_moves_box_and_landmarks_by_the_prediction() -> None:
    tracker = FaceTracker(TrackConfig())
    for i in range(10):
        tracker.update([face_at(100 + 10 * i, 200)])
    carried = tracker.carry()
    assert len(carried) == 1
    face = carried[0]
    cx = float(face.box[0] + face.box[2]) / 2
    assert abs(cx - 200) < 3  # constant velocity: the next position
    rel = (face.landmarks - face.box[:2]) / (face.box[2:] - face.box[:2])
    np.testing.assert_allclose(rel, REL, atol=1e-3)
    assert tracker.carry()[0].track == face.track


def test_min_hits_holds_back_new_tracks() -> None:
    tracker = FaceTracker(TrackConfig(min_hits=2))
    assert tracker.update([face_at(100, 100)]) == ()
    assert len(tracker.update([face_at(101, 100)])) == 1
