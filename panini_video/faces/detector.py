"""The face detector protocol: frames in, one ``Detection`` per frame out.

Any detector (our RetinaFace, a test double) takes a batch of RGB uint8 frames and returns, for
each, boxes, five landmarks and scores in that frame's own pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from panini_video.records import Face

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image


@dataclass(frozen=True, slots=True)
class Detection:
    """The faces found in one frame, by decreasing score.

    boxes: float32 (N, 4) x0, y0, x1, y1 in the original frame's pixels (not clipped to it);
    landmarks: float32 (N, 5, 2) in ``LANDMARK_NAMES`` order; scores: float32 (N,).
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.scores)
        if np.shape(self.scores) != (n,) or np.shape(self.boxes) != (n, 4) or np.shape(self.landmarks) != (n, 5, 2):
            raise ValueError(
                "Detection needs boxes (N, 4), landmarks (N, 5, 2), scores (N,); got "
                f"{np.shape(self.boxes)}, {np.shape(self.landmarks)}, {np.shape(self.scores)}"
            )

    @classmethod
    def empty(cls) -> Detection:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
            scores=np.zeros((0,), np.float32),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        return f"Detection(faces={len(self)}, scores={[round(float(s), 3) for s in self.scores]})"

    def to_faces(self) -> tuple[Face, ...]:
        """The detections as ``Face`` records (track -1: not yet tracked)."""
        return tuple(
            Face(box=self.boxes[i], landmarks=self.landmarks[i], score=float(self.scores[i])) for i in range(len(self))
        )


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in a batch of frames."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detection]:
        """One ``Detection`` per RGB uint8 (H, W, 3) frame; frames may differ in size."""
        ...


def scaled_size(height: int, width: int, det_size: int) -> tuple[int, int]:
    """(height, width) a frame is detected at: longest side ``det_size``, never enlarged."""
    scale = min(1.0, det_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def detections_to_faces(detections: Sequence[Detection]) -> list[tuple[Face, ...]]:
    """Per frame, the ``Face`` records of its detections."""
    return [d.to_faces() for d in detections]
