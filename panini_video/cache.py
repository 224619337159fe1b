"""Where weights live: ``$PANINI_VIDEO_HOME``, else the platform's user cache directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The root of the cache (not created)."""
    env = os.environ.get("PANINI_VIDEO_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("panini-video"))


def model_path(variant: str) -> Path:
    """The slim generator file of a Panini-Net variant (``mfr``, ``sr``, ``tiny``...)."""
    return cache_dir() / "models" / f"panini_{variant}.safetensors"


DETECTOR_FILES = {
    "mobilenet": "detection_mobilenet0.25_Final.pth",
    "resnet50": "detection_Resnet50_Final.pth",
}


def detector_path(detector: str) -> Path:
    """The RetinaFace weight file of a backbone (``mobilenet`` or ``resnet50``), as facexlib names it."""
    return cache_dir() / "detectors" / DETECTOR_FILES[detector]
