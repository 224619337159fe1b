"""Face selection: size floor, largest first, max count, only the largest."""

from __future__ import annotations

import numpy as np

from panini_video.config import SelectConfig
from panini_video.faces.select import select_faces
from panini_video.records import Face


def face(size: float, x: float = 0.0) -> Face:
    box = np.array([x, 0, x + size, size], np.float32)
    return Face(box=box, landmarks=np.zeros((5, 2), np.float32), score=0.9)


FACES = (face(40, 0), face(120, 100), face(80, 300), face(20, 500))


def sizes(faces: tuple[Face, ...]) -> list[float]:
    return [f.height for f in faces]


def test_default_keeps_all_largest_first() -> None:
    assert sizes(select_faces(FACES, SelectConfig())) == [120, 80, 40, 20]


def test_min_face_size() -> None:
    assert sizes(select_faces(FACES, SelectConfig(min_face_size=40))) == [120, 80, 40]


def test_max_faces_and_only_largest() -> None:
    assert sizes(select_faces(FACES, SelectConfig(max_faces=2))) == [120, 80]
    assert sizes(select_faces(FACES, SelectConfig(only_largest=True, max_faces=3))) == [120]
    assert select_faces(FACES, SelectConfig(min_face_size=200)) == ()
    assert select_faces((), SelectConfig(only_largest=True)) == ()
