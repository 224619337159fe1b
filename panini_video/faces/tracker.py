"""Per-stream face tracker: Kalman prediction of each box, IoU association, stable ids.

SORT semantics (Bewley et al., "Simple Online and Realtime Tracking", 2016): each track's box
centre and size follow a constant-velocity Kalman filter; detections are matched to predicted
boxes by IoU; a track survives ``max_misses`` frames without a match. From ByteTrack (Zhang et
al., 2022) the two-stage association: confident detections are matched first, weaker ones only
to the tracks left over, so a blurred, low-score face keeps its track instead of taking another's.
The assignment is greedy by IoU (best pair first), which for the few faces of a video frame gives
the Hungarian result in all but contrived cases and needs no scipy.

Between detections (``--detect-every N``) ``carry`` moves every live track by its prediction;
the landmarks ride along, kept relative to the box.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Sequence

import numpy as np

from panini_video.config import TrackConfig
from panini_video.records import Face

log = logging.getLogger(__name__)

HIGH_SCORE = 0.9  # detections at or above this are matched first (ByteTrack's high set)

# Kalman noise as shares of the box height (the scheme of SORT/ByteTrack's "std_weight"): a big
# face moves more pixels per frame than a small one.
_STD_POS = 1.0 / 20.0
_STD_VEL = 1.0 / 160.0
_STD_MEAS = 1.0 / 20.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), x0 y0 x1 y1."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_assign(score: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best score first, each row and column once, scores >= ``minimum``."""
    pairs: list[tuple[int, int]] = []
    if score.size == 0:
        return pairs
    order = np.argsort(-score, axis=None, kind="stable")
    rows_used: set[int] = set()
    cols_used: set[int] = set()
    for flat in order:
        r, c = divmod(int(flat), score.shape[1])
        if score[r, c] < minimum:
            break
        if r in rows_used or c in cols_used:
            continue
        pairs.append((r, c))
        rows_used.add(r)
        cols_used.add(c)
    return pairs


class BoxKalman:
    """Constant-velocity Kalman filter on (cx, cy, w, h); one step per frame."""

    _F = np.eye(8) + np.eye(8, k=4)
    _H = np.eye(4, 8)

    def __init__(self, box: np.ndarray) -> None:
        z = _box_to_z(box)
        self.x = np.concatenate([z, np.zeros(4)])
        h = max(z[3], 1.0)
        std = np.array([2 * _STD_POS * h] * 4 + [10 * _STD_VEL * h] * 4)
        self.P = np.diag(std**2)

    def predict(self) -> None:
        h = max(self.x[3], 1.0)
        q = np.diag(np.array([_STD_POS * h] * 4 + [_STD_VEL * h] * 4) ** 2)
        self.x = self._F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = self._F @ self.P @ self._F.T + q

    def update(self, box: np.ndarray) -> None:
        z = _box_to_z(box)
        r = np.diag(np.full(4, (_STD_MEAS * max(z[3], 1.0)) ** 2))
        s = self._H @ self.P @ self._H.T + r
        k = self.P @ self._H.T @ np.linalg.inv(s)
        self.x = self.x + k @ (z - self._H @ self.x)
        self.P = (np.eye(8) - k @ self._H) @ self.P

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _box_to_z(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1.0), max(y1 - y0, 1.0)])


@dataclasses.dataclass
class _Track:
    id: int
    kalman: BoxKalman
    landmarks_rel: np.ndarray  # (5, 2) landmarks in box-relative units (0..1 across the box)
    score: float
    hits: int = 1
    misses: int = 0

    def face(self) -> Face:
        box = self.kalman.box
        wh = box[2:] - box[:2]
        landmarks = box[:2] + self.landmarks_rel * wh
        return Face(box=box.astype(np.float32), landmarks=landmarks.astype(np.float32), score=self.score, track=self.id)


def _relative(face: Face) -> np.ndarray:
    box = np.asarray(face.box, np.float64)
    wh = np.maximum(box[2:] - box[:2], 1.0)
    return (np.asarray(face.landmarks, np.float64) - box[:2]) / wh


class FaceTracker:
    """Gives every face a track id that stays with the person from frame to frame.

    iou_threshold: least IoU between a prediction and a detection to match them (lower keeps
    fast faces, risks swapping close ones); max_misses: frames a track survives undetected;
    min_hits: detections before a track's faces are reported.
    """

    def __init__(self, config: TrackConfig, high_score: float = HIGH_SCORE) -> None:
        self.config = config
        self.high_score = high_score
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)  # ids are never reused, not even after reset

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    def reset(self) -> None:
        """Drop every track (scene cut): the next faces get new ids."""
        self._tracks.clear()

    def update(self, detections: Sequence[Face]) -> tuple[Face, ...]:
        """Match one frame's detections to the tracks; returns them with track ids.

        The returned faces keep the detector's box and landmarks (smoothing comes after); faces of
        tracks with fewer than ``min_hits`` detections are left out. Unmatched tracks age by a miss.
        """
        for t in self._tracks:
            t.kalman.predict()
        dets = list(detections)
        high = [i for i, d in enumerate(dets) if d.score >= self.high_score]
        low = [i for i, d in enumerate(dets) if d.score < self.high_score]
        free_tracks = list(range(len(self._tracks)))
        matched: dict[int, int] = {}  # detection index -> track index
        for group in (high, low):
            pairs = self._associate(group, free_tracks, dets)
            for di, ti in pairs:
                matched[di] = ti
            taken = {ti for _, ti in pairs}
            free_tracks = [t for t in free_tracks if t not in taken]

        out: list[Face] = []
        for di, det in enumerate(dets):
            if di in matched:
                track = self._tracks[matched[di]]
                track.kalman.update(det.box)
                track.landmarks_rel = _relative(det)
                track.score = det.score
                track.hits += 1
                track.misses = 0
            else:
                track = _Track(next(self._ids), BoxKalman(det.box), _relative(det), det.score)
                self._tracks.append(track)
                log.debug("new track %d at %s", track.id, np.round(det.box, 1).tolist())
            if track.hits >= self.config.min_hits:
                out.append(dataclasses.replace(det, track=track.id))
        for ti in free_tracks:
            self._tracks[ti].misses += 1
        self._tracks = [t for t in self._tracks if t.misses <= self.config.max_misses]
        return tuple(out)

    def carry(self) -> tuple[Face, ...]:
        """A frame without detection: every live track moved by its prediction (no miss counted)."""
        out = []
        for t in self._tracks:
            t.kalman.predict()
            if t.hits >= self.config.min_hits and t.misses == 0:
                out.append(t.face())
        return tuple(out)

    def _associate(self, det_idx: list[int], track_idx: list[int], dets: list[Face]) -> list[tuple[int, int]]:
        if not det_idx or not track_idx:
            return []
        det_boxes = np.stack([np.asarray(dets[i].box) for i in det_idx])
        track_boxes = np.stack([self._tracks[i].kalman.box for i in track_idx])
        iou = iou_matrix(det_boxes, track_boxes)
        return [(det_idx[r], track_idx[c]) for r, c in greedy_assign(iou, self.config.iou_threshold)]
