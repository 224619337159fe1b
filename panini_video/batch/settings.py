"""The settings of a batch that change its outputs, and their hash (part of each file's identity).

A done file stays done only while its input and these settings are unchanged; change the crf, the
model or the detector and the next run redoes every file. Left out: what only changes how fast or
where a file is made, never its bytes (queue sizes, decode threads, the device's name, downloads,
the live section). The weights are named by their label (trained, or random with the seed) and
the version of panini-video is part of it: new code may make other bytes.

Deterministic output is part of the batch's contract (a resumed or Ray run gives the bytes of an
uninterrupted local one), so ``batch_config`` also fixes what would otherwise depend on timing:
the restorer's partial batches wait for a full batch or the end of the window instead of a clock
(``max_wait_ms``), so which faces share a batch depends only on the frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from panini_video.config import RunConfig

# ms a partial batch of faces may wait: the longest the config allows, so timing never decides a batch
DETERMINISTIC_WAIT_MS = 60000.0
# (section, key) pairs that change speed or placement, not the output's bytes
NOT_OUTPUT = {
    ("io", "decode_threads"),
    ("runtime", "queue_size"),
    ("runtime", "backpressure"),
    ("restore", "device"),
    ("restore", "download"),
    ("detect", "device"),
}


def batch_config(config: RunConfig) -> RunConfig:
    """``config`` with the timing-dependent choices fixed (see the module doc)."""
    restore = dataclasses.replace(config.restore, max_wait_ms=DETERMINISTIC_WAIT_MS)
    return dataclasses.replace(config, restore=restore)


def output_settings(config: RunConfig, weights: str, version: str) -> dict[str, Any]:
    """The settings that change the output, as plain data."""
    data = config.to_dict()
    data.pop("live", None)
    for section, key in NOT_OUTPUT:
        data.get(section, {}).pop(key, None)
    data["weights"] = weights
    data["version"] = version
    return data


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of ``output_settings`` (sorted JSON, sha256, 16 hex digits)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def weights_label(config: RunConfig) -> str:
    """What the restorer's weights are (their file's label), or ``annotate`` when none are used."""
    if config.annotate:
        return "annotate"
    try:
        from panini_video.models.serialize import weights_label_of

        return str(weights_label_of(config.restore.model))
    except Exception:  # not cached yet (a first run downloads them): the model's name stands for them
        return config.restore.model
