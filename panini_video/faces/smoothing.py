"""Causal smoothing of each track's landmarks and box with a One-Euro filter.

The One-Euro filter (Casiez, Roussel, Vogel, "1 Euro Filter", CHI 2012) is a first-order low-pass
whose cutoff rises with the signal's speed: a still face is smoothed hard (detector jitter goes),
a moving face follows with little lag. It needs only the past, so live streams use the same code.
Here the five landmarks and two box corners of a face share one cutoff (driven by their mean
speed, measured in face sizes per second), so the face's shape is never distorted by points
filtered differently, and the same setting suits small and large faces.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from panini_video.config import SmoothConfig
from panini_video.records import Face

# At strength 1: cutoff of a still face (Hz), how fast the cutoff opens with speed (Hz per face
# size per second), cutoff of the speed estimate (Hz). Chosen on the shared talking-head clips:
# frame-to-frame landmark acceleration drops by about half with no visible lag on head turns.
MIN_CUTOFF = 1.0
BETA = 4.0
D_CUTOFF = 1.0
DEFAULT_DT = 1.0 / 30.0  # used when two updates share a timestamp or time goes backwards
FORGET_AFTER_S = 2.0  # a track unseen this long starts afresh when it comes back


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclasses.dataclass
class _State:
    x: np.ndarray  # (7, 2): five landmarks, box top-left, box bottom-right
    dx: np.ndarray  # (7, 2) filtered speed, pixels per second
    t: float


class OneEuroFilter:
    """One-Euro filter over a (7, 2) point set with a single, speed-driven cutoff."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = D_CUTOFF) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._state: _State | None = None

    @property
    def last_time(self) -> float | None:
        return None if self._state is None else self._state.t

    def reset(self) -> None:
        self._state = None

    def __call__(self, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        """Filtered ``points`` at time ``t`` (seconds); ``scale`` (pixels) normalises the speed."""
        x = np.asarray(points, dtype=np.float64)
        s = self._state
        if s is None:
            self._state = _State(x.copy(), np.zeros_like(x), t)
            return x
        dt = t - s.t if t > s.t else DEFAULT_DT
        dx = (x - s.x) / dt
        dx_hat = s.dx + _alpha(self.d_cutoff, dt) * (dx - s.dx)
        speed = float(np.linalg.norm(dx_hat, axis=1).mean()) / max(scale, 1.0)
        a = _alpha(self.min_cutoff + self.beta * speed, dt)
        x_hat = s.x + a * (x - s.x)
        self._state = _State(x_hat, dx_hat, t)
        return x_hat


class LandmarkSmoother:
    """One One-Euro filter per track; faces of track -1 and strength 0 pass through untouched.

    ``strength`` divides the filter's cutoffs: 2 smooths twice as hard (and lags more), 0.5 half.
    """

    def __init__(self, config: SmoothConfig) -> None:
        if config.strength < 0:
            raise ValueError(f"smoothing strength must be >= 0, got {config.strength}")
        self.strength = float(config.strength)
        self._filters: dict[int, OneEuroFilter] = {}

    def reset(self) -> None:
        """Forget every track (scene cut, new stream)."""
        self._filters.clear()

    def drop(self, track: int) -> None:
        """Forget one track."""
        self._filters.pop(track, None)

    def smooth(self, faces: Sequence[Face], t: float) -> tuple[Face, ...]:
        """The faces of one frame at time ``t`` (seconds) with smoothed landmarks and boxes."""
        if self.strength == 0.0:
            return tuple(faces)
        out = []
        for face in faces:
            if face.track < 0:
                out.append(face)
                continue
            filt = self._filters.get(face.track)
            if filt is None:
                filt = self._filters[face.track] = OneEuroFilter(MIN_CUTOFF / self.strength, BETA / self.strength)
            points = np.vstack([np.asarray(face.landmarks, np.float64), np.asarray(face.box, np.float64).reshape(2, 2)])
            scale = math.sqrt(max(face.width, 1.0) * max(face.height, 1.0))
            smoothed = filt(points, t, scale)
            out.append(
                dataclasses.replace(
                    face,
                    landmarks=smoothed[:5].astype(np.float32),
                    box=smoothed[5:].reshape(4).astype(np.float32),
                )
            )
        self._forget_stale(t)
        return tuple(out)

    def _forget_stale(self, t: float) -> None:
        stale = [k for k, f in self._filters.items() if f.last_time is not None and t - f.last_time > FORGET_AFTER_S]
        for k in stale:
            del self._filters[k]
