"""The records that flow through the stage graph.

Frozen, slotted dataclasses; big arrays travel by reference, never copied. ``__post_init__``
validates shapes and never rewrites fields; ``__repr__`` shows shapes, not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from panini_video.io.picture import Picture


def _shape(a: Any) -> str:
    return "x".join(str(s) for s in getattr(a, "shape", ())) or "?"


def _image_repr(img: Any) -> str:
    if isinstance(img, np.ndarray):
        return _shape(img)
    return f"{img.format.name} {img.width}x{img.height}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame with the input's timestamp.

    ``image`` is a ``Picture`` (the decoded planes in their own pixel format: what files give,
    see ``io.picture``) or RGB uint8 pixels (H, W, 3) (live sources, generated frames, and what
    ``--upscale`` and the annotate preview make). ``rgb()`` gives RGB either way.

    ``index`` counts decoded frames from 0; ``pts`` is in ``time_base`` units (None when the
    container gave none). A live source also sets ``arrival`` (``time.monotonic()`` when the
    frame was decoded: latency is measured from it) and ``epoch`` (0, then one more after each
    reconnection: trackers and the degradation cache start afresh when it changes).
    """

    index: int
    pts: int | None
    time_base: Fraction | None
    image: np.ndarray | Picture = field(repr=False)
    arrival: float | None = None
    epoch: int = 0

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray):
            if not hasattr(img, "planes"):
                raise ValueError(f"Frame.image must be a Picture or uint8 (H, W, 3), got {type(img).__name__}")
            return
        if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8):
            raise ValueError(
                f"Frame.image must be uint8 (H, W, 3), got {getattr(img, 'dtype', type(img))} {_shape(img)}"
            )

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when known."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        img = self.image
        if isinstance(img, np.ndarray):
            return int(img.shape[1]), int(img.shape[0])
        return img.size

    @property
    def is_rgb(self) -> bool:
        """Whether ``image`` is an RGB array (not a ``Picture``)."""
        return isinstance(self.image, np.ndarray)

    def rgb(self) -> np.ndarray:
        """The frame as RGB uint8 (H, W, 3): ``image`` itself, or the picture converted whole."""
        img = self.image
        return img if isinstance(img, np.ndarray) else img.rgb()

    @property
    def nbytes(self) -> int:
        """Bytes of pixel data this frame holds."""
        img = self.image
        return int(img.nbytes)

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, pts={self.pts}, time_base={self.time_base}, image={_image_repr(self.image)})"


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One compressed audio packet of a live source, detached from its container.

    ``pts`` is in ``time_base`` units on the same clock as the video frames' pts (a live source
    rebases both alike across reconnections); ``data`` is the packet's payload, copied.
    """

    pts: int
    time_base: Fraction
    data: bytes = field(repr=False)
    duration: int | None = None

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass(frozen=True, slots=True)
class Face:
    """A face in one frame, in that frame's pixel coordinates.

    box: float32 (4,) as x0, y0, x1, y1; landmarks: float32 (5, 2) as left eye, right eye, nose,
    left mouth corner, right mouth corner (left/right as seen in the image); track: the tracker's
    id, -1 before tracking.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    track: int = -1

    def __post_init__(self) -> None:
        if np.shape(self.box) != (4,):
            raise ValueError(f"Face.box must be (4,), got {_shape(self.box)}")
        if np.shape(self.landmarks) != (5, 2):
            raise ValueError(f"Face.landmarks must be (5, 2), got {_shape(self.landmarks)}")

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    def __repr__(self) -> str:
        b = ", ".join(f"{v:.1f}" for v in np.asarray(self.box).tolist())
        return f"Face(track={self.track}, box=[{b}], score={self.score:.3f})"


@dataclass(frozen=True, slots=True)
class FaceJob:
    """One face to restore: the aligned crop and the affine that made it.

    affine: float (2, 3) mapping frame pixels to crop pixels; crop: the aligned face, uint8
    (S, S, 3) numpy or a (3, S, S) tensor on the device; restored: the restorer's output crop
    (any size; same kinds), None until restored; failed: restoration failed and the original
    pixels stay.
    """

    frame_index: int
    face: Face
    affine: np.ndarray
    crop: Any = field(repr=False)
    restored: Any = field(default=None, repr=False)
    failed: bool = False

    def __post_init__(self) -> None:
        if np.shape(self.affine) != (2, 3):
            raise ValueError(f"FaceJob.affine must be (2, 3), got {_shape(self.affine)}")


@dataclass(frozen=True, slots=True)
class FrameItem:
    """What travels between stages: a frame with what the stages so far found for it."""

    frame: Frame
    faces: tuple[Face, ...] = ()
    jobs: tuple[FaceJob, ...] = ()
    scene_cut: bool = False

    @property
    def index(self) -> int:
        return self.frame.index
