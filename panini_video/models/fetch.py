"""Get weights into the cache: the official Panini-Net checkpoints (Google Drive), RetinaFace, tiny.

``fetch_model`` downloads an official mmcv checkpoint, imports it (generator only, keys checked)
into ``cache.model_path(variant)`` and deletes the download. ``fetch_detector`` downloads the
RetinaFace files that facexlib publishes, checked by size and sha256, to
``cache.detector_path(backbone)``. Both return at once when the file is already there, and a
failed fetch leaves no folder it created empty behind. ``ensure_model`` is what a run calls: the
cached file, else a download on first use, else an error that says every way to get it.
``init_model`` writes seeded random ``tiny`` weights (labelled random in the file).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from panini_video import cache
from panini_video.download import ProgressCallback, download, download_drive
from panini_video.errors import DownloadError, UsageError, WeightsNotFoundError

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


def manual_hint(variant: str) -> str:
    """How to get an official checkpoint without this tool's download."""
    return (
        f"Download it in a browser from https://drive.google.com/file/d/{MODELS[variant].drive_id}/view and run "
        f"'panini-video weights import FILE --variant {variant}'."
    )


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
    if not pth.is_file() or force:
        with _removing_new_empty_folders(pth.parent, dest.parent):
            download_drive(source.drive_id, pth, progress=progress, hint=manual_hint(variant))
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
    with _removing_new_empty_folders(dest.parent):
        return download(url, dest, size=spec.size, sha256=spec.sha256, progress=progress, hint=hint)


def fetch(name: str, *, force: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Fetch a model variant or a detector by its name (one of ``FETCHABLE``)."""
    if name in MODELS:
        return fetch_model(name, force=force, progress=progress)
    return fetch_detector(name, force=force, progress=progress)


@contextlib.contextmanager
def _removing_new_empty_folders(*folders: Path) -> Iterator[None]:
    """On failure, remove the folders (and their parents) that did not exist before and are empty."""
    created: list[Path] = []
    for folder in folders:
        for path in (folder, *folder.parents):
            if path.exists():
                break
            created.append(path)
    try:
        yield
    except BaseException:
        for path in sorted(set(created), key=lambda p: len(p.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):  # not empty (a resumable .part) or already gone
                path.rmdir()
        raise


# What a run calls ---------------------------------------------------------------------------------

ANNOTATE_HINT = "`panini-video IN OUT --annotate` draws the faces found and needs no Panini weights."


def how_to_get(variant: str) -> str:
    """Every way to get a variant's weights, as commands to type."""
    if variant in MODELS:
        return (
            f"Get them with `panini-video weights fetch {variant}`, or download the official checkpoint in a "
            f"browser (https://drive.google.com/file/d/{MODELS[variant].drive_id}/view) and convert it with "
            f"`panini-video weights import FILE`. {ANNOTATE_HINT}"
        )
    if variant == "tiny":
        return (
            "tiny has no trained weights: `panini-video weights init tiny` writes seeded random ones (a stand-in "
            "for tests and demos; it restores nothing). For real restoration use --model mfr "
            f"(`panini-video weights fetch mfr` or `panini-video weights import FILE`). {ANNOTATE_HINT}"
        )
    return f"Convert a checkpoint with `panini-video weights import FILE --output PATH`. {ANNOTATE_HINT}"


def ensure_model(
    name_or_path: str | os.PathLike[str], *, download: bool = True, progress: ProgressCallback | None = None
) -> Path:
    """The weight file of a variant name or path; an official variant missing from the cache is fetched.

    Args:
        download: fetch ``mfr``/``sr`` on first use; False fails at once without touching the network.
    Raises:
        WeightsNotFoundError: no file and no download (offline, refused, ``tiny``, a path): the
            message gives the commands that get the weights.
    """
    from panini_video.models.config import VARIANTS
    from panini_video.models.serialize import resolve_weights

    name = name_or_path if isinstance(name_or_path, str) and name_or_path in VARIANTS else None
    if name is None:
        return resolve_weights(name_or_path)[0]
    path = cache.model_path(name)
    if path.is_file():
        return path
    if name not in MODELS or not download:
        why = "downloads are off" if name in MODELS else "it cannot be downloaded"
        raise WeightsNotFoundError(f"no weights for Panini-Net {name!r} at {path} ({why}). {how_to_get(name)}")
    log.info("Panini-Net %s is not in the cache: downloading it (once) to %s", name, path)
    try:
        return fetch_model(name, progress=progress)
    except DownloadError as exc:
        reason = str(exc).replace(manual_hint(name), "").strip()
        raise WeightsNotFoundError(
            f"no weights for Panini-Net {name!r} at {path}, and the download failed: {reason} {how_to_get(name)}"
        ) from exc


def init_model(variant: str = "tiny", *, seed: int = 0, dest: str | os.PathLike[str] | None = None) -> Path:
    """Write seeded random weights of ``variant`` (only ``tiny``) labelled random in the file; returns its path."""
    import torch

    from panini_video.models.config import VARIANTS
    from panini_video.models.panini import PaniniNet
    from panini_video.models.serialize import save_model

    if variant not in RANDOM_VARIANTS:
        raise UsageError(f"random weights are for {', '.join(RANDOM_VARIANTS)} only, not {variant!r}")
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        model = PaniniNet(VARIANTS[variant]).eval()
    out = save_model(model, dest or cache.model_path(variant), random_seed=seed)
    log.info("wrote random Panini-Net %s weights (seed %d) to %s", variant, seed, out)
    return out


RANDOM_VARIANTS = ("tiny",)  # random mfr/sr files would take the place of the trained ones in the cache
