"""Draw what the pipeline sees onto a frame: boxes, track ids, landmarks (``--annotate``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from panini_video.records import Face

# One colour per landmark (left eye, right eye, nose, left mouth, right mouth), RGB.
LANDMARK_COLORS = ((255, 64, 64), (64, 255, 64), (64, 128, 255), (255, 255, 0), (255, 0, 255))


def track_color(track: int) -> tuple[int, int, int]:
    """A stable, bright RGB colour for a track id (golden-ratio hue steps keep neighbours apart)."""
    if track < 0:
        return (200, 200, 200)
    hue = int((track * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 200, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_faces(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with each face's box, id and score, and its five landmarks."""
    out = image.copy()
    h = out.shape[0]
    thick = max(1, round(h / 360))
    for face in faces:
        color = track_color(face.track)
        x0, y0, x1, y1 = (round(float(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick, cv2.LINE_AA)
        label = f"#{face.track} {face.score:.2f}" if face.track >= 0 else f"{face.score:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y0 - 3 if y0 - th - base - 3 >= 0 else y1 + th + 3
        cv2.rectangle(out, (x0, ty - th - base), (x0 + tw, ty + base), color, -1)
        cv2.putText(out, label, (x0, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
        radius = max(2, round(face.height / 60))
        for (x, y), c in zip(np.asarray(face.landmarks, np.float64), LANDMARK_COLORS, strict=True):
            cv2.circle(out, (round(x), round(y)), radius, c, -1, cv2.LINE_AA)
    return out
