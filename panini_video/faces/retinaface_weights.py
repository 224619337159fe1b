"""Reading RetinaFace weight files: facexlib's and biubug6's ``.pth`` state_dicts, strictly checked.

Accepted: ``detection_mobilenet0.25_Final.pth`` / ``detection_Resnet50_Final.pth`` (facexlib's
names, plain keys) and the original ``mobilenet0.25_Final.pth`` / ``Resnet50_Final.pth``
(saved from ``nn.DataParallel``: every key starts with ``module.``). Files are read with
``torch.load(weights_only=True)``: no code in a pickle runs. The storages were saved on CUDA,
hence ``map_location``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from panini_video import cache
from panini_video.config import DetectConfig
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.faces.retinaface_net import Backbone, RetinaFaceNet
from panini_video.outputs import atomic_output

log = logging.getLogger(__name__)

FETCH_NAMES = {"mobilenet": "retinaface-mobilenet", "resnet50": "retinaface-resnet50"}
_MARKERS = {"mobilenet": "body.stage1.", "resnet50": "body.layer1."}  # keys that only one backbone has


def resolve_weights(config: DetectConfig) -> Path:
    """The weight file of ``config``: ``config.weights``, else the cache, else the file the package ships.

    Only the MobileNet weights ship with the package; ResNet-50 needs ``weights fetch``.
    """
    if config.weights is not None:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"detector weights not found: {path} (from --detector-weights)")
        return path
    path = cache.detector_path(config.detector)
    if path.is_file():
        return path
    shipped = cache.shipped_detector_path(config.detector)
    if shipped is not None:
        return shipped
    raise WeightsNotFoundError(
        f"RetinaFace {config.detector} weights not found at {path}; "
        f"run `panini-video weights fetch {FETCH_NAMES[config.detector]}` "
        "or pass --detector-weights PATH"
    )


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of a RetinaFace ``.pth`` file, on the CPU, ``module.`` prefix removed."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise WeightsNotFoundError(f"detector weights not found: {path}") from exc
    except OSError as exc:
        raise WeightsError(f"cannot read detector weights {path}: {exc}") from exc
    except Exception as exc:  # torch's unpickler fails on junk with many types (IndexError, UnpicklingError...)
        raise WeightsError(f"{path} is not a readable torch weight file: {exc!r}") from exc
    state = tensors_of(obj)
    if state is None:
        raise WeightsError(f"{path} does not hold a state_dict of tensors (got {type(obj).__name__})")
    return state


def tensors_of(content: Any) -> dict[str, torch.Tensor] | None:
    """The state_dict in unpickled ``content`` (``state_dict`` wrapper and ``module.`` prefix removed); None if none."""
    if isinstance(content, dict) and "state_dict" in content and isinstance(content["state_dict"], dict):
        content = content["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        return None
    if content and all(isinstance(k, str) and k.startswith("module.") for k in content):
        return {k.removeprefix("module."): v for k, v in content.items()}
    return dict(content)


def guess_backbone(state: dict[str, torch.Tensor]) -> Backbone | None:
    """Which backbone a state_dict belongs to, from its key names; None when neither fits."""
    for name, marker in _MARKERS.items():
        if any(k.startswith(marker) for k in state):
            return name  # type: ignore[return-value]
    return None


def check_state_dict(net: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a state_dict whose keys or shapes differ from ``net``'s, naming what differs."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if state[k].shape != expected[k].shape
    )
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, names in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if names:
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            parts.append(f"{label}: {shown}")
    raise CheckpointMismatchError(f"{source} does not fit RetinaFace-{net.backbone}: " + "; ".join(parts))


def load_net(path: Path | str, backbone: Backbone) -> RetinaFaceNet:
    """A RetinaFace network of ``backbone`` with the weights of ``path``, in eval mode, on the CPU."""
    state = read_state_dict(path)
    found = guess_backbone(state)
    if found is not None and found != backbone:
        raise CheckpointMismatchError(f"{path} holds RetinaFace-{found} weights, but the detector is {backbone}")
    net = RetinaFaceNet(backbone)
    check_state_dict(net, state, str(path))
    net.load_state_dict(state, strict=True)
    log.debug("loaded RetinaFace-%s weights from %s (%d tensors)", backbone, path, len(state))
    return net.eval()


def import_detector(
    path: Path | str, state: dict[str, torch.Tensor], backbone: Backbone, dest: Path | str | None = None
) -> Path:
    """Copy the RetinaFace file ``path`` (its ``state`` checked against ``backbone``) to where the detector looks.

    Args:
        dest: default ``cache.detector_path(backbone)``.
    """
    check_state_dict(RetinaFaceNet(backbone), state, str(path))
    out = _copy_file(Path(path), Path(dest) if dest is not None else cache.detector_path(backbone))
    log.info("imported RetinaFace-%s weights %s -> %s", backbone, path, out)
    return out


def _copy_file(source: Path, dest: Path) -> Path:
    """Copy through a temporary file in ``dest``'s folder, renamed into place once complete."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(dest, suffix=".tmp") as tmp:
            shutil.copyfile(source, tmp)
    except OSError as exc:
        raise WeightsError(f"cannot copy {source} to {dest}: {exc.strerror or exc}") from exc
    return dest
