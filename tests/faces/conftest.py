"""Fixtures of the face tests: the real RetinaFace (shared mobilenet weights) and real images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panini_video.config import DetectConfig


def weights_path(testdata: Path) -> Path:
    path = testdata / "weights" / "retinaface_mobilenet0.25_Final.pth"
    if not path.is_file():
        pytest.skip(f"detector weights not found at {path}")
    return path


@pytest.fixture(scope="session")
def detect_config(testdata: Path) -> DetectConfig:
    return DetectConfig(weights=str(weights_path(testdata)))


@pytest.fixture(scope="session")
def detector(detect_config: DetectConfig) -> Any:
    """The real RetinaFace mobilenet on the CPU (loaded once per session)."""
    from panini_video.faces.stages import load_face_detector

    return load_face_detector(detect_config, "cpu")
