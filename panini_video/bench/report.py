"""A bench's figures as JSON (``--json PATH``), written under the output rule (``panini_video.outputs``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from panini_video import outputs


def write_json(path: str, result: dict[str, Any], default: Callable[[Any], Any] = str) -> None:
    """Write ``result`` whole or not at all; the target was checked before the bench ran (cli.bench)."""
    outputs.write_text(path, json.dumps(result, indent=2, default=default) + "\n", option="--json")
