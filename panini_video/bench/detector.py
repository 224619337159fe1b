"""Face detector speed: frames per second at a det_size and a batch size (used by ``bench faces``).

The whole ``detect`` call is timed (resize, upload, network, decoding, NMS, the copy back), since
that is what the detect stage pays per frame. Speed does not depend on the weights' values beyond
how many candidates pass the threshold, so a backbone without a weight file (ResNet-50 here) can
be timed with random weights: ``RetinaFace(RetinaFaceNet("resnet50"))``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from panini_video.faces.retinaface import RetinaFace, scaled_size


@dataclass(frozen=True)
class DetectorSpeed:
    """One measurement: how fast a detector went on given frames."""

    backbone: str
    device: str
    threads: int  # torch intra-op threads (CPU)
    det_size: int
    batch_size: int
    frame_size: tuple[int, int]  # (width, height) of the first input frame
    input_size: tuple[int, int]  # (width, height) the network saw for it
    frames: int  # frames timed (warm-up excluded)
    seconds: float
    fps: float

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(self.frames, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ms_per_frame": self.ms_per_frame}


def measure_detector_speed(
    detector: RetinaFace,
    frames: Sequence[np.ndarray],
    *,
    det_size: int | None = None,
    batch_size: int = 1,
    warmup: int = 1,
    min_batches: int = 3,
    min_seconds: float = 2.0,
) -> DetectorSpeed:
    """Frames per second of ``detector.detect`` on batches of ``batch_size`` frames.

    Frames are taken in turn (cycling) to fill the batches; ``warmup`` batches run untimed
    (first-call allocations, cuDNN autotuning), then at least ``min_batches`` batches and
    ``min_seconds`` seconds are timed.
    """
    if not frames:
        raise ValueError("measure_detector_speed needs at least one frame")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if det_size is not None:
        detector = detector.with_settings(det_size=det_size)
    source = itertools.cycle(frames)
    batches: Iterable[list[np.ndarray]] = ([next(source) for _ in range(batch_size)] for _ in itertools.count())
    batch_iter = iter(batches)
    for _ in range(warmup):
        detector.detect(next(batch_iter))
    timed = 0
    start = time.perf_counter()
    while True:
        detector.detect(next(batch_iter))  # returns host arrays: the device work is finished
        timed += 1
        elapsed = time.perf_counter() - start
        if timed >= min_batches and elapsed >= min_seconds:
            break
    h, w = frames[0].shape[:2]
    sh, sw = scaled_size(h, w, detector.settings.det_size)
    n = timed * batch_size
    return DetectorSpeed(
        backbone=detector.backbone,
        device=str(detector.device),
        threads=torch.get_num_threads(),
        det_size=detector.settings.det_size,
        batch_size=batch_size,
        frame_size=(w, h),
        input_size=(sw, sh),
        frames=n,
        seconds=elapsed,
        fps=n / elapsed,
    )


def measure_detector_speeds(
    detector: RetinaFace,
    frames: Sequence[np.ndarray],
    det_sizes: Sequence[int] = (640, 1280),
    batch_sizes: Sequence[int] = (1, 4),
    **options: Any,
) -> list[DetectorSpeed]:
    """``measure_detector_speed`` for every det_size x batch_size pair."""
    return [
        measure_detector_speed(detector, frames, det_size=d, batch_size=b, **options)
        for d in det_sizes
        for b in batch_sizes
    ]


def format_speeds(rows: Sequence[DetectorSpeed]) -> str:
    """A plain-text table of measurements."""
    header = f"{'backbone':<10} {'device':<7} {'det_size':>8} {'batch':>5} {'input':>10} {'fps':>8} {'ms/frame':>9}"
    lines = [header]
    for r in rows:
        size = f"{r.input_size[0]}x{r.input_size[1]}"
        lines.append(
            f"{r.backbone:<10} {r.device:<7} {r.det_size:>8} {r.batch_size:>5} {size:>10} "
            f"{r.fps:>8.2f} {r.ms_per_frame:>9.1f}"
        )
    return "\n".join(lines)
