"""Which weight files a run used, and their SHA-256: the restore model and the detector.

The paths are resolved by the same functions the stages load through (``models.fetch.ensure_model``,
``faces.retinaface_weights.resolve_weights``), after the run, with downloads off: the files are
there, since the run loaded them.
"""

from __future__ import annotations

import logging
from typing import Any

from panini_video.config import RunConfig
from panini_video.errors import PaniniError
from panini_video.report.identity import sha256_file

log = logging.getLogger(__name__)


def _entry(kind: str, name: str, resolve: Any) -> dict[str, Any]:
    try:
        path = resolve()
        return {"name": name, "path": str(path), "size": path.stat().st_size, "sha256": sha256_file(path)}
    except (PaniniError, OSError) as e:
        log.warning("the %s weights cannot be named in the report: %s", kind, e)
        return {"name": name, "path": None, "size": None, "sha256": None, "error": str(e)}


def weight_hashes(config: RunConfig) -> dict[str, Any]:
    """``{"restore": {...}, "detector": {...}}``: each file's name as configured, path, size and SHA-256.

    ``restore`` is None for an annotate run (no restoration model is loaded).
    """
    from panini_video.faces.retinaface_weights import resolve_weights
    from panini_video.models.fetch import ensure_model

    restore = None
    if not config.annotate:
        model = str(config.restore.model)
        restore = _entry("restore model", model, lambda: ensure_model(model, download=False))
    detector_name = f"retinaface-{config.detect.detector}"
    detector = _entry("detector", detector_name, lambda: resolve_weights(config.detect))
    return {"restore": restore, "detector": detector}
