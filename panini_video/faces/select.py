"""Which faces get restored: size floor, largest first, how many."""

from __future__ import annotations

from collections.abc import Sequence

from panini_video.config import SelectConfig
from panini_video.records import Face


def face_area(face: Face) -> float:
    """Box area in pixels (0 for a degenerate box)."""
    return max(face.width, 0.0) * max(face.height, 0.0)


def select_faces(faces: Sequence[Face], config: SelectConfig) -> tuple[Face, ...]:
    """The faces to restore, largest first.

    Faces whose box height is below ``min_face_size`` go; then ``only_largest`` keeps one and
    ``max_faces`` keeps that many. Ties keep the input order (sorting is stable).
    """
    kept = [f for f in faces if f.height >= config.min_face_size]
    kept.sort(key=face_area, reverse=True)
    limit = 1 if config.only_largest else config.max_faces
    if limit is not None:
        kept = kept[: max(int(limit), 0)]
    return tuple(kept)
