"""Real frames with tracked faces for the device tests, and the relative error the tolerances use."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import torch

from panini_video.faces.align import alignment_matrix
from panini_video.records import FrameItem
from tests.restore.helpers import detect_and_track

ONE_FACE = "videos/lowq_real_388x512_noaudio.mp4"  # one real face, about 250 px tall
CROWD = "videos/crowd_multiface_1080p.mp4"  # 1920x1080, 4 to 7 faces a frame

# The precision tolerances of issue 14: fp32 against the CPU's fp32 by relative error; bf16 by
# the absolute error of outputs in [-1, 1] (0.1 is about 13 grey levels, 0.01 about 1.3).
FP32_REL = 1e-4
BF16_MAX = 0.1
BF16_MEAN = 0.01


@functools.cache
def tracked(testdata: Path, clip: str, frames: int) -> tuple[FrameItem, ...]:
    """The first ``frames`` frames of ``clip`` through the real detector and tracker (once per session)."""
    return tuple(detect_and_track(testdata / clip, frames))


def affines(item: FrameItem, size: int) -> list[np.ndarray]:
    return [alignment_matrix(f.landmarks, size) for f in item.faces]


def renumbered(items: tuple[FrameItem, ...] | list[FrameItem], total: int) -> list[FrameItem]:
    """``items`` repeated to ``total`` frames, indices and pts counting on (a long run of real frames)."""
    out = []
    for i in range(total):
        src = items[i % len(items)]
        frame = dataclasses.replace(src.frame, index=i, pts=i)
        out.append(dataclasses.replace(src, frame=frame, scene_cut=False))
    return out


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref||, in float64 on the CPU."""
    a, b = out.detach().double().cpu(), ref.detach().double().cpu()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))
