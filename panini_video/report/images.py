"""Thumbnails for the report: RGB arrays as PNG ``data:`` URIs, so one file carries its pictures."""

from __future__ import annotations

import base64

import cv2
import numpy as np

THUMB_SIDE = 160  # px: a face is recognisable, a report of 50 tracks stays a few MB


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 shrunk so its longer side is at most ``side`` (never enlarged)."""
    img = np.ascontiguousarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise ValueError(f"a thumbnail needs RGB uint8 (H, W, 3), got {img.dtype} {'x'.join(map(str, img.shape))}")
    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def png_data_uri(rgb: np.ndarray, side: int = THUMB_SIDE) -> str:
    """The thumbnail of ``rgb`` as ``data:image/png;base64,...``."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(thumbnail(rgb, side), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode the thumbnail as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """The RGB pixels of a PNG ``data:`` URI made by ``png_data_uri`` (tests and readers of the JSON)."""
    head, _, payload = uri.partition(",")
    if head != "data:image/png;base64":
        raise ValueError(f"not a PNG data URI: {uri[:40]!r}")
    data = np.frombuffer(base64.b64decode(payload), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the data URI does not hold a readable PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
