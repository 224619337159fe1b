"""Panini-Net weight files: safetensors with the config in the metadata; strict loading.

File format ``panini-video.panini/1``: a safetensors file whose tensors are the generator's
``state_dict()`` (official key names, ``generator.`` prefix removed) and whose metadata holds
``{"format": "panini-video.panini/1", "config": PaniniConfig.to_json()}``; seeded random weights
(``weights init tiny``) also carry ``{"weights": "random", "seed": "N"}``, so whatever reports on
a file can say they restore nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from panini_video import cache
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.models.config import FORMAT, VARIANTS, PaniniConfig
from panini_video.models.panini import PaniniNet
from panini_video.outputs import atomic_output

log = logging.getLogger(__name__)

MAX_NAMED = 8  # keys named in a mismatch message before "... and N more"


def save_state_dict(
    state: Mapping[str, Tensor],
    config: PaniniConfig,
    path: str | os.PathLike[str],
    *,
    random_seed: int | None = None,
) -> Path:
    """Write ``state`` and ``config`` as a panini-video weight file (atomically); returns the path.

    Args:
        random_seed: the weights are random, made with this seed: the metadata says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A private contiguous CPU copy of each tensor: safetensors refuses shared or strided storage.
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
    metadata = {"format": FORMAT, "config": config.to_json()}
    if random_seed is not None:
        metadata.update(weights="random", seed=str(random_seed))
    with atomic_output(path, suffix=".tmp") as tmp:  # the one rule for files we write (outputs.py)
        save_file(tensors, str(tmp), metadata=metadata)
    log.debug("wrote %d tensors to %s", len(tensors), path)
    return path


def weights_label(metadata: Mapping[str, str]) -> str:
    """What a file's weights are, from its metadata: ``random weights, seed N`` or ``trained weights``."""
    if metadata.get("weights") == "random":
        return f"random weights, seed {metadata.get('seed', '?')}"
    return "trained weights"


def weights_label_of(path_or_variant: str | os.PathLike[str]) -> str:
    """``weights_label`` of a weight file or a variant's cached file (its header only)."""
    return weights_label(read_metadata(resolve_weights(path_or_variant)[0]))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a safetensors file (its header only, no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], PaniniConfig]:
    """Read a panini-video weight file: (state_dict on the CPU, config)."""
    state, config, _ = _read_weight_file(path)
    return state, config


def _read_weight_file(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], PaniniConfig, dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"no Panini-Net weight file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise WeightsError(
            f"{path} is not a panini-video weight file (metadata format {metadata.get('format')!r}, "
            f"expected {FORMAT!r}); convert an official checkpoint with `panini-video weights import FILE`"
        )
    try:
        config = PaniniConfig.from_json(metadata.get("config", ""))
    except ValueError as exc:
        raise WeightsError(f"{path} has an unusable config in its metadata: {exc}") from exc
    return state, config, metadata


def check_state_dict(
    state: Mapping[str, Tensor | tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Raise CheckpointMismatchError naming missing, unexpected and wrongly shaped keys."""

    def shape(v: Tensor | tuple[int, ...]) -> tuple[int, ...]:
        return tuple(v.shape) if isinstance(v, Tensor) else tuple(v)

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {list(shape(state[k]))} (expected {list(expected[k])})"
        for k in expected
        if k in state and shape(state[k]) != expected[k]
    ]
    if not (missing or unexpected or wrong):
        return

    def named(items: list[str]) -> str:
        more = len(items) - MAX_NAMED
        return ", ".join(items[:MAX_NAMED]) + (f" ... and {more} more" if more > 0 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing: {named(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {named(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} with a different shape: {named(wrong)}")
    raise CheckpointMismatchError(f"{source} does not match the network: " + "; ".join(parts))


def save_model(model: PaniniNet, path: str | os.PathLike[str], *, random_seed: int | None = None) -> Path:
    """Write a model's weights and config to ``path`` (``random_seed``: see ``save_state_dict``)."""
    return save_state_dict(model.state_dict(), model.config, path, random_seed=random_seed)


def resolve_weights(path_or_variant: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """(file path, variant name or None): a known variant name maps to its cache file."""
    if isinstance(path_or_variant, str) and path_or_variant in VARIANTS:
        name = path_or_variant
        path = cache.model_path(name)
        if not path.is_file():
            from panini_video.models.fetch import how_to_get

            raise WeightsNotFoundError(f"no weights for Panini-Net variant {name!r} at {path}. {how_to_get(name)}")
        return path, name
    path = Path(path_or_variant)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"no Panini-Net weight file at {path} (and {str(path_or_variant)!r} is not a variant name: "
            f"{', '.join(sorted(VARIANTS))}); get weights with `panini-video weights fetch NAME` "
            f"or `panini-video weights import FILE`"
        )
    return path, None


def load_model(
    path_or_variant: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PaniniNet:
    """Load a weight file (or a variant's cached file) strictly into a PaniniNet in eval mode."""
    path, name = resolve_weights(path_or_variant)
    state, config, metadata = _read_weight_file(path)
    if name is not None and config != VARIANTS[name]:
        raise CheckpointMismatchError(f"{path} holds a config that is not variant {name!r}: {config.to_json()}")
    with torch.device("meta"):
        model = PaniniNet(config)
    check_state_dict(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, str(path))
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device=device, dtype=dtype)
    model.eval()
    label = weights_label(metadata)
    if label.startswith("random"):
        log.warning("Panini-Net %s from %s holds %s: its output is no restoration", name or "weights", path, label)
    else:
        log.info("loaded Panini-Net %s (%s) from %s", name or "weights", label, path)
    return model
