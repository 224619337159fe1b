"""Helpers of the restore tests: real frames through the real detector and tracker, and a stage driver."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from panini_video.config import RunConfig
from panini_video.faces.stages import DetectStage, TrackStage
from panini_video.io import VideoReader
from panini_video.records import FrameItem
from panini_video.runtime.stage import Stage, drive


def detect_and_track(path: Path, frames: int) -> list[FrameItem]:
    """The first ``frames`` frames of ``path`` through the real RetinaFace and tracker."""
    config = RunConfig()
    weights = path.parents[1] / "weights" / "retinaface_mobilenet0.25_Final.pth"
    detect = DetectStage(dataclasses.replace(config.detect, weights=str(weights)))
    track = TrackStage(config.track, config.smooth, config.select)
    items: list[FrameItem] = []
    with VideoReader(path) as reader:
        for i, frame in enumerate(reader):
            if i >= frames:
                break
            for it in detect.process(FrameItem(frame)):
                items.extend(track.process(it))
    for it in detect.flush():
        items.extend(track.process(it))
    return items


def run_stage(stage: Stage, items: Iterable[FrameItem]) -> list[FrameItem]:
    """Every item through ``stage`` as the graph would drive it, flush included."""
    return drive(stage, items)
