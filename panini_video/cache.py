"""Where weights live: ``$PANINI_VIDEO_HOME``, else the platform's user cache directory.

One file also ships inside the package: the default detector's weights (RetinaFace
MobileNet-0.25, 1.7 MB), so a first run finds faces with an empty cache and no network.
"""

from __future__ import annotations

import os
from importlib import resources
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


SHIPPED_DETECTORS = ("mobilenet",)  # the 105 MB ResNet-50 file stays a download


def shipped_detector_path(detector: str) -> Path | None:
    """The RetinaFace weight file the package carries for ``detector``; None when it carries none."""
    if detector not in SHIPPED_DETECTORS:
        return None
    path = Path(str(resources.files("panini_video") / "weights" / DETECTOR_FILES[detector]))
    return path if path.is_file() else None
