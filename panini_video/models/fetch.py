"""Fetch weights into the cache: the official Panini-Net checkpoints (Google Drive) and RetinaFace.

``fetch_model`` downloads an official mmcv checkpoint, imports it (generator only, keys checked)
into ``cache.model_path(variant)`` and deletes the download. ``fetch_detector`` downloads the
RetinaFace files that facexlib publishes, checked by size and sha256, to
``cache.detector_path(backbone)``. Both return at once when the file is already there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from panini_video import cache
from panini_video.download import ProgressCallback, download, download_drive
from panini_video.errors import UsageError

log = logging.getLogger(__name__)

FACEXLIB_URL_ENV = "PANINI_VIDEO_FACEXLIB_URL"
FACEXLIB_URL = "https://github.com/xinntao/facexlib/releases/download/v0.1.0"


@dataclass(frozen=True, slots=True)
class DriveCheckpoint:
    """An official checkpoint on Google Drive (spec section 5.1, ids from the README of 2022-09-18)."""

    drive_id: str
    filename: str  # the name the official README gives the file locally


@dataclass(frozen=True, slots=True)
class DetectorFile:
    """A RetinaFace weight file from facexlib's v0.1.0 release."""

    backbone: str  # key of cache.DETECTOR_FILES
    size: int
    sha256: str


MODELS: dict[str, DriveCheckpoint] = {
    "mfr": DriveCheckpoint("1gGxbIi6oGScxvHjJvmlE4uGPKusq746F", "panini_mfr_latest.pth"),
    "sr": DriveCheckpoint("1o3IrG31-9tcDChL3-FTduBnrduPnKZQA", "panini_sr_latest.pth"),
}

# Sizes and digests: mobilenet from ../shared/testdata/MANIFEST.md (byte-identical copy); resnet50
# as listed by several public model manifests for facexlib's detection_Resnet50_Final.pth.
DETECTORS: dict[str, DetectorFile] = {
    "retinaface-mobilenet": DetectorFile(
        "mobilenet", 1789735, "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220"
    ),
    "retinaface-resnet50": DetectorFile(
        "resnet50", 109497761, "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d"
    ),
}

FETCHABLE = (*MODELS, *DETECTORS)


def facexlib_url() -> str:
    """Base URL of facexlib's release files (``$PANINI_VIDEO_FACEXLIB_URL`` overrides it)."""
    return os.environ.get(FACEXLIB_URL_ENV, FACEXLIB_URL).rstrip("/")


def fetch_model(
    variant: str, *, force: bool = False, keep_download: bool = False, progress: ProgressCallback | None = None
) -> Path:
    """Download the official ``mfr`` or ``sr`` checkpoint and import it; returns the cache file.

    Args:
        force: download and import again even if the cache file exists.
        keep_download: keep the official ``.pth`` under ``cache_dir()/downloads`` after import.
    """
    from panini_video.models.checkpoint import import_checkpoint

    if variant not in MODELS:
        raise UsageError(f"no official weights for {variant!r}; fetchable: {', '.join(MODELS)}")
    dest = cache.model_path(variant)
    if dest.is_file() and not force:
        log.info("Panini-Net %s already in the cache: %s", variant, dest)
        return dest
    source = MODELS[variant]
    pth = cache.cache_dir() / "downloads" / source.filename
    hint = (
        f"Download it in a browser from https://drive.google.com/file/d/{source.drive_id}/view and run "
        f"'panini-video weights import FILE --variant {variant}'."
    )
    if not pth.is_file() or force:
        download_drive(source.drive_id, pth, progress=progress, hint=hint)
    out = import_checkpoint(pth, variant)
    if not keep_download:
        pth.unlink(missing_ok=True)
    return out


def fetch_detector(name: str, *, force: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Download a RetinaFace weight file (``retinaface-mobilenet`` or ``retinaface-resnet50``)."""
    if name not in DETECTORS:
        raise UsageError(f"unknown detector {name!r}; fetchable: {', '.join(DETECTORS)}")
    spec = DETECTORS[name]
    dest = cache.detector_path(spec.backbone)
    if dest.is_file() and not force:
        log.info("%s already in the cache: %s", name, dest)
        return dest
    url = f"{facexlib_url()}/{cache.DETECTOR_FILES[spec.backbone]}"
    hint = f"Download {url} by other means and put it at {dest}."
    return download(url, dest, size=spec.size, sha256=spec.sha256, progress=progress, hint=hint)


def fetch(name: str, *, force: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Fetch a model variant or a detector by its name (one of ``FETCHABLE``)."""
    if name in MODELS:
        return fetch_model(name, force=force, progress=progress)
    return fetch_detector(name, force=force, progress=progress)
