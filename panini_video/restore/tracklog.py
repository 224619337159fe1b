"""What each track looked like: frame range, face sizes, and its sharpest face before and after.

The provenance report shows, per track, where it ran, how big its faces were, and a before/after
thumbnail of the face where the input was sharpest (the variance of the Laplacian of its luma
in the detection box: the usual focus measure). The log is kept on the host from frames the
restorer has already downloaded, so it adds no device round trip; the thumbnails are cut only
when a sharper face turns up, so their cost is a few per track, not one per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from panini_video.records import Face, Frame
from panini_video.restore.planes import DevicePlanes, align_to_grid, region_rgb

THUMB_SIDE = 160  # longest side of a thumbnail, in pixels
_MARGIN = 0.15  # thumbnails reach this share of the box beyond it
SIZE_SAMPLES = 4096  # face sizes kept per track for its median (evenly spread over the track)


@dataclass
class _Track:
    first: int
    last: int
    faces: int = 0
    widths: list[float] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    stride: int = 1  # every stride-th face's size is kept
    sharpness: float = -1.0
    frame: int = -1
    before: np.ndarray | None = None
    after: np.ndarray | None = None


class TrackLog:
    """Per track: first and last frame, face count and sizes, the sharpest face's thumbnails."""

    def __init__(self, thumb_side: int = THUMB_SIDE) -> None:
        self.thumb_side = thumb_side
        self._tracks: dict[int, _Track] = {}

    def add(self, index: int, face: Face, before: Frame, after: Frame) -> None:
        """A restored ``face`` of frame ``index``: ``before`` is the input frame, ``after`` the output."""
        t = self._tracks.get(face.track)
        if t is None:
            t = self._tracks[face.track] = _Track(first=index, last=index)
        t.first, t.last = min(t.first, index), max(t.last, index)
        t.faces += 1
        if t.faces % t.stride == 0:  # sizes sampled: memory stays bounded on a long track
            t.widths.append(face.width)
            t.heights.append(face.height)
            if len(t.widths) >= SIZE_SAMPLES:  # keep every other sample, and sample half as often
                t.widths, t.heights, t.stride = t.widths[::2], t.heights[::2], 2 * t.stride
        box = _box(face, before.size, 0.0)
        if box is None:
            return
        sharp = _sharpness(_luma(before, box))
        if sharp > t.sharpness:
            wide = _box(face, before.size, _MARGIN)
            assert wide is not None
            t.sharpness, t.frame = sharp, index
            t.before = self._thumb(before, wide)
            t.after = self._thumb(after, wide) if after.size == before.size else None

    def tracks(self) -> list[dict[str, Any]]:
        """The tracks by first frame: plain values, and the thumbnails as RGB uint8 arrays."""
        out = []
        for track, t in sorted(self._tracks.items(), key=lambda kv: (kv[1].first, kv[0])):
            out.append(
                {
                    "track": track,
                    "first_frame": t.first,
                    "last_frame": t.last,
                    "faces": t.faces,
                    "median_size": [round(float(np.median(t.widths)), 1), round(float(np.median(t.heights)), 1)],
                    "best": None
                    if t.before is None
                    else {"frame": t.frame, "sharpness": round(t.sharpness, 2), "before": t.before, "after": t.after},
                }
            )
        return out

    def _thumb(self, frame: Frame, box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        img = frame.image
        if isinstance(img, np.ndarray):
            rgb = img[y0:y1, x0:x1]
        else:
            planes = DevicePlanes([torch.from_numpy(p) for p in img.planes], img.format, img.colour, *img.size)
            region = align_to_grid(box, img.format, img.size)
            full = region_rgb(planes, region).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            rgb = full[y0 - region[1] : y1 - region[1], x0 - region[0] : x1 - region[0]]
        h, w = rgb.shape[:2]
        k = self.thumb_side / max(h, w, 1)
        if k < 1:
            rgb = cv2.resize(
                np.ascontiguousarray(rgb), (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA
            )
        return np.ascontiguousarray(rgb)


def _box(face: Face, size: tuple[int, int], margin: float) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    w, h = size
    b = (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my))))
    return b if b[2] - b[0] >= 4 and b[3] - b[1] >= 4 else None


def _luma(frame: Frame, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    img = frame.image
    if isinstance(img, np.ndarray):
        return img[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
    y = img.planes[0][y0:y1, x0:x1].astype(np.float32)
    return y * (255.0 / float(2**img.format.bits - 1))


def _sharpness(luma: np.ndarray) -> float:
    """Variance of the Laplacian (8-bit scale): higher is sharper."""
    return float(cv2.Laplacian(luma, cv2.CV_32F).var())
